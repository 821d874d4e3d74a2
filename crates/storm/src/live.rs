//! Live view in the storm. Cameras hold their device stream and answer each request to
//! watch with a few segments whose plaintext names the camera and the segment; viewers
//! open live view of their own cameras and put every segment they receive through the
//! leak oracle: signed by that camera's device, for that camera, fresh, and decrypting
//! to that camera's content.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cc_core::api::{CameraInfo, LiveAck, LiveFrame};
use cc_core::envelope::Identity;
use cc_core::live::{LiveCheck, LiveError, LiveSegment, SignedSegment};
use cc_core::CameraId;
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use tokio::time::Instant;

use crate::household::{Household, SimCamera};
use crate::http::{open_device_stream, Http};
use crate::stats::Counters;
use crate::StormError;

/// A storm camera streams this long after each request (a real agent streams for the
/// whole lease; shorter keeps the storm about the door, not about bandwidth).
const STREAM_FOR: Duration = Duration::from_secs(5);
const FRAME_INTERVAL: Duration = Duration::from_secs(1);
/// How long a viewer waits for the first segment before it moves on.
const VIEWER_WAIT: Duration = Duration::from_secs(5);
/// How often a waiting camera checks whether the storm is over.
const POLL: Duration = Duration::from_millis(500);

/// What a storm camera's segment `seq` says, in the clear.
pub fn plaintext(camera: CameraId, seq: u64) -> Vec<u8> {
    format!("storm live of camera {camera} segment {seq}").into_bytes()
}

/// A camera's live side until `stop`: holds the device stream (re-opening it, on another
/// node if need be, when it breaks) and streams while asked.
pub async fn camera(
    http: Http,
    household: Arc<Household>,
    index: usize,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
) -> Result<(), StormError> {
    let camera = &household.cameras[index];
    let stream_id = format!("{:016x}", rand::random::<u64>());
    let mut seq = 0u64;
    let mut attempt = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let opened = open_device_stream(&http.client, http.base(), &camera.token).await;
        let mut body = match opened {
            Ok(Ok(body)) => body,
            Ok(Err(status)) => {
                if status == StatusCode::SERVICE_UNAVAILABLE {
                    counters.add_503();
                } else if status.is_server_error() {
                    counters.add_5xx();
                }
                tokio::time::sleep(crate::camera::backoff(attempt, None)).await;
                attempt += 1;
                continue;
            }
            Err(_) => {
                http.fail_over();
                tokio::time::sleep(crate::camera::backoff(attempt, None)).await;
                attempt += 1;
                continue;
            }
        };
        attempt = 0;
        let mut text = String::new();
        let mut until: Option<Instant> = None;
        let mut next_frame = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let wake = match until {
                Some(_) => next_frame,
                None => Instant::now() + POLL,
            };
            tokio::select! {
                chunk = tokio::time::timeout(POLL, body.next()) => match chunk {
                    Ok(Some(Ok(bytes))) => {
                        text.push_str(&String::from_utf8_lossy(&bytes));
                        if text.contains("event: live") {
                            until = Some(Instant::now() + STREAM_FOR);
                        }
                        if let Some(end) = text.rfind("\n\n") {
                            text.drain(..end + 2);
                        }
                    }
                    Ok(_) => break,
                    Err(_) => {}
                },
                _ = tokio::time::sleep_until(wake), if until.is_some() => {
                    next_frame = Instant::now() + FRAME_INTERVAL;
                    if until.is_some_and(|u| Instant::now() >= u) {
                        until = None;
                        continue;
                    }
                    seq += 1;
                    if !send(&http, camera, &stream_id, seq, &counters).await? {
                        until = None;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Sends one segment; false once the server says nobody watches.
async fn send(
    http: &Http,
    camera: &SimCamera,
    stream: &str,
    seq: u64,
    counters: &Counters,
) -> Result<bool, StormError> {
    let crypto = |e: cc_core::envelope::EnvelopeError| StormError::Protocol(e.to_string());
    let ciphertext = camera
        .content
        .recipient()
        .encrypt(&plaintext(camera.camera_id, seq))
        .map_err(crypto)?;
    let segment = LiveSegment::describe(camera.camera_id, 1, stream, seq, "image/bmp", &ciphertext);
    let frame = LiveFrame {
        segment: SignedSegment::sign(&segment, &camera.device),
        ciphertext: cc_core::b64::encode(&ciphertext),
    };
    let reply = match http
        .send_once(
            Method::POST,
            "/v1/device/live",
            Some(&camera.token),
            Some(&frame),
        )
        .await
    {
        Ok(reply) => reply,
        // A lost segment is not worth a retry; the device stream notices a dead node.
        Err(StormError::Http(_)) => return Ok(true),
        Err(e) => return Err(e),
    };
    if reply.status.is_server_error() && reply.status != StatusCode::SERVICE_UNAVAILABLE {
        counters.add_5xx();
    }
    if reply.status == StatusCode::SERVICE_UNAVAILABLE {
        counters.add_503();
        return Ok(true);
    }
    if reply.status == StatusCode::BAD_REQUEST
        && reply.code().as_deref() == Some("segment_not_live")
    {
        // Sealed too long before the server could take it: a frame dropped, not an error.
        counters.live_late.fetch_add(1, Ordering::Relaxed);
        return Ok(true);
    }
    Ok(reply.json::<LiveAck>("live segment")?.watching)
}

/// A viewer opens live view of one of its cameras and checks the first segment it gets.
/// No segment in time is fine (the camera may not be connected yet); a segment that is
/// not verifiably this camera's is a leak.
pub async fn watch(
    http: &Http,
    token: &str,
    household: &Household,
    camera: &CameraInfo,
    key: Option<&Identity>,
    counters: &Counters,
) -> Result<(), StormError> {
    let opened = http
        .client
        .get(format!(
            "{}/v1/cameras/{}/live",
            http.base(),
            camera.camera_id
        ))
        .bearer_auth(token)
        .send()
        .await;
    let mut response = match opened {
        Ok(response) => response,
        Err(_) => {
            http.fail_over();
            return Ok(());
        }
    };
    match response.status() {
        StatusCode::OK => {}
        StatusCode::SERVICE_UNAVAILABLE => {
            counters.add_503();
            return Ok(());
        }
        status => {
            if status.is_server_error() {
                counters.add_5xx();
            }
            return Err(StormError::Status {
                what: "open live view".into(),
                status: status.as_u16(),
                body: String::new(),
            });
        }
    }
    let deadline = Instant::now() + VIEWER_WAIT;
    let mut text = String::new();
    let data = loop {
        if let Some(data) = segment_data(&text) {
            break data;
        }
        match tokio::time::timeout_at(deadline, response.chunk()).await {
            Ok(Ok(Some(bytes))) => text.push_str(&String::from_utf8_lossy(&bytes)),
            _ => return Ok(()),
        }
    };
    counters.items_checked.fetch_add(1, Ordering::Relaxed);
    counters.live_checked.fetch_add(1, Ordering::Relaxed);
    match check(household, camera, key, &data) {
        Ok(Arrival::Live) => {}
        Ok(Arrival::Late) => {
            counters.live_late.fetch_add(1, Ordering::Relaxed);
        }
        Err(why) => counters.leak(format!(
            "household {} live view of camera {}: {why}",
            household.index, camera.camera_id
        )),
    }
    Ok(())
}

/// The data of the first complete `segment` message in `text`.
fn segment_data(text: &str) -> Option<String> {
    let start = text.find("event: segment\n")?;
    let message = &text[start..];
    let end = message.find("\n\n")?;
    message[..end]
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .map(str::to_owned)
}

/// A segment that passed the oracle: live, or verifiably this camera's but relayed too
/// late to be shown (a slow machine, not a leak).
enum Arrival {
    Live,
    Late,
}

/// The leak oracle for one relayed segment.
fn check(
    household: &Household,
    camera: &CameraInfo,
    key: Option<&Identity>,
    data: &str,
) -> Result<Arrival, String> {
    let frame: LiveFrame = serde_json::from_str(data).map_err(|e| e.to_string())?;
    let device = camera
        .certificate
        .verify_owner(&household.keys.verifying_key())
        .ok()
        .and_then(|cert| cert.device_key().ok())
        .ok_or("the camera's certificate does not verify")?;
    let segment = frame
        .segment
        .verify(&device)
        .map_err(|e| format!("segment signature: {e}"))?;
    let ciphertext = cc_core::b64::decode(&frame.ciphertext).map_err(|e| e.to_string())?;
    // Every other check runs before freshness, so a late segment is otherwise sound.
    let arrival = match LiveCheck::default().accept(
        &segment,
        camera.camera_id,
        &ciphertext,
        chrono::Utc::now(),
    ) {
        Ok(()) => Arrival::Live,
        Err(LiveError::NotLive(_)) => Arrival::Late,
        Err(e) => return Err(e.to_string()),
    };
    let key = key.ok_or("no grant to decrypt it")?;
    if key.decrypt(&ciphertext).ok() != Some(plaintext(camera.camera_id, segment.seq)) {
        return Err("does not decrypt to this camera's content".into());
    }
    Ok(arrival)
}
