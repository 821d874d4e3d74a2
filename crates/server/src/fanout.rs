//! Fan-out of notices to open streams: new events to members' event streams, key
//! rotations to cameras' device streams. In-process by default; with NATS, every node
//! also publishes what happened on it and relays what other nodes publish, so a viewer
//! on one node hears about an event uploaded through another, and a camera connected to
//! one node hears about a rotation made on another.
//!
//! A notice on NATS carries only IDs. The node that relays it checks the session and the
//! membership of every subscriber before anything is sent (the one door), and fetches the
//! event itself with that proof.

use cc_core::api::EventInfo;
use cc_core::{CameraId, EventId};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// Bounded: a slow stream subscriber loses notices (and is told so) rather than
/// growing memory without limit.
const NOTICE_BUFFER: usize = 1024;

/// A new event for members' streams. `info` is present when the event was stored on
/// this node; a notice relayed from another node has only the IDs.
#[derive(Clone, Debug)]
pub struct EventNotice {
    pub camera_id: CameraId,
    pub event_id: EventId,
    pub info: Option<EventInfo>,
}

/// What goes over NATS: IDs and the publishing node, nothing else.
#[derive(Serialize, Deserialize)]
struct Wire {
    origin: String,
    camera_id: CameraId,
    event_id: Option<EventId>,
}

/// Why a node could not set up its NATS fan-out at start.
#[derive(Debug, thiserror::Error)]
pub enum FanoutError {
    #[error("cannot connect to NATS: {0}")]
    Connect(#[from] async_nats::ConnectError),
    #[error("cannot subscribe on NATS: {0}")]
    Subscribe(#[from] async_nats::SubscribeError),
}

struct Nats {
    client: async_nats::Client,
    prefix: String,
}

/// The node's notice hub.
pub struct Fanout {
    /// Tells this node's own publications apart from other nodes' when they come back.
    origin: String,
    events: broadcast::Sender<EventNotice>,
    rotations: broadcast::Sender<CameraId>,
    nats: Option<Nats>,
}

impl Default for Fanout {
    fn default() -> Self {
        Self::in_process()
    }
}

impl Fanout {
    /// Notices reach only streams open on this node.
    pub fn in_process() -> Self {
        let (events, _) = broadcast::channel(NOTICE_BUFFER);
        let (rotations, _) = broadcast::channel(NOTICE_BUFFER);
        Self {
            origin: hex::encode(rand::random::<[u8; 16]>()),
            events,
            rotations,
            nats: None,
        }
    }

    /// Notices also cross nodes through NATS at `url`, on subjects
    /// `<prefix>.camera.<camera_id>.events` and `<prefix>.camera.<camera_id>.config`
    /// (core publish/subscribe only, which every NATS server version speaks). A node
    /// starts even while NATS is down and connects when it comes back; until then its
    /// notices reach only its own streams.
    pub async fn nats(url: &str, prefix: &str) -> Result<Self, FanoutError> {
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect(url)
            .await?;
        let mut fanout = Self::in_process();
        let mut events = client
            .subscribe(format!("{prefix}.camera.*.events"))
            .await?;
        let mut config = client
            .subscribe(format!("{prefix}.camera.*.config"))
            .await?;
        let (origin, event_tx, rotation_tx) = (
            fanout.origin.clone(),
            fanout.events.clone(),
            fanout.rotations.clone(),
        );
        tokio::spawn(async move {
            loop {
                let (message, is_event) = tokio::select! {
                    Some(m) = events.next() => (m, true),
                    Some(m) = config.next() => (m, false),
                    else => break,
                };
                let Ok(wire) = serde_json::from_slice::<Wire>(&message.payload) else {
                    tracing::warn!(subject = %message.subject, "ignoring a malformed notice");
                    continue;
                };
                if wire.origin == origin {
                    continue;
                }
                // Nobody listening is fine: notices are a convenience, the list is the truth.
                match (is_event, wire.event_id) {
                    (true, Some(event_id)) => {
                        let _ = event_tx.send(EventNotice {
                            camera_id: wire.camera_id,
                            event_id,
                            info: None,
                        });
                    }
                    (false, _) => {
                        let _ = rotation_tx.send(wire.camera_id);
                    }
                    (true, None) => {}
                }
            }
        });
        fanout.nats = Some(Nats {
            client,
            prefix: prefix.to_owned(),
        });
        Ok(fanout)
    }

    /// Announces an event just stored on this node.
    pub async fn event(&self, info: EventInfo) {
        let (camera_id, event_id) = (info.camera_id, info.event_id);
        let _ = self.events.send(EventNotice {
            camera_id,
            event_id,
            info: Some(info),
        });
        self.publish("events", camera_id, Some(event_id)).await;
    }

    /// Announces that `camera`'s content key was rotated.
    pub async fn rotated(&self, camera: CameraId) {
        let _ = self.rotations.send(camera);
        self.publish("config", camera, None).await;
    }

    /// New events from every node, for a member's stream; the stream checks membership
    /// before it sends anything.
    pub fn subscribe_events(&self) -> broadcast::Receiver<EventNotice> {
        self.events.subscribe()
    }

    /// Rotated cameras from every node, for device streams.
    pub fn subscribe_rotations(&self) -> broadcast::Receiver<CameraId> {
        self.rotations.subscribe()
    }

    async fn publish(&self, kind: &str, camera_id: CameraId, event_id: Option<EventId>) {
        let Some(nats) = &self.nats else { return };
        let wire = Wire {
            origin: self.origin.clone(),
            camera_id,
            event_id,
        };
        let Ok(payload) = serde_json::to_vec(&wire) else {
            return;
        };
        let subject = format!("{}.camera.{camera_id}.{kind}", nats.prefix);
        // A lost notice costs a viewer a refresh, never data: the list is the truth.
        if let Err(e) = nats.client.publish(subject, payload.into()).await {
            tracing::warn!(error = %e, "publishing a notice on NATS failed");
        }
    }
}
