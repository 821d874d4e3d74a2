//! Shared state of one server node.

use std::path::PathBuf;
use std::sync::Arc;

use cc_store::Store;

use crate::admission::Admission;
use crate::fanout::Fanout;
use crate::throttle::LoginThrottle;
use crate::Config;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    /// Where uploads are spooled before they are moved, durably, into the blob store.
    pub staging: Arc<PathBuf>,
    /// New events and key rotations, fanned out to open streams (in-process or across
    /// nodes); each subscriber re-checks access.
    pub fanout: Arc<Fanout>,
    pub login_throttle: Arc<LoginThrottle>,
    pub admission: Arc<Admission>,
}

impl AppState {
    pub fn new(store: Store, config: Config, staging: PathBuf) -> Self {
        let admission = Arc::new(Admission::new(config.limits.clone()));
        Self {
            store,
            config: Arc::new(config),
            staging: Arc::new(staging),
            fanout: Arc::default(),
            login_throttle: Arc::default(),
            admission,
        }
    }

    /// Counts login failures and camera handshakes in Redis, shared with every node.
    pub fn with_shared_limits(mut self, tier: cc_store::shared::SharedTier) -> Self {
        self.login_throttle = Arc::new(LoginThrottle::shared(tier.clone()));
        self.admission = Arc::new(Admission::new(self.config.limits.clone()).with_shared(tier));
        self
    }

    /// Fans notices out through `fanout` (NATS, when several nodes serve) instead of
    /// in-process only.
    pub fn with_fanout(mut self, fanout: Fanout) -> Self {
        self.fanout = Arc::new(fanout);
        self
    }
}
