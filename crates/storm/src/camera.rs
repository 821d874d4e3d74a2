//! A simulated camera in the storm: connect (backing off with full jitter when told to
//! retry), then upload its events, retrying each with the same event ID until acked.

use std::time::{Duration, Instant};

use cc_core::manifest::{sha256_hex, EventKind, Manifest, SignedManifest};
use cc_core::{CameraId, EventId};
use rand::Rng;
use reqwest::{Method, StatusCode};

use crate::household::SimCamera;
use crate::http::{Http, Reply};
use crate::stats::Counters;
use crate::StormError;

const BACKOFF_BASE: Duration = Duration::from_millis(200);
const BACKOFF_CAP: Duration = Duration::from_secs(10);

/// Sleep before attempt `n` (0-based): uniform in [0, min(cap, base * 2^n)], and never
/// less than what the server asked for in `Retry-After`.
pub fn backoff(attempt: u32, retry_after: Option<u64>) -> Duration {
    let ceiling = BACKOFF_BASE
        .saturating_mul(1u32 << attempt.min(16))
        .min(BACKOFF_CAP);
    let jittered = rand::thread_rng().gen_range(Duration::ZERO..=ceiling);
    jittered.max(Duration::from_secs(retry_after.unwrap_or(0)))
}

/// Whether an answer means "try again later" rather than "no".
fn retryable(reply: &Reply) -> bool {
    reply.status.is_server_error() || reply.status == StatusCode::TOO_MANY_REQUESTS
}

fn count(counters: &Counters, reply: &Reply) {
    if reply.status == StatusCode::SERVICE_UNAVAILABLE {
        counters.add_503();
    } else if reply.status.is_server_error() {
        counters.add_5xx();
    }
}

/// Repeats `attempt` until the server accepts it: transport errors (after which `http`
/// moves to another node), 5xx and 429 back off with full jitter (at least the server's
/// `Retry-After`); other refusals are final.
async fn until_accepted<F, Fut>(
    what: &str,
    http: &Http,
    counters: &Counters,
    mut attempt: F,
) -> Result<Reply, StormError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Reply, StormError>>,
{
    let mut n = 0;
    loop {
        let retry_after = match attempt().await {
            Ok(reply) => {
                count(counters, &reply);
                if reply.status.is_success() {
                    return Ok(reply);
                }
                if !retryable(&reply) {
                    return Err(StormError::Status {
                        what: what.into(),
                        status: reply.status.as_u16(),
                        body: String::from_utf8_lossy(&reply.body).into_owned(),
                    });
                }
                reply.retry_after
            }
            Err(StormError::Http(_)) => {
                http.fail_over();
                None
            }
            Err(e) => return Err(e),
        };
        tokio::time::sleep(backoff(n, retry_after)).await;
        n += 1;
    }
}

/// Connects; returns when connected, with how long it took.
pub async fn connect(
    http: &Http,
    camera: &SimCamera,
    counters: &Counters,
) -> Result<Duration, StormError> {
    let start = Instant::now();
    until_accepted("connect", http, counters, || {
        http.send::<()>(
            Method::POST,
            "/v1/device/connect",
            Some(&camera.token),
            None,
        )
    })
    .await?;
    Ok(start.elapsed())
}

/// Synthetic media for one event; the plaintext carries the camera and event IDs so
/// the oracle can tell whose it is after decrypting.
pub fn plaintext(camera: CameraId, event: EventId, what: &str) -> Vec<u8> {
    format!("storm {what} of camera {camera} event {event}").into_bytes()
}

/// An event encrypted and signed, ready to send (and to resend with the same ID).
pub struct Prepared {
    pub event: EventId,
    signed: Vec<u8>,
    thumb: Vec<u8>,
    clip: Vec<u8>,
}

impl Prepared {
    /// Ciphertext bytes of both objects.
    pub fn len(&self) -> usize {
        self.thumb.len() + self.clip.len()
    }

    /// The thumbnail and clip ciphertexts.
    pub fn parts(&self) -> (&[u8], &[u8]) {
        (&self.thumb, &self.clip)
    }
}

/// Encrypts and signs one event; plaintexts are padded to at least the given sizes.
pub fn prepare(
    camera: &SimCamera,
    thumb_len: usize,
    clip_len: usize,
) -> Result<Prepared, StormError> {
    let event = EventId::new_v7();
    let crypto = |e: cc_core::envelope::EnvelopeError| StormError::Protocol(e.to_string());
    let padded = |what: &str, len: usize| {
        let mut bytes = plaintext(camera.camera_id, event, what);
        if bytes.len() < len {
            bytes.resize(len, 0x5a);
        }
        bytes
    };
    let recipient = camera.content.recipient();
    let thumb = recipient
        .encrypt(&padded("thumb", thumb_len))
        .map_err(crypto)?;
    let clip = recipient
        .encrypt(&padded("clip", clip_len))
        .map_err(crypto)?;
    let manifest = Manifest {
        v: 1,
        camera_id: camera.camera_id,
        event_id: event,
        epoch: 1,
        kind: EventKind::ALL[rand::thread_rng().gen_range(0..3)],
        started_at: chrono::Utc::now(),
        duration_ms: 1000,
        thumb_sha256: sha256_hex(&thumb),
        thumb_size: thumb.len() as u64,
        clip_sha256: sha256_hex(&clip),
        clip_size: clip.len() as u64,
    };
    let signed = serde_json::to_vec(&SignedManifest::sign(&manifest, &camera.device))
        .map_err(|e| StormError::Protocol(e.to_string()))?;
    Ok(Prepared {
        event,
        signed,
        thumb,
        clip,
    })
}

/// Sends a prepared event until acknowledged.
pub async fn send(
    http: &Http,
    camera: &SimCamera,
    event: &Prepared,
    counters: &Counters,
) -> Result<(), StormError> {
    until_accepted("upload", http, counters, || async {
        let form = reqwest::multipart::Form::new()
            .part(
                "manifest",
                reqwest::multipart::Part::bytes(event.signed.clone()),
            )
            .part(
                "thumb",
                reqwest::multipart::Part::bytes(event.thumb.clone()),
            )
            .part("clip", reqwest::multipart::Part::bytes(event.clip.clone()));
        let response = http
            .client
            .put(format!("{}/v1/device/events/{}", http.base(), event.event))
            .bearer_auth(&camera.token)
            .multipart(form)
            .send()
            .await?;
        Http::reply(response).await
    })
    .await?;
    Ok(())
}

/// Uploads one small event until acknowledged.
pub async fn upload(
    http: &Http,
    camera: &SimCamera,
    counters: &Counters,
) -> Result<EventId, StormError> {
    let prepared = prepare(camera, 0, 0)?;
    send(http, camera, &prepared, counters).await?;
    Ok(prepared.event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_within_its_ceiling_and_honours_retry_after() {
        for attempt in 0..30 {
            let d = backoff(attempt, None);
            assert!(d <= BACKOFF_CAP);
            assert!(d <= BACKOFF_BASE.saturating_mul(1u32 << attempt.min(16)));
            assert!(backoff(attempt, Some(3)) >= Duration::from_secs(3));
        }
    }
}
