//! Shared state of one server node.

use std::path::PathBuf;
use std::sync::Arc;

use cc_core::api::EventInfo;
use cc_core::CameraId;
use cc_store::Store;
use tokio::sync::broadcast;

use crate::admission::Admission;
use crate::throttle::LoginThrottle;
use crate::Config;

/// Bounded: a slow stream subscriber loses notices (and is told so) rather than
/// growing memory without limit.
const NOTICE_BUFFER: usize = 1024;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    /// Where uploads are spooled before they are moved, durably, into the blob store.
    pub staging: Arc<PathBuf>,
    /// New events, fanned out to open streams; each subscriber re-checks access.
    pub notices: broadcast::Sender<EventInfo>,
    pub login_throttle: Arc<LoginThrottle>,
    /// Cameras whose content key was rotated, for their device streams.
    pub rotations: broadcast::Sender<CameraId>,
    pub admission: Arc<Admission>,
}

impl AppState {
    pub fn new(store: Store, config: Config, staging: PathBuf) -> Self {
        let (notices, _) = broadcast::channel(NOTICE_BUFFER);
        let (rotations, _) = broadcast::channel(NOTICE_BUFFER);
        let admission = Arc::new(Admission::new(config.limits.clone()));
        Self {
            store,
            config: Arc::new(config),
            staging: Arc::new(staging),
            notices,
            login_throttle: Arc::default(),
            rotations,
            admission,
        }
    }
}
