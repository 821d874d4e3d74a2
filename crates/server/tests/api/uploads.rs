//! Uploads: idempotent on the event ID; anything forged, truncated, oversized or
//! malformed gets a 4xx with a stable code and leaves no row and no file behind.

use cc_core::api::{EventPage, UploadAck};
use cc_core::manifest::{sha256_hex, SignedManifest};
use cc_core::{CameraId, EventId};
use ed25519_dalek::SigningKey;
use reqwest::{Method, StatusCode};

use crate::common::*;

async fn event_count(server: &TestServer, user: &User, camera: &Camera) -> TestResult<usize> {
    let page: EventPage = server
        .send(
            Method::GET,
            &format!("/v1/cameras/{}/events?limit=200", camera.camera_id),
            Some(&user.token),
            None,
        )
        .await?
        .json()?;
    Ok(page.events.len())
}

fn stored_files(server: &TestServer) -> Vec<std::path::PathBuf> {
    let mut files = files_below(&server.data_dir.join("blobs"));
    files.extend(files_below(&server.data_dir.join("tmp")));
    files
}

#[tokio::test]
async fn retries_are_acknowledged_once_and_stored_once() -> TestResult {
    let server = start().await?;
    let user = server.signup("frank@example.com", "pw").await?;
    let camera = server.pair(&user, "Porch").await?;
    let upload = event(&camera, b"thumb", b"clip")?;
    let first = server.upload(&camera, &upload).await?;
    assert_eq!(first.status, StatusCode::CREATED);
    let files = stored_files(&server);
    assert_eq!(files.len(), 2);
    for _ in 0..3 {
        let again = server.upload(&camera, &upload).await?;
        assert_eq!(again.status, StatusCode::OK);
        assert_eq!(
            again.json::<UploadAck>()?,
            UploadAck {
                event_id: upload.path_event,
                duplicate: true
            }
        );
    }
    assert_eq!(event_count(&server, &user, &camera).await?, 1);
    assert_eq!(stored_files(&server), files);

    // The same ID with different content is a conflict, not an overwrite.
    let mut other = event(&camera, b"other", b"other")?;
    other.manifest.event_id = upload.path_event;
    other.path_event = upload.path_event;
    other.resign(&camera.device);
    let conflict = server.upload(&camera, &other).await?;
    assert_eq!(conflict.status, StatusCode::CONFLICT);
    assert_eq!(event_count(&server, &user, &camera).await?, 1);
    Ok(())
}

#[tokio::test]
async fn bad_uploads_get_stable_codes_and_leave_nothing() -> TestResult {
    let server = start().await?;
    let user = server.signup("grace@example.com", "pw").await?;
    let camera = server.pair(&user, "Yard").await?;
    let stranger = SigningKey::generate(&mut rand::rngs::OsRng);
    let plain_marker = b"PLAINTEXT-MARKER-THAT-MUST-NOT-BE-STORED".to_vec();

    let mut cases: Vec<(&str, Upload, StatusCode, &str)> = Vec::new();
    let honest = event(&camera, b"t", b"c")?;

    let mut truncated = honest.clone();
    truncated.clip.truncate(truncated.clip.len() / 2);
    cases.push((
        "truncated clip",
        truncated,
        StatusCode::BAD_REQUEST,
        "upload_truncated",
    ));

    let mut longer = honest.clone();
    longer.clip.extend_from_slice(&[0u8; 100]);
    cases.push((
        "clip longer than manifest",
        longer,
        StatusCode::BAD_REQUEST,
        "upload_size_mismatch",
    ));

    let mut flipped = honest.clone();
    let last = flipped.clip.len() - 1;
    flipped.clip[last] ^= 1;
    cases.push((
        "clip bytes changed",
        flipped,
        StatusCode::BAD_REQUEST,
        "upload_hash_mismatch",
    ));

    let mut forged = honest.clone();
    forged.resign(&stranger);
    cases.push((
        "signed by another key",
        forged,
        StatusCode::BAD_REQUEST,
        "manifest_signature_invalid",
    ));

    let mut other_camera = honest.clone();
    other_camera.manifest.camera_id = CameraId::new_v7();
    other_camera.resign(&camera.device);
    cases.push((
        "manifest names another camera",
        other_camera,
        StatusCode::BAD_REQUEST,
        "manifest_mismatch",
    ));

    let mut other_path = honest.clone();
    other_path.path_event = EventId::new_v7();
    cases.push((
        "URL names another event",
        other_path,
        StatusCode::BAD_REQUEST,
        "manifest_mismatch",
    ));

    let mut plaintext = honest.clone();
    plaintext.clip = plain_marker.clone();
    plaintext.manifest.clip_sha256 = sha256_hex(&plaintext.clip);
    plaintext.manifest.clip_size = plaintext.clip.len() as u64;
    plaintext.resign(&camera.device);
    cases.push((
        "plaintext media",
        plaintext,
        StatusCode::BAD_REQUEST,
        "upload_not_encrypted",
    ));

    let mut stale = honest.clone();
    stale.manifest.epoch = 7;
    stale.resign(&camera.device);
    cases.push(("wrong epoch", stale, StatusCode::CONFLICT, "stale_epoch"));

    let mut huge = honest.clone();
    huge.manifest.clip_size = cc_core::api::MAX_CLIP_BYTES + 1;
    huge.resign(&camera.device);
    cases.push((
        "declared oversized",
        huge,
        StatusCode::PAYLOAD_TOO_LARGE,
        "upload_too_large",
    ));

    let mut garbage = honest.clone();
    garbage.signed = SignedManifest::from_parts("{not json".into(), "AAAA".into());
    cases.push((
        "garbage manifest",
        garbage,
        StatusCode::BAD_REQUEST,
        "manifest_signature_invalid",
    ));

    for (what, upload, status, code) in cases {
        let sent = server.upload(&camera, &upload).await?;
        assert_eq!(
            sent.status,
            status,
            "{what}: {}",
            String::from_utf8_lossy(&sent.body)
        );
        assert_eq!(sent.problem()?.code, code, "{what}");
        assert!(stored_files(&server).is_empty(), "{what} left files behind");
        assert_eq!(
            event_count(&server, &user, &camera).await?,
            0,
            "{what} left a row"
        );
    }

    // Malformed bodies: no parts, wrong first part, not multipart at all.
    let url = format!("{}/v1/device/events/{}", server.url, EventId::new_v7());
    let not_multipart = server
        .http
        .put(&url)
        .bearer_auth(&camera.token)
        .body("hello")
        .send()
        .await?;
    assert_eq!(not_multipart.status(), StatusCode::BAD_REQUEST);
    let clip_first = reqwest::multipart::Form::new()
        .part("clip", reqwest::multipart::Part::bytes(vec![1, 2, 3]));
    let sent = server
        .http
        .put(&url)
        .bearer_auth(&camera.token)
        .multipart(clip_first)
        .send()
        .await?;
    assert_eq!(sent.status(), StatusCode::BAD_REQUEST);
    let missing_clip = reqwest::multipart::Form::new()
        .part(
            "manifest",
            reqwest::multipart::Part::bytes(honest.manifest_json()),
        )
        .part(
            "thumb",
            reqwest::multipart::Part::bytes(honest.thumb.clone()),
        );
    let url = format!("{}/v1/device/events/{}", server.url, honest.path_event);
    let sent = server
        .http
        .put(&url)
        .bearer_auth(&camera.token)
        .multipart(missing_clip)
        .send()
        .await?;
    assert_eq!(sent.status(), StatusCode::BAD_REQUEST);
    assert!(stored_files(&server).is_empty());

    // Without a device token, or with a user's token, nothing is accepted.
    let anonymous = server
        .http
        .put(&url)
        .multipart(reqwest::multipart::Form::new())
        .send()
        .await?;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let as_user = server
        .http
        .put(&url)
        .bearer_auth(&user.token)
        .multipart(reqwest::multipart::Form::new())
        .send()
        .await?;
    assert_eq!(as_user.status(), StatusCode::UNAUTHORIZED);

    // And the honest upload still goes through afterwards.
    assert_eq!(
        server.upload(&camera, &honest).await?.status,
        StatusCode::CREATED
    );
    for file in files_below(&server.data_dir) {
        let bytes = std::fs::read(&file)?;
        assert!(
            !contains(&bytes, &plain_marker),
            "plaintext reached {}",
            file.display()
        );
    }
    Ok(())
}

#[tokio::test]
async fn clips_serve_byte_ranges() -> TestResult {
    let server = start().await?;
    let user = server.signup("heidi@example.com", "pw").await?;
    let camera = server.pair(&user, "Hall").await?;
    let upload = event(&camera, b"thumb", &vec![42u8; 10_000])?;
    assert_eq!(
        server.upload(&camera, &upload).await?.status,
        StatusCode::CREATED
    );
    let url = format!(
        "{}/v1/cameras/{}/events/{}/clip",
        server.url, camera.camera_id, upload.path_event
    );
    let part = server
        .http
        .get(&url)
        .bearer_auth(&user.token)
        .header("range", "bytes=100-199")
        .send()
        .await?;
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    let total = upload.clip.len();
    assert_eq!(
        part.headers()
            .get("content-range")
            .and_then(|v| v.to_str().ok()),
        Some(format!("bytes 100-199/{total}").as_str())
    );
    assert_eq!(part.bytes().await?.as_ref(), &upload.clip[100..200]);
    let beyond = server
        .http
        .get(&url)
        .bearer_auth(&user.token)
        .header("range", format!("bytes={total}-"))
        .send()
        .await?;
    assert_eq!(beyond.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let full = server
        .http
        .get(&url)
        .bearer_auth(&user.token)
        .send()
        .await?;
    assert_eq!(
        full.headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("private, no-store")
    );
    assert_eq!(full.bytes().await?.as_ref(), upload.clip.as_slice());
    Ok(())
}
