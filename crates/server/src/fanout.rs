//! Fan-out between open streams: new events to members' event streams, key rotations and
//! requests for live view to cameras' device streams, live segments from a camera to its
//! viewers. In-process by default; with NATS, every node also publishes what happened on
//! it and relays what other nodes publish, so a viewer on one node hears about an event
//! uploaded through another, a camera connected to one node hears about a rotation made
//! on another, and a viewer on one node watches a camera connected to another.
//!
//! Streams are indexed by camera on each node (`viewers` for members' event streams,
//! [`DeviceNotices`] for cameras), so a notice wakes only the streams it concerns.
//!
//! A notice on NATS carries only IDs; a live segment is ciphertext the relaying node
//! cannot open. The node that relays either to a subscriber checks the session and the
//! membership of that subscriber before anything is sent (the one door), and fetches an
//! event itself with that proof.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use cc_core::api::{EventInfo, LiveFrame};
use cc_core::{CameraId, EventId, UserId};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

mod viewers;

pub use viewers::EventNotices;

/// Live segments queued per camera per node; a viewer further behind skips ahead.
const LIVE_BUFFER: usize = 8;

/// Notices queued per camera for its device stream; a stream further behind re-reads its
/// configuration (see [`DeviceNotices::next`]).
const DEVICE_BUFFER: usize = 8;

/// Requests for live view closer together than this are one request to the camera,
/// however many viewers renew them.
const LIVE_EVERY: Duration = Duration::from_secs(3);

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
    /// The new member, on `….granted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user_id: Option<UserId>,
}

/// A live segment on NATS, with the node that published it.
#[derive(Serialize, Deserialize)]
struct LiveWire {
    origin: String,
    frame: LiveFrame,
}

/// The subjects a node hears on; `Want` asks a camera's node to start its live view,
/// `Granted` tells every node that a user became a member of a camera.
#[derive(Clone, Copy)]
enum Subject {
    Events,
    Config,
    Want,
    Granted,
}

impl Subject {
    fn as_str(self) -> &'static str {
        match self {
            Subject::Events => "events",
            Subject::Config => "config",
            Subject::Want => "want",
            Subject::Granted => "granted",
        }
    }
}

type LiveSender = broadcast::Sender<Arc<LiveFrame>>;

/// What a camera's device stream is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceNotice {
    /// Its content key was rotated (or may have been): its configuration is to be re-read.
    Rotated,
    /// Someone asked to watch it live.
    LiveWanted,
}

type DeviceSender = broadcast::Sender<DeviceNotice>;
type DeviceSenders = Arc<Mutex<HashMap<CameraId, DeviceSender>>>;

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
    /// Members' event streams on this node, by the cameras they follow.
    followers: viewers::SharedFollowers,
    /// One channel per camera with a device stream open on this node, so a notice wakes
    /// that camera's stream and no other.
    devices: DeviceSenders,
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
        Self {
            origin: hex::encode(rand::random::<[u8; 16]>()),
            followers: Arc::default(),
            devices: Arc::default(),
            wanted_at: Arc::default(),
            live: Arc::default(),
            nats: None,
        }
    }

    /// Notices also cross nodes through NATS at `url`, on subjects
    /// `<prefix>.camera.<camera_id>.events`, `….config`, `….want` and `….granted`, and
    /// live segments on
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
        let mut granted = client
            .subscribe(format!("{prefix}.camera.*.granted"))
            .await?;
        let (origin, followers, devices, wanted_at) = (
            fanout.origin.clone(),
            fanout.followers.clone(),
            fanout.devices.clone(),
            fanout.wanted_at.clone(),
        );
        tokio::spawn(async move {
            loop {
                // Memberships first: an event right behind a grant then finds its stream.
                let (message, subject) = tokio::select! {
                    biased;
                    Some(m) = granted.next() => (m, Subject::Granted),
                    Some(m) = config.next() => (m, Subject::Config),
                    Some(m) = wants.next() => (m, Subject::Want),
                    Some(m) = events.next() => (m, Subject::Events),
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
                        lock(&followers).deliver(&EventNotice {
                            camera_id: wire.camera_id,
                            event_id,
                            info: None,
                        });
                    }
                    (Subject::Granted, _) => {
                        if let Some(user) = wire.user_id {
                            lock(&followers).granted(user, wire.camera_id);
                        }
                    }
                    (Subject::Config, _) => {
                        tell_device(&devices, wire.camera_id, DeviceNotice::Rotated);
                    }
                    (Subject::Want, _) => {
                        remember_wanted(&wanted_at, wire.camera_id);
                        tell_device(&devices, wire.camera_id, DeviceNotice::LiveWanted);
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
        lock(&self.followers).deliver(&EventNotice {
            camera_id,
            event_id,
            info: Some(info),
        });
        self.publish(Subject::Events, camera_id, Some(event_id), None)
            .await;
    }

    /// Announces that `user` became a member of `camera` (a claim, an accepted invitation
    /// or transfer), so the user's open event streams on every node follow it.
    pub async fn granted(&self, user: UserId, camera: CameraId) {
        lock(&self.followers).granted(user, camera);
        self.publish(Subject::Granted, camera, None, Some(user))
            .await;
    }

    /// Announces that `camera`'s content key was rotated.
    pub async fn rotated(&self, camera: CameraId) {
        tell_device(&self.devices, camera, DeviceNotice::Rotated);
        self.publish(Subject::Config, camera, None, None).await;
    }

    /// Asks `camera`, wherever it is connected, to send live segments for the next
    /// [`LIVE_LEASE`]. Viewers call this when they start watching and again while they do.
    pub async fn want_live(&self, camera: CameraId) {
        remember_wanted(&self.wanted_at, camera);
        tell_device(&self.devices, camera, DeviceNotice::LiveWanted);
        self.publish(Subject::Want, camera, None, None).await;
    }

    /// Whether anyone, on any node, asked for `camera`'s live view within the lease.
    pub fn live_wanted(&self, camera: CameraId) -> bool {
        lock(&self.wanted_at)
            .get(&camera)
            .is_some_and(|at| at.elapsed() < LIVE_LEASE)
    }

    /// Notices for `camera`'s device stream, from every node: rotations of its key and
    /// requests to watch it live.
    pub fn device_notices(&self, camera: CameraId) -> DeviceNotices {
        let receiver = lock(&self.devices)
            .entry(camera)
            .or_insert_with(|| broadcast::channel(DEVICE_BUFFER).0)
            .subscribe();
        DeviceNotices {
            receiver,
            camera,
            devices: self.devices.clone(),
            live_told: None,
        }
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

    /// New events from every node of the cameras the stream follows, for one stream of
    /// `user`'s, which checks membership before it sends anything. It follows the cameras
    /// the user is granted from now on; the caller adds those the user already has.
    pub fn watch_events(&self, user: UserId) -> EventNotices {
        viewers::open(&self.followers, user)
    }

    async fn publish(
        &self,
        subject: Subject,
        camera_id: CameraId,
        event_id: Option<EventId>,
        user_id: Option<UserId>,
    ) {
        let Some(nats) = &self.nats else { return };
        let wire = Wire {
            origin: self.origin.clone(),
            camera_id,
            event_id,
            user_id,
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

/// One device stream's notices. The camera's channel on this node goes with the last
/// stream of that camera.
pub struct DeviceNotices {
    receiver: broadcast::Receiver<DeviceNotice>,
    camera: CameraId,
    devices: DeviceSenders,
    /// When the camera was last told to stream.
    live_told: Option<Instant>,
}

impl DeviceNotices {
    /// The next notice for the camera; `None` only if its channel is gone (the node's
    /// fan-out was dropped). A stream that fell behind hears `Rotated`, so it re-reads its configuration rather than
    /// miss a rotation.
    pub async fn next(&mut self) -> Option<DeviceNotice> {
        loop {
            let notice = match self.receiver.recv().await {
                Ok(notice) => notice,
                Err(RecvError::Lagged(_)) => DeviceNotice::Rotated,
                Err(RecvError::Closed) => return None,
            };
            if notice == DeviceNotice::LiveWanted {
                if self.live_told.is_some_and(|at| at.elapsed() < LIVE_EVERY) {
                    continue;
                }
                self.live_told = Some(Instant::now());
            }
            return Some(notice);
        }
    }
}

impl Drop for DeviceNotices {
    fn drop(&mut self) {
        let mut devices = lock(&self.devices);
        // This stream's receiver still counts: 1 means it was the camera's last one.
        if devices
            .get(&self.camera)
            .is_some_and(|sender| sender.receiver_count() <= 1)
        {
            devices.remove(&self.camera);
        }
    }
}

/// Wakes `camera`'s device stream on this node, if it has one.
fn tell_device(
    devices: &Mutex<HashMap<CameraId, DeviceSender>>,
    camera: CameraId,
    notice: DeviceNotice,
) {
    let mut devices = lock(devices);
    if let Some(sender) = devices.get(&camera) {
        if sender.send(notice).is_err() {
            devices.remove(&camera);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(notices: &mut DeviceNotices) -> Option<DeviceNotice> {
        futures_util::FutureExt::now_or_never(notices.next()).flatten()
    }

    #[tokio::test]
    async fn a_notice_wakes_its_own_cameras_stream_and_no_other() {
        let fanout = Fanout::in_process();
        let (mine, theirs) = (CameraId::new_v7(), CameraId::new_v7());
        let mut my_stream = fanout.device_notices(mine);
        let mut their_stream = fanout.device_notices(theirs);
        fanout.rotated(mine).await;
        assert_eq!(pending(&mut my_stream), Some(DeviceNotice::Rotated));
        assert_eq!(pending(&mut their_stream), None);
    }

    #[tokio::test]
    async fn requests_for_live_view_are_coalesced_and_a_lagging_stream_re_reads_its_config() {
        let fanout = Fanout::in_process();
        let camera = CameraId::new_v7();
        let mut stream = fanout.device_notices(camera);
        fanout.want_live(camera).await;
        fanout.want_live(camera).await;
        assert_eq!(pending(&mut stream), Some(DeviceNotice::LiveWanted));
        assert_eq!(
            pending(&mut stream),
            None,
            "a renewal within seconds is the same request"
        );
        for _ in 0..DEVICE_BUFFER + 1 {
            fanout.want_live(camera).await;
        }
        assert_eq!(pending(&mut stream), Some(DeviceNotice::Rotated));
    }

    #[tokio::test]
    async fn a_cameras_slot_goes_with_its_last_stream() {
        let fanout = Fanout::in_process();
        let camera = CameraId::new_v7();
        let first = fanout.device_notices(camera);
        let mut second = fanout.device_notices(camera);
        drop(first);
        assert!(lock(&fanout.devices).contains_key(&camera));
        fanout.rotated(camera).await;
        assert_eq!(pending(&mut second), Some(DeviceNotice::Rotated));
        drop(second);
        assert!(lock(&fanout.devices).is_empty());
    }
}
