//! Live view through the one door: only members watch, the camera is asked to stream only
//! while someone does, hostile segments are refused, and a revocation ends a live view
//! at the next segment while the remaining members notice nothing.

use std::time::Duration;

use cc_core::api::{AccessEntry, LiveAck, LiveFrame};
use cc_core::live::{LiveSegment, SignedSegment};
use ed25519_dalek::SigningKey;
use reqwest::{Method, StatusCode};

use crate::common::*;

impl TestServer {
    /// A camera sends one live segment, as JSON (so tests can also send junk).
    async fn send_live(&self, camera: &Camera, frame: &serde_json::Value) -> TestResult<Sent> {
        self.send(
            Method::POST,
            "/v1/device/live",
            Some(&camera.token),
            Some(frame.clone()),
        )
        .await
    }
}

/// Whether anything but keep-alives arrives on `stream` within `wait`.
async fn hears_anything(stream: &mut reqwest::Response, wait: Duration) -> TestResult<bool> {
    match tokio::time::timeout(wait, stream.chunk()).await {
        Err(_) => Ok(false),
        Ok(chunk) => Ok(chunk?.is_some_and(|c| !c.starts_with(b":"))),
    }
}

#[tokio::test]
async fn members_watch_live_and_no_one_else_does() -> TestResult {
    let server = start().await?;
    let owner = server.signup("live-owner@example.com", "pw").await?;
    let stranger = server.signup("live-stranger@example.com", "pw").await?;
    let camera = server.pair(&owner, "Hall").await?;
    let theirs = server.pair(&stranger, "Shed").await?;
    let (cam, other) = (camera.camera_id, theirs.camera_id);

    // Another household's camera, a swapped camera, no token: all refused before a stream.
    for (path, token, status) in [
        (
            format!("/v1/cameras/{cam}/live"),
            Some(&stranger.token),
            StatusCode::NOT_FOUND,
        ),
        (
            format!("/v1/cameras/{other}/live"),
            Some(&owner.token),
            StatusCode::NOT_FOUND,
        ),
        (
            format!("/v1/cameras/{cam}/live"),
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (
            format!("/v1/cameras/{cam}/live"),
            Some(&camera.token),
            StatusCode::UNAUTHORIZED,
        ),
    ] {
        let sent = server
            .send(Method::GET, &path, token.map(|t| t.as_str()), None)
            .await?;
        assert_eq!(sent.status, status, "{path}");
    }

    // Nobody watches yet: the camera is told so.
    let ack: LiveAck = server
        .send_live(
            &camera,
            &serde_json::to_value(live_frame(&camera, "s1", 1, b"early")?)?,
        )
        .await?
        .json()?;
    assert!(!ack.watching);

    // The owner opens live view: the camera hears the request on its device stream.
    let mut device = server
        .open_stream("/v1/device/stream", &camera.token)
        .await?;
    read_until(&mut device, "event: config").await?;
    let mut watching = server
        .open_stream(&format!("/v1/cameras/{cam}/live"), &owner.token)
        .await?;
    assert_eq!(watching.status(), StatusCode::OK);
    read_until(&mut device, "event: live").await?;
    let mut stranger_view = server
        .open_stream(&format!("/v1/cameras/{other}/live"), &stranger.token)
        .await?;

    let frame = live_frame(&camera, "s1", 2, b"the hall, live")?;
    let ack: LiveAck = server
        .send_live(&camera, &serde_json::to_value(&frame)?)
        .await?
        .json()?;
    assert!(ack.watching);
    let relayed = next_frame(&mut watching).await?;
    assert_eq!(relayed.segment, frame.segment);
    let plain = camera
        .content
        .decrypt(&cc_core::b64::decode(&relayed.ciphertext)?)?;
    assert_eq!(plain, b"the hall, live");
    assert!(
        !hears_anything(&mut stranger_view, Duration::from_millis(500)).await?,
        "another household's live view relayed this camera's segment"
    );

    // Opening live view is in the access log; the segment itself is stored nowhere.
    let log: Vec<AccessEntry> = server
        .send(
            Method::GET,
            &format!("/v1/cameras/{cam}/access-log"),
            Some(&owner.token),
            None,
        )
        .await?
        .json()?;
    assert!(log
        .iter()
        .any(|e| e.object == "live" && e.event_id.is_none()));
    for file in files_below(&server.data_dir) {
        let bytes = std::fs::read(&file)?;
        assert!(
            !contains(&bytes, relayed.ciphertext.as_bytes()),
            "{}",
            file.display()
        );
    }
    Ok(())
}

#[tokio::test]
async fn hostile_segments_are_refused_with_a_code() -> TestResult {
    let server = start().await?;
    let owner = server.signup("seg-owner@example.com", "pw").await?;
    let camera = server.pair(&owner, "Gate").await?;
    let other = server.pair(&owner, "Yard").await?;
    let honest = live_frame(&camera, "s", 1, b"frame")?;
    let stranger = SigningKey::generate(&mut rand::rngs::OsRng);
    let segment = honest.segment.peek()?;

    let resigned = |edit: &dyn Fn(&mut LiveSegment), key: &SigningKey| {
        let mut s = segment.clone();
        edit(&mut s);
        LiveFrame {
            segment: SignedSegment::sign(&s, key),
            ciphertext: honest.ciphertext.clone(),
        }
    };
    let plaintext = {
        let plain = b"not encrypted at all".to_vec();
        let s = LiveSegment {
            sha256: cc_core::manifest::sha256_hex(&plain),
            size: plain.len() as u64,
            ..segment.clone()
        };
        LiveFrame {
            segment: SignedSegment::sign(&s, &camera.device),
            ciphertext: cc_core::b64::encode(&plain),
        }
    };
    let oversized = {
        let big = vec![0u8; cc_core::live::MAX_SEGMENT_BYTES + 1];
        serde_json::json!({"segment": honest.segment, "ciphertext": cc_core::b64::encode(&big)})
    };
    let cases: Vec<(&str, serde_json::Value, StatusCode, &str)> = vec![
        (
            "signed by another key",
            serde_json::to_value(resigned(&|_| {}, &stranger))?,
            StatusCode::BAD_REQUEST,
            "segment_signature_invalid",
        ),
        (
            "another camera's segment",
            serde_json::to_value(resigned(&|s| s.camera_id = other.camera_id, &camera.device))?,
            StatusCode::BAD_REQUEST,
            "segment_mismatch",
        ),
        (
            "an old epoch",
            serde_json::to_value(resigned(&|s| s.epoch = 7, &camera.device))?,
            StatusCode::CONFLICT,
            "stale_epoch",
        ),
        (
            "captured an hour ago",
            serde_json::to_value(resigned(
                &|s| s.captured_at -= chrono::Duration::hours(1),
                &camera.device,
            ))?,
            StatusCode::BAD_REQUEST,
            "segment_not_live",
        ),
        (
            "a hash that does not match",
            serde_json::to_value(resigned(&|s| s.sha256 = "00".repeat(32), &camera.device))?,
            StatusCode::BAD_REQUEST,
            "segment_mismatch",
        ),
        (
            "an unknown media type",
            serde_json::to_value(resigned(
                &|s| s.media_type = "text/html".into(),
                &camera.device,
            ))?,
            StatusCode::BAD_REQUEST,
            "segment_mismatch",
        ),
        (
            "plaintext",
            serde_json::to_value(plaintext)?,
            StatusCode::BAD_REQUEST,
            "upload_not_encrypted",
        ),
        (
            "ciphertext not base64",
            serde_json::json!({"segment": honest.segment, "ciphertext": "%%%"}),
            StatusCode::BAD_REQUEST,
            "segment_malformed",
        ),
        (
            "no segment",
            serde_json::json!({"ciphertext": honest.ciphertext}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_json",
        ),
        ("too large", oversized, StatusCode::PAYLOAD_TOO_LARGE, ""),
    ];
    for (what, body, status, code) in cases {
        let sent = server.send_live(&camera, &body).await?;
        assert_eq!(
            sent.status,
            status,
            "{what}: {}",
            String::from_utf8_lossy(&sent.body)
        );
        if !code.is_empty() {
            assert_eq!(sent.problem()?.code, code, "{what}");
        }
    }
    // A user's token is not a device token.
    let as_user = server
        .send(
            Method::POST,
            "/v1/device/live",
            Some(&owner.token),
            Some(serde_json::to_value(&honest)?),
        )
        .await?;
    assert_eq!(as_user.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        server
            .send_live(&camera, &serde_json::to_value(&honest)?)
            .await?
            .status,
        StatusCode::OK
    );
    Ok(())
}

#[tokio::test]
async fn a_revocation_ends_live_view_at_the_next_segment() -> TestResult {
    let server = start().await?;
    let owner = server.signup("rev-owner@example.com", "pw").await?;
    let friend = server.signup("rev-friend@example.com", "pw").await?;
    let family = server.signup("rev-family@example.com", "pw").await?;
    let camera = server.pair(&owner, "Nursery").await?;
    server.share(&owner, &camera, &friend, "viewer").await?;
    server.share(&owner, &camera, &family, "viewer").await?;
    let cam = camera.camera_id;
    let live = format!("/v1/cameras/{cam}/live");
    let mut friend_view = server.open_stream(&live, &friend.token).await?;
    let mut family_view = server.open_stream(&live, &family.token).await?;
    assert_eq!(friend_view.status(), StatusCode::OK);

    let first = live_frame(&camera, "s", 1, b"before")?;
    server
        .send_live(&camera, &serde_json::to_value(&first)?)
        .await?;
    assert_eq!(next_frame(&mut friend_view).await?.segment, first.segment);
    assert_eq!(next_frame(&mut family_view).await?.segment, first.segment);

    server.revoke(&owner, cam, "rev-friend@example.com").await?;

    // The next segment reaches the family, and ends the friend's stream instead.
    let second = live_frame(&camera, "s", 2, b"after revoke")?;
    server
        .send_live(&camera, &serde_json::to_value(&second)?)
        .await?;
    assert_eq!(next_frame(&mut family_view).await?.segment, second.segment);
    let rest = tokio::time::timeout(Duration::from_secs(10), friend_view.bytes()).await??;
    assert!(
        !contains(&rest, second.ciphertext.as_bytes()),
        "the revoked friend got a segment"
    );
    assert_eq!(
        server
            .send(Method::GET, &live, Some(&friend.token), None)
            .await?
            .status,
        StatusCode::NOT_FOUND
    );

    // After the rotation the camera must use the new epoch; the friend has no key for it.
    let rotated = server.rotate(&owner, &camera, &[&owner, &family]).await?;
    let stale = server
        .send_live(
            &camera,
            &serde_json::to_value(live_frame(&camera, "s", 3, b"old key")?)?,
        )
        .await?;
    assert_eq!(stale.problem()?.code, "stale_epoch");
    let third = live_frame(&rotated, "s", 4, b"new key")?;
    server
        .send_live(&rotated, &serde_json::to_value(&third)?)
        .await?;
    let heard = next_frame(&mut family_view).await?;
    let family_key = server
        .content_key(&family, cam, 2)
        .await?
        .ok_or("family has no grant")?;
    assert_eq!(
        family_key.decrypt(&cc_core::b64::decode(&heard.ciphertext)?)?,
        b"new key"
    );
    assert!(server.content_key(&friend, cam, 2).await?.is_none());
    let old_friend_key = server
        .content_key(&owner, cam, 1)
        .await?
        .ok_or("owner has epoch 1")?;
    assert!(old_friend_key
        .decrypt(&cc_core::b64::decode(&heard.ciphertext)?)
        .is_err());
    Ok(())
}

#[tokio::test]
async fn live_view_asks_for_step_up_like_clips() -> TestResult {
    let server = start().await?;
    let owner = server.signup("step-owner@example.com", "pw").await?;
    let camera = server.pair(&owner, "Door").await?;
    let on = server
        .send(
            Method::PUT,
            "/v1/me/security",
            Some(&owner.token),
            Some(serde_json::json!({"require_step_up": true})),
        )
        .await?;
    assert_eq!(on.status, StatusCode::OK);
    let blocked = server
        .send(
            Method::GET,
            &format!("/v1/cameras/{}/live", camera.camera_id),
            Some(&owner.token),
            None,
        )
        .await?;
    assert_eq!(blocked.status, StatusCode::FORBIDDEN);
    assert_eq!(blocked.problem()?.code, "step_up_required");
    Ok(())
}
