//! Login throttling against password guessing: failures are counted per email and per
//! client address in bounded, expiring caches; past the limit, logins get `429` with
//! `Retry-After` until the window passes.
//!
//! With Redis, failures are also counted there (fixed windows), so a guesser spreading
//! attempts over several nodes meets one limit. The local count is always kept too: when
//! Redis does not answer, the node still throttles on what it saw itself.

use std::time::Duration;

use cc_store::shared::SharedTier;
use moka::sync::Cache;

const WINDOW: Duration = Duration::from_secs(15 * 60);
const PER_EMAIL: u32 = 10;
const PER_ADDRESS: u32 = 50;
const TRACKED: u64 = 100_000;

pub struct LoginThrottle {
    by_email: Cache<String, u32>,
    by_address: Cache<String, u32>,
    shared: Option<SharedTier>,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        let cache = || {
            Cache::builder()
                .max_capacity(TRACKED)
                .time_to_live(WINDOW)
                .build()
        };
        Self {
            by_email: cache(),
            by_address: cache(),
            shared: None,
        }
    }
}

fn email_bucket(email: &str) -> String {
    format!("login:email:{}", key(email))
}

fn address_bucket(address: &str) -> String {
    format!("login:addr:{address}")
}

impl LoginThrottle {
    /// Counts failures in Redis as well, shared with every node.
    pub fn shared(tier: SharedTier) -> Self {
        Self {
            shared: Some(tier),
            ..Self::default()
        }
    }

    /// Seconds to wait, when this email or address has failed too often (on any node,
    /// when Redis is shared and answers).
    pub async fn blocked(&self, email: &str, address: &str) -> Option<u64> {
        if let Some(secs) = self.blocked_here(email, address) {
            return Some(secs);
        }
        let tier = self.shared.as_ref()?;
        let counts = (
            tier.hits(&email_bucket(email)).await,
            tier.hits(&address_bucket(address)).await,
        );
        match counts {
            (Ok(by_email), Ok(by_address)) => (by_email >= u64::from(PER_EMAIL)
                || by_address >= u64::from(PER_ADDRESS))
            .then_some(WINDOW.as_secs()),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "shared login throttle unavailable; using this node's");
                None
            }
        }
    }

    fn blocked_here(&self, email: &str, address: &str) -> Option<u64> {
        let over = self
            .by_email
            .get(&key(email))
            .is_some_and(|n| n >= PER_EMAIL)
            || self
                .by_address
                .get(address)
                .is_some_and(|n| n >= PER_ADDRESS);
        over.then_some(WINDOW.as_secs())
    }

    pub async fn failed(&self, email: &str, address: &str) {
        for (cache, k) in [
            (&self.by_email, key(email)),
            (&self.by_address, address.to_owned()),
        ] {
            let n = cache.get(&k).unwrap_or(0);
            cache.insert(k, n.saturating_add(1));
        }
        if let Some(tier) = &self.shared {
            for bucket in [email_bucket(email), address_bucket(address)] {
                if let Err(e) = tier.hit(&bucket, WINDOW).await {
                    tracing::warn!(error = %e, "shared login throttle unavailable");
                }
            }
        }
    }

    pub async fn succeeded(&self, email: &str) {
        self.by_email.invalidate(&key(email));
        if let Some(tier) = &self.shared {
            if let Err(e) = tier.reset(&email_bucket(email)).await {
                tracing::warn!(error = %e, "shared login throttle unavailable");
            }
        }
    }
}

fn key(email: &str) -> String {
    email.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn blocks_after_the_limit_per_email() {
        let t = LoginThrottle::default();
        for _ in 0..PER_EMAIL {
            assert!(t.blocked("A@x.org", "1.2.3.4").await.is_none());
            t.failed("a@x.org", "1.2.3.4").await;
        }
        assert!(t.blocked("a@x.org", "5.6.7.8").await.is_some());
        assert!(t.blocked("b@x.org", "1.2.3.4").await.is_none());
        t.succeeded("a@x.org").await;
        assert!(t.blocked("a@x.org", "1.2.3.4").await.is_none());
    }

    fn tier(url: &str) -> SharedTier {
        let prefix = format!("cc-test-{}", hex::encode(rand::random::<[u8; 8]>()));
        match SharedTier::connect(url, &prefix) {
            Ok(tier) => tier,
            Err(e) => panic!("redis client: {e}"),
        }
    }

    #[tokio::test]
    async fn failures_on_several_nodes_meet_one_limit() {
        let tier = tier("redis://127.0.0.1:6379");
        let nodes: Vec<LoginThrottle> = (0..3)
            .map(|_| LoginThrottle::shared(tier.clone()))
            .collect();
        for attempt in 0..PER_EMAIL {
            let node = &nodes[attempt as usize % nodes.len()];
            assert!(node.blocked("s@x.org", "9.9.9.9").await.is_none());
            node.failed("s@x.org", "9.9.9.9").await;
        }
        for node in &nodes {
            assert!(node.blocked("s@x.org", "8.8.8.8").await.is_some());
        }
        nodes[0].succeeded("s@x.org").await;
        assert!(nodes[1].blocked("s@x.org", "8.8.8.8").await.is_none());
    }

    #[tokio::test]
    async fn with_redis_down_each_node_still_throttles() {
        let t = LoginThrottle::shared(tier("redis://127.0.0.1:1"));
        for _ in 0..PER_EMAIL {
            t.failed("d@x.org", "7.7.7.7").await;
        }
        assert!(t.blocked("d@x.org", "7.7.7.7").await.is_some());
    }
}
