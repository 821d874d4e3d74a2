//! Retention deletes old events with their media; a full quota refuses uploads with a
//! clear 4xx and stores nothing.

use cc_core::api::EventPage;
use reqwest::{Method, StatusCode};

use crate::common::*;

#[tokio::test]
async fn retention_deletes_old_events_rows_and_media_together() -> TestResult {
    let server = start().await?;
    let owner = server.signup("ret@example.com", "pw").await?;
    let camera = server.pair(&owner, "Cam").await?;
    let mut old = event(&camera, b"old-t", b"old-c")?;
    old.manifest.started_at = chrono::Utc::now() - chrono::Duration::days(3);
    old.resign(&camera.device);
    let fresh = event(&camera, b"new-t", b"new-c")?;
    assert_eq!(
        server.upload(&camera, &old).await?.status,
        StatusCode::CREATED
    );
    assert_eq!(
        server.upload(&camera, &fresh).await?.status,
        StatusCode::CREATED
    );
    let cam = camera.camera_id;
    let bad = server
        .send(
            Method::PUT,
            &format!("/v1/cameras/{cam}/retention"),
            Some(&owner.token),
            Some(serde_json::json!({"days": 0})),
        )
        .await?;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let set = server
        .send(
            Method::PUT,
            &format!("/v1/cameras/{cam}/retention"),
            Some(&owner.token),
            Some(serde_json::json!({"days": 1})),
        )
        .await?;
    assert_eq!(set.status, StatusCode::NO_CONTENT);
    assert_eq!(server.store.sweep_retention().await?, 1);
    let page: EventPage = server
        .send(
            Method::GET,
            &format!("/v1/cameras/{cam}/events"),
            Some(&owner.token),
            None,
        )
        .await?
        .json()?;
    assert_eq!(
        page.events.iter().map(|e| e.event_id).collect::<Vec<_>>(),
        vec![fresh.path_event]
    );
    let blobs = files_below(&server.data_dir.join("blobs"));
    assert_eq!(blobs.len(), 2, "the old event's media must be gone");
    assert!(blobs
        .iter()
        .all(|p| p.to_string_lossy().contains(&fresh.path_event.to_string())));
    Ok(())
}

#[tokio::test]
async fn a_full_quota_refuses_uploads_and_stores_nothing() -> TestResult {
    let server = start().await?;
    let owner = server.signup("quota@example.com", "pw").await?;
    let camera = server.pair(&owner, "Cam").await?;
    let first = event(&camera, b"t", &[1u8; 1000])?;
    let size = first.thumb.len() + first.clip.len();
    server
        .store
        .set_quota("quota@example.com", Some(size as u64 + 100))
        .await?;
    assert_eq!(
        server.upload(&camera, &first).await?.status,
        StatusCode::CREATED
    );
    let second = event(&camera, b"t", &[2u8; 1000])?;
    let refused = server.upload(&camera, &second).await?;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.problem()?.code, "quota_exceeded");
    assert_eq!(files_below(&server.data_dir.join("blobs")).len(), 2);
    // A retry of an event already stored is still acknowledged.
    assert_eq!(server.upload(&camera, &first).await?.status, StatusCode::OK);
    server.store.set_quota("quota@example.com", None).await?;
    assert_eq!(
        server.upload(&camera, &second).await?.status,
        StatusCode::CREATED
    );
    Ok(())
}
