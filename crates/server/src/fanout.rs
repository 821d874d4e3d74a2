//! Fan-out between open streams: new events to members' event streams, key rotations and
//! requests for live view to cameras' device streams, live segments from a camera to its
//! viewers. In-process by default; with NATS, every node also publishes what happened on
//! it and relays what other nodes publish, so a viewer on one node hears about an event
//! uploaded through another, a camera connected to one node hears about a rotation made
//! on another, and a viewer on one node watches a camera connected to another.
//!
//! A notice on NATS carries only IDs; a live segment is ciphertext the relaying node
//! cannot open. The node that relays either to a subscriber checks the session and the
//! membership of that subscriber before anything is sent (the one door), and fetches an
//! event itself with that proof.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use cc_core::api::{EventInfo, LiveFrame};
use cc_core::{CameraId, EventId};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// Bounded: a slow stream subscriber loses notices (and is told so) rather than
/// growing memory without limit.
const NOTICE_BUFFER: usize = 1024;

/// Live segments queued per camera per node; a viewer further behind skips ahead.
const LIVE_BUFFER: usize = 8;

/// How long one request for live view lasts. Viewers renew it while they watch; a camera
/// sends segments until it runs out.
pub const LIVE_LEASE: Duration = Duration::from_secs(15);

/// Cameras whose live view was asked for, remembered at most this many at once per node
/// (older requests are forgotten first when it is full).
const MAX_WANTED: usize = 100_000;

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

/// A live segment on NATS, with the node that published it.
#[derive(Serialize, Deserialize)]
struct LiveWire {
    origin: String,
    frame: LiveFrame,
}

/// The subjects a node hears on; `Want` asks a camera's node to start its live view.
#[derive(Clone, Copy)]
enum Subject {
    Events,
    Config,
    Want,
}

impl Subject {
    fn as_str(self) -> &'static str {
        match self {
            Subject::Events => "events",
            Subject::Config => "config",
            Subject::Want => "want",
        }
    }
}

type LiveSender = broadcast::Sender<Arc<LiveFrame>>;

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
    /// Cameras someone asked to watch, for device streams.
    wants: broadcast::Sender<CameraId>,
    /// When each camera's live view was last asked for, on any node.
    wanted_at: Arc<Mutex<HashMap<CameraId, Instant>>>,
    /// One channel per camera watched on this node, while it has viewers.
    live: Arc<Mutex<HashMap<CameraId, LiveSender>>>,
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
        let (wants, _) = broadcast::channel(NOTICE_BUFFER);
        Self {
            origin: hex::encode(rand::random::<[u8; 16]>()),
            events,
            rotations,
            wants,
            wanted_at: Arc::default(),
            live: Arc::default(),
            nats: None,
        }
    }

    /// Notices also cross nodes through NATS at `url`, on subjects
    /// `<prefix>.camera.<camera_id>.events`, `….config` and `….want`, and live segments on
    /// `….live` while this node has viewers of that camera (core publish/subscribe only,
    /// which every NATS server version speaks). A node
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
        let mut wants = client.subscribe(format!("{prefix}.camera.*.want")).await?;
        let (origin, event_tx, rotation_tx, want_tx, wanted_at) = (
            fanout.origin.clone(),
            fanout.events.clone(),
            fanout.rotations.clone(),
            fanout.wants.clone(),
            fanout.wanted_at.clone(),
        );
        tokio::spawn(async move {
            loop {
                let (message, subject) = tokio::select! {
                    Some(m) = events.next() => (m, Subject::Events),
                    Some(m) = config.next() => (m, Subject::Config),
                    Some(m) = wants.next() => (m, Subject::Want),
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
                match (subject, wire.event_id) {
                    (Subject::Events, Some(event_id)) => {
                        let _ = event_tx.send(EventNotice {
                            camera_id: wire.camera_id,
                            event_id,
                            info: None,
                        });
                    }
                    (Subject::Config, _) => {
                        let _ = rotation_tx.send(wire.camera_id);
                    }
                    (Subject::Want, _) => {
                        remember_wanted(&wanted_at, wire.camera_id);
                        let _ = want_tx.send(wire.camera_id);
                    }
                    (Subject::Events, None) => {}
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
        self.publish(Subject::Events, camera_id, Some(event_id))
            .await;
    }

    /// Announces that `camera`'s content key was rotated.
    pub async fn rotated(&self, camera: CameraId) {
        let _ = self.rotations.send(camera);
        self.publish(Subject::Config, camera, None).await;
    }

    /// Asks `camera`, wherever it is connected, to send live segments for the next
    /// [`LIVE_LEASE`]. Viewers call this when they start watching and again while they do.
    pub async fn want_live(&self, camera: CameraId) {
        remember_wanted(&self.wanted_at, camera);
        let _ = self.wants.send(camera);
        self.publish(Subject::Want, camera, None).await;
    }

    /// Whether anyone, on any node, asked for `camera`'s live view within the lease.
    pub fn live_wanted(&self, camera: CameraId) -> bool {
        lock(&self.wanted_at)
            .get(&camera)
            .is_some_and(|at| at.elapsed() < LIVE_LEASE)
    }

    /// Cameras whose live view someone asked for, for device streams.
    pub fn subscribe_wants(&self) -> broadcast::Receiver<CameraId> {
        self.wants.subscribe()
    }

    /// Relays a live segment of `camera` (already checked: signed by its device, for its
    /// current epoch) to its viewers on this node and, through NATS, on every other.
    pub async fn live(&self, camera: CameraId, frame: LiveFrame) {
        let frame = Arc::new(frame);
        {
            let mut channels = lock(&self.live);
            if let Some(sender) = channels.get(&camera) {
                if sender.send(frame.clone()).is_err() {
                    channels.remove(&camera);
                }
            }
        }
        let Some(nats) = &self.nats else { return };
        let wire = LiveWire {
            origin: self.origin.clone(),
            frame: frame.as_ref().clone(),
        };
        let Ok(payload) = serde_json::to_vec(&wire) else {
            return;
        };
        let subject = format!("{}.camera.{camera}.live", nats.prefix);
        if let Err(e) = nats.client.publish(subject, payload.into()).await {
            tracing::warn!(error = %e, "publishing a live segment on NATS failed");
        }
    }

    /// `camera`'s live segments from every node, for one viewer's stream; the stream
    /// checks the viewer's access before it sends each one. With NATS, the first viewer
    /// of a camera on this node subscribes to its segments, and the subscription ends a
    /// little after the last viewer leaves.
    pub async fn watch_live(&self, camera: CameraId) -> broadcast::Receiver<Arc<LiveFrame>> {
        let (receiver, fresh) = {
            let mut channels = lock(&self.live);
            match channels.get(&camera) {
                Some(sender) => (sender.subscribe(), None),
                None => {
                    let (sender, receiver) = broadcast::channel(LIVE_BUFFER);
                    channels.insert(camera, sender.clone());
                    (receiver, Some(sender))
                }
            }
        };
        if let (Some(sender), Some(nats)) = (fresh, &self.nats) {
            let subject = format!("{}.camera.{camera}.live", nats.prefix);
            match nats.client.subscribe(subject).await {
                Ok(subscription) => {
                    tokio::spawn(relay_live(
                        subscription,
                        sender,
                        self.origin.clone(),
                        camera,
                        self.live.clone(),
                    ));
                }
                Err(e) => tracing::warn!(error = %e, "subscribing to live segments on NATS failed"),
            }
        }
        receiver
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

    async fn publish(&self, subject: Subject, camera_id: CameraId, event_id: Option<EventId>) {
        let Some(nats) = &self.nats else { return };
        let wire = Wire {
            origin: self.origin.clone(),
            camera_id,
            event_id,
        };
        let Ok(payload) = serde_json::to_vec(&wire) else {
            return;
        };
        let subject = format!("{}.camera.{camera_id}.{}", nats.prefix, subject.as_str());
        // A lost notice costs a viewer a refresh, never data: the list is the truth.
        if let Err(e) = nats.client.publish(subject, payload.into()).await {
            tracing::warn!(error = %e, "publishing a notice on NATS failed");
        }
    }
}

/// Forwards other nodes' live segments of `camera` to this node's viewers until none is
/// left (checked at every segment and at least once per lease), then unsubscribes.
async fn relay_live(
    mut subscription: async_nats::Subscriber,
    sender: LiveSender,
    origin: String,
    camera: CameraId,
    channels: Arc<Mutex<HashMap<CameraId, LiveSender>>>,
) {
    loop {
        match tokio::time::timeout(LIVE_LEASE, subscription.next()).await {
            Ok(Some(message)) => match serde_json::from_slice::<LiveWire>(&message.payload) {
                Ok(wire) if wire.origin != origin => {
                    let _ = sender.send(Arc::new(wire.frame));
                }
                Ok(_) => {}
                Err(_) => {
                    tracing::warn!(subject = %message.subject, "ignoring a malformed live segment")
                }
            },
            Ok(None) => break,
            Err(_) => {}
        }
        let mut channels = lock(&channels);
        if sender.receiver_count() == 0 {
            if channels
                .get(&camera)
                .is_some_and(|s| s.same_channel(&sender))
            {
                channels.remove(&camera);
            }
            break;
        }
    }
}

fn remember_wanted(wanted_at: &Mutex<HashMap<CameraId, Instant>>, camera: CameraId) {
    let mut wanted = lock(wanted_at);
    if wanted.len() >= MAX_WANTED {
        wanted.retain(|_, at| at.elapsed() < LIVE_LEASE);
        if wanted.len() >= MAX_WANTED {
            wanted.clear();
        }
    }
    wanted.insert(camera, Instant::now());
}

/// The maps behind these locks stay consistent whatever a panicking holder did, so a
/// poisoned lock is used as it is.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
