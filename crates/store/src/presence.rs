//! Which cameras are connected. A reconnect storm is thousands of connects a second;
//! writing `last_seen_at` on each would queue them all behind the database's single
//! writer. Presence is kept in memory instead — the time each camera was last seen and
//! the streams it holds open — and written to the database in one transaction every few
//! seconds, which is what other nodes and later restarts read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use cc_core::CameraId;

use crate::authz::Device;
use crate::time::now_ms;
use crate::{Result, Store};

#[derive(Default)]
struct State {
    /// Last seen (ms) of cameras not yet written to the database.
    seen: HashMap<CameraId, i64>,
    /// Streams each camera holds open on this node.
    open: HashMap<CameraId, usize>,
}

/// This node's view of connected cameras.
#[derive(Default)]
pub(crate) struct Presence {
    state: Mutex<State>,
}

impl Presence {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is plain counters; a panic elsewhere cannot leave it inconsistent.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn seen(&self, camera: CameraId, at: i64) {
        let mut state = self.lock();
        let last = state.seen.entry(camera).or_insert(at);
        *last = (*last).max(at);
    }

    /// When this node last saw `camera`: now while it holds a stream open.
    pub(crate) fn last_seen(&self, camera: CameraId) -> Option<i64> {
        let state = self.lock();
        if state.open.get(&camera).is_some_and(|n| *n > 0) {
            return Some(now_ms());
        }
        state.seen.get(&camera).copied()
    }

    /// Everything to write: cameras seen since the last flush and those connected now.
    fn drain(&self) -> Vec<(CameraId, i64)> {
        let mut state = self.lock();
        let now = now_ms();
        let mut out: HashMap<CameraId, i64> = std::mem::take(&mut state.seen);
        for camera in state.open.keys() {
            out.insert(*camera, now);
        }
        out.into_iter().collect()
    }
}

/// Held for as long as a camera's stream is open; the camera counts as connected.
pub struct Connected {
    presence: Arc<Presence>,
    camera: CameraId,
}

impl Drop for Connected {
    fn drop(&mut self) {
        let mut state = self.presence.lock();
        if let Some(n) = state.open.get_mut(&self.camera) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                state.open.remove(&self.camera);
            }
        }
        state.seen.insert(self.camera, now_ms());
    }
}

impl Store {
    /// Records that a camera is connected (in memory; see [`Store::flush_presence`]).
    pub fn touch_device(&self, device: &Device) {
        self.presence.seen(device.camera(), now_ms());
    }

    /// Marks the camera connected until the returned guard is dropped.
    pub fn hold_connection(&self, device: &Device) -> Connected {
        let camera = device.camera();
        *self.presence.lock().open.entry(camera).or_default() += 1;
        Connected {
            presence: self.presence.clone(),
            camera,
        }
    }

    /// Writes this node's presence to the database in one transaction.
    pub async fn flush_presence(&self) -> Result<usize> {
        let mut seen = self.presence.drain();
        if seen.is_empty() {
            return Ok(0);
        }
        // Cameras in ID order, the lock order every writer keeps (see `commit`).
        seen.sort_by_cached_key(|(camera, _)| camera.to_string());
        let mut tx = self.pool.begin().await?;
        for (camera, at) in &seen {
            sqlx::query(
                "UPDATE cameras SET last_seen_at = $1 WHERE id = $2 AND (last_seen_at IS NULL OR last_seen_at < $1)",
            )
            .bind(*at)
            .bind(camera.to_string())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(seen.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_stream_keeps_a_camera_present_and_closing_it_records_the_time() {
        let presence = Arc::new(Presence::default());
        let camera = CameraId::new_v7();
        assert_eq!(presence.last_seen(camera), None);
        *presence.lock().open.entry(camera).or_default() += 1;
        let guard = Connected {
            presence: presence.clone(),
            camera,
        };
        assert!(presence.last_seen(camera).is_some());
        assert_eq!(
            presence.drain().len(),
            1,
            "connected cameras are written each flush"
        );
        drop(guard);
        assert!(presence.lock().open.is_empty());
        assert!(presence.last_seen(camera).is_some());
        assert_eq!(presence.drain().len(), 1);
        assert!(presence.drain().is_empty());
    }
}
