//! Overload answers fast and right: handshakes past the budget get 503 with a
//! randomized Retry-After, uploads saturating their budget do not slow viewers, and a
//! connected camera hears about a key rotation on its stream, as a plain response or on
//! an upgraded connection.

use std::time::Duration;

use cc_core::api::{ConnectResponse, DEVICE_STREAM_UPGRADE};
use reqwest::header::{CONNECTION, UPGRADE};
use reqwest::{Method, StatusCode};

use crate::common::*;

#[tokio::test]
async fn handshakes_past_the_budget_are_told_when_to_come_back() -> TestResult {
    let server = start_with(|c| {
        c.limits.handshakes_per_second = 3;
        c.limits.max_retry_after_secs = 4;
    })
    .await?;
    let owner = server.signup("storm1@example.com", "pw").await?;
    let mut cameras = Vec::new();
    for i in 0..3 {
        cameras.push(server.pair(&owner, &format!("cam {i}")).await?);
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut attempts = Vec::new();
    for _ in 0..8 {
        for camera in &cameras {
            let url = format!("{}/v1/device/connect", server.url);
            attempts.push(server.http.post(url).bearer_auth(&camera.token).send());
        }
    }
    let (mut ok, mut busy) = (0, 0);
    for attempt in attempts {
        let resp = attempt.await?;
        match resp.status() {
            StatusCode::OK => ok += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                busy += 1;
                let secs: u64 = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .ok_or("503 without Retry-After")?;
                assert!((1..=4).contains(&secs));
                let problem: cc_core::api::Problem = resp.json().await?;
                assert_eq!(problem.code, "overloaded");
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(ok >= 1 && busy >= 1, "ok {ok}, busy {busy}");
    Ok(())
}

#[tokio::test]
async fn a_full_upload_budget_does_not_block_viewers() -> TestResult {
    let server = start_with(|c| c.limits.uploads_concurrent = 1).await?;
    let owner = server.signup("storm2@example.com", "pw").await?;
    let camera = server.pair(&owner, "cam").await?;
    // An upload that trickles in holds the only upload slot.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    let body = reqwest::Body::wrap_stream(tokio_stream_from(rx));
    let url = format!(
        "{}/v1/device/events/{}",
        server.url,
        cc_core::EventId::new_v7()
    );
    let slow = tokio::spawn(
        server
            .http
            .put(url)
            .bearer_auth(&camera.token)
            .header("content-type", "multipart/form-data; boundary=x")
            .body(body)
            .send(),
    );
    tx.send(Ok(b"--x\r\n".to_vec())).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let blocked = server.upload(&camera, &event(&camera, b"t", b"c")?).await?;
    assert_eq!(blocked.status, StatusCode::SERVICE_UNAVAILABLE);
    let viewer = server
        .send(Method::GET, "/v1/cameras", Some(&owner.token), None)
        .await?;
    assert_eq!(viewer.status, StatusCode::OK);
    drop(tx);
    let finished = slow.await??;
    assert!(finished.status().is_client_error());
    assert_eq!(
        server
            .upload(&camera, &event(&camera, b"t", b"c")?)
            .await?
            .status,
        StatusCode::CREATED
    );
    Ok(())
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[tokio::test]
async fn a_connected_camera_hears_about_rotation() -> TestResult {
    hears_about_rotation(false).await
}

#[tokio::test]
async fn a_camera_on_an_upgraded_connection_hears_the_same() -> TestResult {
    hears_about_rotation(true).await
}

/// A camera's device stream, as a plain SSE response or on the upgraded connection.
async fn device_stream(
    server: &TestServer,
    token: &str,
    upgrade: bool,
) -> TestResult<futures_util::stream::BoxStream<'static, std::io::Result<bytes::Bytes>>> {
    use futures_util::{StreamExt, TryStreamExt};
    let mut request = server
        .http
        .get(format!("{}/v1/device/stream", server.url))
        .bearer_auth(token);
    if upgrade {
        request = request
            .header(CONNECTION, "upgrade")
            .header(UPGRADE, DEVICE_STREAM_UPGRADE);
    }
    let response = request.send().await?;
    if !upgrade {
        assert_eq!(response.status(), StatusCode::OK);
        return Ok(response
            .bytes_stream()
            .map_err(std::io::Error::other)
            .boxed());
    }
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    let upgraded = response.upgrade().await?;
    Ok(tokio_util::io::ReaderStream::new(upgraded).boxed())
}

async fn hears_about_rotation(upgrade: bool) -> TestResult {
    use futures_util::StreamExt;
    let server = start().await?;
    let owner = server.signup("storm3@example.com", "pw").await?;
    let camera = server.pair(&owner, "cam").await?;
    // The door comes first: a user's token opens no device stream, upgraded or not.
    let refused = server
        .http
        .get(format!("{}/v1/device/stream", server.url))
        .bearer_auth(&owner.token)
        .header(CONNECTION, "upgrade")
        .header(UPGRADE, DEVICE_STREAM_UPGRADE)
        .send()
        .await?;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let mut stream = device_stream(&server, &camera.token, upgrade).await?;
    let mut seen = Vec::new();
    let mut buffer = String::new();
    let mut rotated = false;
    while seen.len() < 2 {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await?
            .ok_or("stream ended")??;
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let message: String = buffer.drain(..end + 2).collect();
            if let Some(data) = message.lines().find_map(|l| l.strip_prefix("data:")) {
                let config: ConnectResponse = serde_json::from_str(data.trim())?;
                let cert = config
                    .certificate
                    .verify_owner(&owner.keys.verifying_key())?;
                assert_eq!(cert.epoch, config.epoch);
                seen.push(config.epoch);
            }
        }
        if seen.len() == 1 && !rotated {
            server.rotate(&owner, &camera, &[&owner]).await?;
            rotated = true;
        }
    }
    assert_eq!(seen, vec![1, 2]);
    Ok(())
}
