//! A camera's side of live view. The camera holds its device stream open (which is also
//! what keeps it "online"); when the server passes on a request to watch, it sends
//! encrypted, signed segments a few times a second until the request's lease runs out or
//! the server says nobody is watching. A key rotation announced on the stream makes it
//! reconnect, so every later segment is encrypted to the new epoch.

use std::time::Duration;

use cc_core::api::{ConnectResponse, LiveWanted};
use futures_util::StreamExt;
use tokio::time::Instant;

use crate::agent::{Agent, AgentState};
use crate::backoff::Backoff;
use crate::error::ClientError;
use crate::media::Source;
use crate::sse::{SseMessage, SseParser};

/// Time between live segments.
pub const FRAME_INTERVAL: Duration = Duration::from_millis(500);

/// The server sends a keep-alive every 15 s; this much silence means the connection died.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// What the camera's live side is doing, for its operator.
pub enum LiveNotice {
    /// The device stream is open; the camera is online and waits for viewers.
    Listening,
    /// Someone asked to watch; segments are being sent.
    Streaming,
    /// Nobody is watching any more.
    Stopped { sent: u64 },
    /// The owner rotated the content key; the camera adopted the new certificate.
    Rotated { epoch: u32 },
    /// A segment was refused or lost; the next one will be tried.
    SegmentFailed(String),
    /// The device stream broke; it is re-opened after `retry_in`.
    Disconnected { reason: String, retry_in: Duration },
}

/// A live view in progress: its random stream ID, the next sequence number, and until
/// when the last request lasts.
struct Streaming {
    stream: String,
    seq: u64,
    until: Instant,
}

/// Runs the camera's live side until an error that retrying cannot fix (the device
/// token was refused). `source` supplies the pictures; `report` hears what happens.
pub async fn run(
    agent: &mut Agent,
    state: &mut AgentState,
    mut source: Source,
    mut report: impl FnMut(LiveNotice),
) -> Result<(), ClientError> {
    let mut backoff = Backoff::for_cameras();
    let mut streaming: Option<Streaming> = None;
    loop {
        let mut body = match agent.device_stream().await {
            Ok(body) => body,
            Err(e) if e.is_transient() => {
                let retry_in = backoff.next_delay(e.retry_after());
                report(LiveNotice::Disconnected {
                    reason: e.to_string(),
                    retry_in,
                });
                tokio::time::sleep(retry_in).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        backoff.reset();
        report(LiveNotice::Listening);
        let mut parser = SseParser::default();
        let mut next_frame = Instant::now();
        let reason = loop {
            let wake = match &streaming {
                Some(_) => next_frame,
                None => Instant::now() + IDLE_TIMEOUT,
            };
            let chunk = tokio::select! {
                chunk = tokio::time::timeout(IDLE_TIMEOUT, body.next()) => chunk,
                _ = tokio::time::sleep_until(wake), if streaming.is_some() => {
                    next_frame = Instant::now() + FRAME_INTERVAL;
                    send_frame(agent, state, &mut source, &mut streaming, &mut report).await?;
                    continue;
                }
            };
            let messages = match chunk {
                Ok(Some(Ok(chunk))) => match parser.push(&chunk) {
                    Ok(messages) => messages,
                    Err(e) => break e.to_string(),
                },
                Ok(Some(Err(e))) => break format!("the connection broke: {e}"),
                Ok(None) => break "the server closed the stream".to_owned(),
                Err(_) => break format!("nothing heard for {}s", IDLE_TIMEOUT.as_secs()),
            };
            for message in messages {
                handle(agent, state, &message, &mut streaming, &mut report).await?;
            }
        };
        let retry_in = backoff.next_delay(None);
        report(LiveNotice::Disconnected { reason, retry_in });
        tokio::time::sleep(retry_in).await;
    }
}

/// Acts on one message of the device stream.
async fn handle(
    agent: &mut Agent,
    state: &mut AgentState,
    message: &SseMessage,
    streaming: &mut Option<Streaming>,
    report: &mut impl FnMut(LiveNotice),
) -> Result<(), ClientError> {
    match message.event.as_str() {
        "config" => {
            let epoch = serde_json::from_str::<ConnectResponse>(&message.data)
                .map(|config| config.epoch)
                .map_err(|e| ClientError::Invalid(format!("a config notice is not valid: {e}")))?;
            if epoch != agent.epoch() {
                agent.refresh(state).await?;
                report(LiveNotice::Rotated {
                    epoch: agent.epoch(),
                });
            }
        }
        "live" => {
            let wanted = serde_json::from_str::<LiveWanted>(&message.data)
                .map_err(|e| ClientError::Invalid(format!("a live request is not valid: {e}")))?;
            let until = Instant::now() + Duration::from_secs(u64::from(wanted.seconds.min(60)));
            match streaming {
                Some(streaming) => streaming.until = until,
                None => {
                    *streaming = Some(Streaming {
                        stream: format!("{:016x}", rand::random::<u64>()),
                        seq: 0,
                        until,
                    });
                    report(LiveNotice::Streaming);
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// Seals and sends the next segment, or ends the live view when its lease ran out or the
/// server says nobody watches.
async fn send_frame(
    agent: &mut Agent,
    state: &mut AgentState,
    source: &mut Source,
    streaming: &mut Option<Streaming>,
    report: &mut impl FnMut(LiveNotice),
) -> Result<(), ClientError> {
    let Some(live) = streaming.as_mut() else {
        return Ok(());
    };
    if Instant::now() >= live.until {
        let sent = live.seq;
        *streaming = None;
        report(LiveNotice::Stopped { sent });
        return Ok(());
    }
    live.seq += 1;
    let (media_type, picture) = source.live_frame(agent.camera_id(), live.seq).await?;
    let frame = agent.seal_live(&live.stream, live.seq, media_type, &picture)?;
    match agent.send_live(&frame).await {
        Ok(ack) if !ack.watching => {
            let sent = live.seq;
            *streaming = None;
            report(LiveNotice::Stopped { sent });
        }
        Ok(_) => {}
        Err(e) if e.problem_code() == Some("stale_epoch") => {
            agent.refresh(state).await?;
            report(LiveNotice::Rotated {
                epoch: agent.epoch(),
            });
        }
        Err(e) if e.problem_code() == Some("unauthenticated") => return Err(e),
        Err(e) => report(LiveNotice::SegmentFailed(e.to_string())),
    }
    Ok(())
}
