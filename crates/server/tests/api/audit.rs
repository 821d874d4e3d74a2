//! The access log is a hash chain: an edit or a deletion is detected. The breach report
//! lists exactly the accesses by people who were not members at that moment.

use reqwest::{Method, StatusCode};
use sqlx::Connection;

use crate::common::*;

async fn tamper(server: &TestServer, sql: &str) -> TestResult {
    let mut conn = sqlx::AnyConnection::connect(&server.metadata_url).await?;
    sqlx::query(sql).execute(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

#[tokio::test]
async fn edits_and_deletions_break_the_chain() -> TestResult {
    let server = start().await?;
    let owner = server.signup("c1@example.com", "pw").await?;
    let camera = server.pair(&owner, "Cam").await?;
    let e = event(&camera, b"t", b"c")?;
    assert_eq!(
        server.upload(&camera, &e).await?.status,
        StatusCode::CREATED
    );
    for object in ["thumb", "clip", "thumb", "clip"] {
        let path = format!(
            "/v1/cameras/{}/events/{}/{object}",
            camera.camera_id, e.path_event
        );
        assert_eq!(
            server
                .send(Method::GET, &path, Some(&owner.token), None)
                .await?
                .status,
            StatusCode::OK
        );
    }
    let report = server.store.verify_access_log().await?;
    assert_eq!((report.entries, report.first_broken_seq), (4, None));

    tamper(
        &server,
        "UPDATE access_log SET ip = '10.9.9.9' WHERE seq = 2",
    )
    .await?;
    assert_eq!(
        server.store.verify_access_log().await?.first_broken_seq,
        Some(2)
    );
    tamper(
        &server,
        "UPDATE access_log SET ip = '127.0.0.1' WHERE seq = 2",
    )
    .await?;
    assert_eq!(
        server.store.verify_access_log().await?.first_broken_seq,
        None
    );

    tamper(&server, "DELETE FROM access_log WHERE seq = 3").await?;
    assert_eq!(
        server.store.verify_access_log().await?.first_broken_seq,
        Some(3)
    );
    Ok(())
}

#[tokio::test]
async fn deleting_the_newest_entry_is_detected() -> TestResult {
    let server = start().await?;
    let owner = server.signup("c2@example.com", "pw").await?;
    let camera = server.pair(&owner, "Cam").await?;
    for _ in 0..2 {
        let grants = format!("/v1/cameras/{}/grants", camera.camera_id);
        assert_eq!(
            server
                .send(Method::GET, &grants, Some(&owner.token), None)
                .await?
                .status,
            StatusCode::OK
        );
    }
    tamper(&server, "DELETE FROM access_log WHERE seq = 2").await?;
    assert!(server
        .store
        .verify_access_log()
        .await?
        .first_broken_seq
        .is_some());
    Ok(())
}

#[tokio::test]
async fn breach_report_lists_exactly_the_accesses_of_non_members() -> TestResult {
    let server = start().await?;
    let start_at = chrono::Utc::now() - chrono::Duration::seconds(1);
    let owner = server.signup("r-owner@example.com", "pw").await?;
    let friend = server.signup("r-friend@example.com", "pw").await?;
    let other = server.signup("r-other@example.com", "pw").await?;
    let camera = server.pair(&owner, "Cam").await?;
    let other_cam = server.pair(&other, "Other").await?;
    let e = event(&camera, b"t", b"c")?;
    assert_eq!(
        server.upload(&camera, &e).await?.status,
        StatusCode::CREATED
    );
    let cam = camera.camera_id;
    let clip = format!("/v1/cameras/{cam}/events/{}/clip", e.path_event);

    // Legitimate: the owner and the friend while a member.
    server.share(&owner, &camera, &friend, "viewer").await?;
    assert_eq!(
        server
            .send(Method::GET, &clip, Some(&friend.token), None)
            .await?
            .status,
        StatusCode::OK
    );
    assert_eq!(
        server
            .send(Method::GET, &clip, Some(&owner.token), None)
            .await?
            .status,
        StatusCode::OK
    );
    server.revoke(&owner, cam, "r-friend@example.com").await?;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;

    // Staged failures: reads the door would have refused, as a lying cache might allow.
    let friend_me: cc_core::api::Me = server
        .send(Method::GET, "/v1/me", Some(&friend.token), None)
        .await?
        .json()?;
    let other_me: cc_core::api::Me = server
        .send(Method::GET, "/v1/me", Some(&other.token), None)
        .await?
        .json()?;
    server
        .store
        .record_access_unchecked(
            friend_me.user_id,
            friend_me.session_id,
            cam,
            Some(e.path_event),
            "clip",
        )
        .await?;
    server
        .store
        .record_access_unchecked(
            other_me.user_id,
            other_me.session_id,
            cam,
            Some(e.path_event),
            "thumb",
        )
        .await?;
    server
        .store
        .record_access_unchecked(
            other_me.user_id,
            other_me.session_id,
            other_cam.camera_id,
            None,
            "grants",
        )
        .await?;

    let report = server
        .store
        .breach_report(start_at, chrono::Utc::now() + chrono::Duration::seconds(1))
        .await?;
    let found: Vec<(String, String, String)> = report
        .iter()
        .map(|b| {
            (
                b.owner_email.clone(),
                b.entry.email.clone().unwrap_or_default(),
                b.entry.object.clone(),
            )
        })
        .collect();
    assert_eq!(
        found,
        vec![
            (
                "r-owner@example.com".into(),
                "r-friend@example.com".into(),
                "clip".into()
            ),
            (
                "r-owner@example.com".into(),
                "r-other@example.com".into(),
                "thumb".into()
            ),
        ]
    );
    // A window before the staged reads reports nothing.
    let earlier = server
        .store
        .breach_report(start_at, start_at + chrono::Duration::milliseconds(1))
        .await?;
    assert!(earlier.is_empty());
    Ok(())
}
