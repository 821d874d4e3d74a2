//! `GET /v1/device/stream`: the camera's long-lived connection, in Server-Sent Events
//! text. A `config` message (epoch and owner-signed certificate) now and again whenever
//! the owner rotates the content key; a `live` message (a LiveWanted lease) whenever
//! someone opens or keeps watching its live view; a comment when nothing else was said
//! for a while. The camera counts as online for as long as it is open.
//!
//! A camera that offers `Upgrade: closedcircuit-stream` gets `101 Switching Protocols`
//! and the same messages on the bare connection: the HTTP/1 connection and its buffers
//! are gone, so tens of thousands of idle cameras cost a socket and a small task each.
//! Without the upgrade (an HTTP/2 request, or a proxy that drops the header) the stream
//! is a plain `text/event-stream` response.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use cc_core::api::{ConnectResponse, LiveWanted, Problem, DEVICE_STREAM_UPGRADE};
use cc_store::authz::Device;
use futures_util::{Stream, StreamExt};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::device::device_config;
use crate::error::ApiError;
use crate::extract::DeviceAuth;
use crate::fanout::{DeviceNotice, DeviceNotices, LIVE_LEASE};
use crate::state::AppState;

/// Silence longer than this gets a comment, so proxies and the camera see a live line.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Opens the stream; see the module documentation.
#[utoipa::path(get, path = "/v1/device/stream", tag = "device",
    responses(
        (status = 101, description = "Upgraded (`Upgrade: closedcircuit-stream`): the same messages on the bare connection"),
        (status = 200, content_type = "text/event-stream", body = ConnectResponse),
        (status = 401, body = Problem)))]
pub async fn stream(
    State(state): State<AppState>,
    DeviceAuth(device): DeviceAuth,
    request: Request,
) -> Result<Response, ApiError> {
    let first = message("config", &device_config(&state, &device).await?)?;
    let notices = state.fanout.device_notices(device.camera());
    let messages = messages(first, notices, state, device);
    if request.version() != Version::HTTP_11 || !offers_upgrade(request.headers()) {
        let body = Body::from_stream(messages.map(Ok::<_, Infallible>));
        return Ok((
            [
                (header::CONTENT_TYPE, "text/event-stream"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            body,
        )
            .into_response());
    }
    let upgrade = hyper::upgrade::on(request);
    tokio::spawn(async move {
        match upgrade.await {
            Ok(upgraded) => relay(TokioIo::new(upgraded), messages).await,
            Err(e) => tracing::debug!(error = %e, "a device stream's upgrade did not complete"),
        }
    });
    Ok((
        StatusCode::SWITCHING_PROTOCOLS,
        [
            (header::CONNECTION, "upgrade"),
            (header::UPGRADE, DEVICE_STREAM_UPGRADE),
        ],
    )
        .into_response())
}

fn offers_upgrade(headers: &HeaderMap) -> bool {
    let lists = |name, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value.to_str().is_ok_and(|v| {
                v.split(',')
                    .any(|item| item.trim().eq_ignore_ascii_case(token))
            })
        })
    };
    lists(header::CONNECTION, "upgrade") && lists(header::UPGRADE, DEVICE_STREAM_UPGRADE)
}

/// The stream's messages until the node shuts down or the device is removed. Holding it
/// keeps the camera counted as connected.
fn messages(
    first: Bytes,
    notices: DeviceNotices,
    state: AppState,
    device: Device,
) -> impl Stream<Item = Bytes> + Send + 'static {
    let connected = state.store.hold_connection(&device);
    let rest = futures_util::stream::unfold(
        (notices, state, device, connected),
        |(mut notices, state, device, connected)| async move {
            loop {
                let notice = tokio::select! {
                    notice = notices.next() => notice?,
                    () = tokio::time::sleep(KEEP_ALIVE) => {
                        return Some((Bytes::from_static(b":\n\n"), (notices, state, device, connected)));
                    }
                };
                match notice {
                    DeviceNotice::Rotated => {
                        // Re-authenticate: the device's epoch changed, and it may have been removed.
                        let again = state.store.device_again(&device).await.ok()?;
                        let Ok(config) = device_config(&state, &again).await else {
                            continue;
                        };
                        if let Ok(sent) = message("config", &config) {
                            return Some((sent, (notices, state, again, connected)));
                        }
                    }
                    DeviceNotice::LiveWanted => {
                        let lease = LiveWanted {
                            seconds: LIVE_LEASE.as_secs() as u32,
                        };
                        if let Ok(sent) = message("live", &lease) {
                            return Some((sent, (notices, state, device, connected)));
                        }
                    }
                }
            }
        },
    );
    futures_util::stream::once(async move { first }).chain(rest)
}

/// One Server-Sent Events message. JSON escapes newlines, so `data` is one line.
fn message(event: &str, data: &impl Serialize) -> Result<Bytes, ApiError> {
    let json = serde_json::to_string(data).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Bytes::from(format!("event: {event}\ndata: {json}\n\n")))
}

/// Writes `messages` to an upgraded connection until either side ends. The camera sends
/// nothing on it; a read only notices that it went away.
async fn relay(mut io: impl AsyncRead + AsyncWrite + Unpin, messages: impl Stream<Item = Bytes>) {
    let mut messages = std::pin::pin!(messages);
    let mut ignored = [0u8; 64];
    loop {
        tokio::select! {
            next = messages.next() => {
                let Some(next) = next else { break };
                if io.write_all(&next).await.is_err() || io.flush().await.is_err() {
                    return;
                }
            }
            read = io.read(&mut ignored) => {
                if matches!(read, Ok(0) | Err(_)) {
                    return;
                }
            }
        }
    }
    let _ = io.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn only_a_request_that_names_both_headers_is_upgraded() {
        let with = |connection: &'static str, upgrade: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONNECTION, HeaderValue::from_static(connection));
            headers.insert(header::UPGRADE, HeaderValue::from_static(upgrade));
            offers_upgrade(&headers)
        };
        assert!(with("Upgrade", "closedcircuit-stream"));
        assert!(with("keep-alive, upgrade", "h2c, closedcircuit-stream"));
        assert!(!with("keep-alive", "closedcircuit-stream"));
        assert!(!with("upgrade", "websocket"));
        assert!(!offers_upgrade(&HeaderMap::new()));
    }

    #[tokio::test]
    async fn messages_reach_the_camera_until_it_hangs_up() {
        let (server, mut camera) = tokio::io::duplex(1024);
        let config: &[u8] = b"event: config\ndata: {}\n\n";
        let sent = futures_util::stream::iter([Bytes::from_static(config)])
            .chain(futures_util::stream::pending());
        let relayed = tokio::spawn(relay(server, sent));
        let mut got = vec![0u8; config.len()];
        camera.read_exact(&mut got).await.ok();
        assert_eq!(got, config);
        drop(camera);
        let ended = tokio::time::timeout(Duration::from_secs(10), relayed).await;
        assert!(
            matches!(ended, Ok(Ok(()))),
            "the relay ends when the camera goes away"
        );
    }
}
