//! Admission control and bulkheads (DESIGN I6). Camera handshakes pass a concurrency
//! limit and a token bucket per node; uploads and viewer requests each have their own
//! concurrency budget, so a camera storm cannot starve people opening the app. When a
//! budget is full the answer is an immediate `503` with a randomized `Retry-After`,
//! never a queue that grows without bound.
//!
//! With Redis, the handshake rate is one budget for the whole installation (a fixed
//! one-second window counted in Redis), since every node's cameras land on the same
//! database; when Redis does not answer, each node falls back to its own token bucket.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use cc_store::shared::SharedTier;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rand::Rng;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::problem;

/// Budgets of one node.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Camera handshakes in progress at once.
    pub handshakes_concurrent: usize,
    /// Camera handshakes admitted per second (token bucket rate and burst).
    pub handshakes_per_second: u32,
    /// Event uploads in progress at once.
    pub uploads_concurrent: usize,
    /// Viewer (user API) requests in progress at once.
    pub viewers_concurrent: usize,
    /// `Retry-After` is drawn uniformly from 1 to this many seconds.
    pub max_retry_after_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            handshakes_concurrent: 64,
            handshakes_per_second: 500,
            uploads_concurrent: 64,
            viewers_concurrent: 512,
            max_retry_after_secs: 5,
        }
    }
}

/// Counts of requests turned away, by budget.
#[derive(Debug, Default)]
pub struct ShedCounts {
    pub handshakes: AtomicU64,
    pub uploads: AtomicU64,
    pub viewers: AtomicU64,
}

pub struct Admission {
    limits: Limits,
    handshakes: Arc<Semaphore>,
    handshake_rate: DefaultDirectRateLimiter,
    uploads: Arc<Semaphore>,
    viewers: Arc<Semaphore>,
    shared: Option<SharedTier>,
    pub shed: ShedCounts,
}

impl Admission {
    pub fn new(limits: Limits) -> Self {
        let rate = NonZeroU32::new(limits.handshakes_per_second.max(1)).unwrap_or(NonZeroU32::MIN);
        Self {
            handshakes: Arc::new(Semaphore::new(limits.handshakes_concurrent.max(1))),
            handshake_rate: RateLimiter::direct(Quota::per_second(rate).allow_burst(rate)),
            uploads: Arc::new(Semaphore::new(limits.uploads_concurrent.max(1))),
            viewers: Arc::new(Semaphore::new(limits.viewers_concurrent.max(1))),
            shared: None,
            shed: ShedCounts::default(),
            limits,
        }
    }

    /// Counts handshakes in Redis, one rate for every node together.
    pub fn with_shared(mut self, tier: SharedTier) -> Self {
        self.shared = Some(tier);
        self
    }

    /// Takes one handshake from the rate budget: the shared window when Redis answers,
    /// this node's token bucket otherwise.
    async fn handshake_allowed(&self) -> bool {
        if let Some(tier) = &self.shared {
            match tier.hit("handshakes", Duration::from_secs(1)).await {
                Ok(n) => return n <= u64::from(self.limits.handshakes_per_second.max(1)),
                Err(e) => {
                    tracing::warn!(error = %e, "shared handshake budget unavailable; using this node's");
                }
            }
        }
        self.handshake_rate.check().is_ok()
    }

    fn overloaded(&self, what: &str) -> Response {
        let secs = rand::thread_rng().gen_range(1..=self.limits.max_retry_after_secs.max(1));
        let mut response = problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "Busy; retry later",
            Some(format!("{what} budget is full; retry after {secs}s")),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        response
    }

    fn try_permit(semaphore: &Arc<Semaphore>) -> Option<OwnedSemaphorePermit> {
        semaphore.clone().try_acquire_owned().ok()
    }
}

/// Gate for `POST /v1/device/connect`: concurrency and rate.
pub async fn handshake_gate(
    State(admission): State<Arc<Admission>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(permit) = Admission::try_permit(&admission.handshakes) else {
        admission.shed.handshakes.fetch_add(1, Ordering::Relaxed);
        return admission.overloaded("handshake");
    };
    if !admission.handshake_allowed().await {
        admission.shed.handshakes.fetch_add(1, Ordering::Relaxed);
        return admission.overloaded("handshake rate");
    }
    let response = next.run(request).await;
    drop(permit);
    response
}

/// Gate for camera uploads.
pub async fn upload_gate(
    State(admission): State<Arc<Admission>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(permit) = Admission::try_permit(&admission.uploads) else {
        admission.shed.uploads.fetch_add(1, Ordering::Relaxed);
        return admission.overloaded("upload");
    };
    let response = next.run(request).await;
    drop(permit);
    response
}

/// Gate for the user API (the viewers' bulkhead).
pub async fn viewer_gate(
    State(admission): State<Arc<Admission>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(permit) = Admission::try_permit(&admission.viewers) else {
        admission.shed.viewers.fetch_add(1, Ordering::Relaxed);
        return admission.overloaded("viewer");
    };
    let response = next.run(request).await;
    drop(permit);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tier(url: &str) -> SharedTier {
        let prefix = format!("cc-test-{}", hex::encode(rand::random::<[u8; 8]>()));
        match SharedTier::connect(url, &prefix) {
            Ok(tier) => tier,
            Err(e) => panic!("redis client: {e}"),
        }
    }

    fn limits() -> Limits {
        Limits {
            handshakes_per_second: 3,
            ..Limits::default()
        }
    }

    async fn admitted(nodes: &[Admission], attempts_each: usize) -> usize {
        let mut admitted = 0;
        for _ in 0..attempts_each {
            for node in nodes {
                admitted += usize::from(node.handshake_allowed().await);
            }
        }
        admitted
    }

    #[tokio::test]
    async fn three_nodes_share_one_handshake_rate() {
        let shared = tier("redis://127.0.0.1:6379");
        let nodes: Vec<Admission> = (0..3)
            .map(|_| Admission::new(limits()).with_shared(shared.clone()))
            .collect();
        // Alone, each node's bucket would admit 3 (9 in all); together they admit one
        // budget, or two should the one-second window roll over mid-test.
        let n = admitted(&nodes, 4).await;
        assert!((3..=6).contains(&n), "{n} admitted");
    }

    #[tokio::test]
    async fn with_redis_down_each_node_keeps_its_own_bucket() {
        let down = tier("redis://127.0.0.1:1");
        let nodes = [Admission::new(limits()).with_shared(down)];
        assert_eq!(admitted(&nodes, 10).await, 3);
    }
}
