//! Following new events live over Server-Sent Events. Every announced event is verified
//! like a listed one before it is reported; a dropped connection is re-opened with
//! backoff, and the caller is told so it can say that events may have been missed.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use cc_core::api::EventInfo;
use cc_core::CameraId;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;

use crate::backoff::Backoff;
use crate::error::ClientError;
use crate::events::{EventView, StreamVerifier};
use crate::profile::Session;
use crate::sse::{SseMessage, SseParser};

/// The server sends a keep-alive comment every 15 s; silence for this long means the
/// connection is dead even if the socket does not know it yet.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// What happened next on the stream.
pub enum WatchEvent {
    /// The stream is (re)connected.
    Connected,
    /// A new event, with the outcome of verifying it.
    Event(Box<EventView>),
    /// The server dropped this many notices because we fell behind.
    Lagged(u64),
    /// The server sent something that is not an event notice.
    Malformed(String),
    /// The stream broke; it will be re-opened after `retry_in`.
    Disconnected { reason: String, retry_in: Duration },
}

/// A live view of the user's new events, optionally of one camera only.
pub struct Watcher<'a> {
    session: &'a Session,
    only: Option<CameraId>,
    verifier: StreamVerifier,
    parser: SseParser,
    body: Option<BoxStream<'static, reqwest::Result<Bytes>>>,
    pending: VecDeque<SseMessage>,
    backoff: Backoff,
    wait: Option<Duration>,
}

impl<'a> Watcher<'a> {
    pub fn new(session: &'a Session, only: Option<CameraId>) -> Self {
        Self {
            session,
            only,
            verifier: StreamVerifier::new(),
            parser: SseParser::default(),
            body: None,
            pending: VecDeque::new(),
            backoff: Backoff::new(Duration::from_millis(500), Duration::from_secs(30)),
            wait: None,
        }
    }

    /// Waits for the next thing to report. `Err` only for failures that retrying cannot
    /// fix (e.g. the session was logged out).
    pub async fn next(&mut self) -> Result<WatchEvent, ClientError> {
        loop {
            if let Some(message) = self.pending.pop_front() {
                if let Some(event) = self.interpret(message).await {
                    return Ok(event);
                }
                continue;
            }
            let Some(body) = self.body.as_mut() else {
                if let Some(delay) = self.wait.take() {
                    tokio::time::sleep(delay).await;
                }
                return self.open().await;
            };
            let reason = match tokio::time::timeout(IDLE_TIMEOUT, body.next()).await {
                Ok(Some(Ok(chunk))) => match self.parser.push(&chunk) {
                    Ok(messages) => {
                        self.backoff.reset();
                        self.pending.extend(messages);
                        continue;
                    }
                    Err(e) => e.to_string(),
                },
                Ok(Some(Err(e))) => format!("the connection broke: {e}"),
                Ok(None) => "the server closed the stream".to_owned(),
                Err(_) => format!("nothing heard for {}s", IDLE_TIMEOUT.as_secs()),
            };
            return Ok(self.disconnected(reason, None));
        }
    }

    async fn open(&mut self) -> Result<WatchEvent, ClientError> {
        match self.session.api.event_stream().await {
            Ok(response) => {
                self.parser = SseParser::default();
                self.body = Some(response.bytes_stream().boxed());
                Ok(WatchEvent::Connected)
            }
            Err(e) if e.is_transient() => {
                let retry_after = e.retry_after();
                Ok(self.disconnected(e.to_string(), retry_after))
            }
            Err(e) => Err(e),
        }
    }

    fn disconnected(&mut self, reason: String, retry_after: Option<Duration>) -> WatchEvent {
        self.body = None;
        let retry_in = self.backoff.next_delay(retry_after);
        self.wait = Some(retry_in);
        WatchEvent::Disconnected { reason, retry_in }
    }

    async fn interpret(&mut self, message: SseMessage) -> Option<WatchEvent> {
        match message.event.as_str() {
            "event" => match serde_json::from_str::<EventInfo>(&message.data) {
                Ok(info) if self.only.is_some_and(|camera| camera != info.camera_id) => None,
                Ok(info) => Some(WatchEvent::Event(Box::new(
                    self.verifier.verify(self.session, info).await,
                ))),
                Err(e) => Some(WatchEvent::Malformed(format!(
                    "an event notice is not valid: {e}"
                ))),
            },
            "lagged" => Some(WatchEvent::Lagged(
                message.data.trim().parse().unwrap_or_default(),
            )),
            _ => None,
        }
    }
}
