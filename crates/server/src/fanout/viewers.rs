//! Members' event streams on this node, indexed by the cameras they follow and by their
//! user, so a new event wakes only the streams of that camera's members and a new
//! membership reaches the member's open streams. The index only routes: each stream
//! still checks the session and the membership (the one door) before it sends anything.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use cc_core::{CameraId, UserId};
use tokio::sync::mpsc;

use super::{lock, EventNotice};

/// Notices queued per stream; a stream further behind is told how many it missed.
const STREAM_BUFFER: usize = 256;

/// One open stream's routing state.
struct Follower {
    user: UserId,
    sender: mpsc::Sender<EventNotice>,
    missed: Arc<AtomicU64>,
    cameras: HashSet<CameraId>,
}

/// The node's open event streams.
#[derive(Default)]
pub struct Followers {
    next_id: u64,
    streams: HashMap<u64, Follower>,
    by_camera: HashMap<CameraId, HashSet<u64>>,
    by_user: HashMap<UserId, HashSet<u64>>,
}

pub type SharedFollowers = Arc<Mutex<Followers>>;

impl Followers {
    /// Queues `notice` for every stream following its camera.
    pub fn deliver(&self, notice: &EventNotice) {
        let Some(ids) = self.by_camera.get(&notice.camera_id) else {
            return;
        };
        for stream in ids.iter().filter_map(|id| self.streams.get(id)) {
            if stream.sender.try_send(notice.clone()).is_err() {
                stream.missed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// `user` became a member of `camera`: their open streams follow it from now on.
    pub fn granted(&mut self, user: UserId, camera: CameraId) {
        let ids: Vec<u64> = self
            .by_user
            .get(&user)
            .map(|ids| ids.iter().copied().collect())
            .unwrap_or_default();
        for id in ids {
            self.follow(id, camera);
        }
    }

    fn follow(&mut self, id: u64, camera: CameraId) {
        if let Some(stream) = self.streams.get_mut(&id) {
            if stream.cameras.insert(camera) {
                self.by_camera.entry(camera).or_default().insert(id);
            }
        }
    }

    fn remove(&mut self, id: u64) {
        let Some(stream) = self.streams.remove(&id) else {
            return;
        };
        for camera in stream.cameras {
            if let Some(ids) = self.by_camera.get_mut(&camera) {
                ids.remove(&id);
                if ids.is_empty() {
                    self.by_camera.remove(&camera);
                }
            }
        }
        if let Some(ids) = self.by_user.get_mut(&stream.user) {
            ids.remove(&id);
            if ids.is_empty() {
                self.by_user.remove(&stream.user);
            }
        }
    }
}

/// Registers a stream of `user`'s that follows no camera yet.
pub fn open(followers: &SharedFollowers, user: UserId) -> EventNotices {
    let (sender, receiver) = mpsc::channel(STREAM_BUFFER);
    let missed = Arc::new(AtomicU64::new(0));
    let mut index = lock(followers);
    index.next_id += 1;
    let id = index.next_id;
    index.streams.insert(
        id,
        Follower {
            user,
            sender,
            missed: missed.clone(),
            cameras: HashSet::new(),
        },
    );
    index.by_user.entry(user).or_default().insert(id);
    EventNotices {
        id,
        receiver,
        missed,
        followers: followers.clone(),
    }
}

/// One member's event stream: notices of the cameras it follows. Leaves the index when
/// dropped.
pub struct EventNotices {
    id: u64,
    receiver: mpsc::Receiver<EventNotice>,
    missed: Arc<AtomicU64>,
    followers: SharedFollowers,
}

impl EventNotices {
    /// Follows `camera` too (one the member could see when the stream opened).
    pub fn follow(&self, camera: CameraId) {
        lock(&self.followers).follow(self.id, camera);
    }

    /// The next notice, or `Err(n)`: `n` notices were dropped because this stream fell
    /// behind. `None` only if the stream was taken out of the node's index.
    pub async fn next(&mut self) -> Option<Result<EventNotice, u64>> {
        let missed = self.missed.swap(0, Ordering::Relaxed);
        if missed > 0 {
            return Some(Err(missed));
        }
        self.receiver.recv().await.map(Ok)
    }
}

impl Drop for EventNotices {
    fn drop(&mut self) {
        lock(&self.followers).remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cc_core::EventId;

    fn notice(camera: CameraId) -> EventNotice {
        EventNotice {
            camera_id: camera,
            event_id: EventId::new_v7(),
            info: None,
        }
    }

    fn pending(stream: &mut EventNotices) -> Option<Result<EventNotice, u64>> {
        futures_util::FutureExt::now_or_never(stream.next()).flatten()
    }

    #[test]
    fn a_notice_reaches_only_the_streams_that_follow_its_camera() {
        let followers = SharedFollowers::default();
        let (mine, theirs) = (CameraId::new_v7(), CameraId::new_v7());
        let mut my_stream = open(&followers, UserId::new_v7());
        let mut their_stream = open(&followers, UserId::new_v7());
        my_stream.follow(mine);
        their_stream.follow(theirs);
        lock(&followers).deliver(&notice(mine));
        assert!(matches!(pending(&mut my_stream), Some(Ok(n)) if n.camera_id == mine));
        assert!(pending(&mut their_stream).is_none());
    }

    #[test]
    fn a_new_membership_reaches_every_open_stream_of_that_user() {
        let followers = SharedFollowers::default();
        let (user, camera) = (UserId::new_v7(), CameraId::new_v7());
        let mut phone = open(&followers, user);
        let mut laptop = open(&followers, user);
        let mut stranger = open(&followers, UserId::new_v7());
        lock(&followers).granted(user, camera);
        lock(&followers).deliver(&notice(camera));
        assert!(matches!(pending(&mut phone), Some(Ok(_))));
        assert!(matches!(pending(&mut laptop), Some(Ok(_))));
        assert!(pending(&mut stranger).is_none());
    }

    #[test]
    fn a_stream_that_falls_behind_is_told_how_much_it_missed_and_leaves_no_trace() {
        let followers = SharedFollowers::default();
        let camera = CameraId::new_v7();
        let mut stream = open(&followers, UserId::new_v7());
        stream.follow(camera);
        for _ in 0..STREAM_BUFFER + 3 {
            lock(&followers).deliver(&notice(camera));
        }
        assert_eq!(pending(&mut stream).map(|n| n.err()), Some(Some(3)));
        drop(stream);
        let index = lock(&followers);
        assert!(index.streams.is_empty() && index.by_camera.is_empty() && index.by_user.is_empty());
    }
}
