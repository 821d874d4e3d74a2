//! Login throttling against password guessing: failures are counted per email and per
//! client address in bounded, expiring caches; past the limit, logins get `429` with
//! `Retry-After` until the window passes.

use std::time::Duration;

use moka::sync::Cache;

const WINDOW: Duration = Duration::from_secs(15 * 60);
const PER_EMAIL: u32 = 10;
const PER_ADDRESS: u32 = 50;
const TRACKED: u64 = 100_000;

pub struct LoginThrottle {
    by_email: Cache<String, u32>,
    by_address: Cache<String, u32>,
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
        }
    }
}

impl LoginThrottle {
    /// Seconds to wait, when this email or address has failed too often.
    pub fn blocked(&self, email: &str, address: &str) -> Option<u64> {
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

    pub fn failed(&self, email: &str, address: &str) {
        for (cache, k) in [
            (&self.by_email, key(email)),
            (&self.by_address, address.to_owned()),
        ] {
            let n = cache.get(&k).unwrap_or(0);
            cache.insert(k, n.saturating_add(1));
        }
    }

    pub fn succeeded(&self, email: &str) {
        self.by_email.invalidate(&key(email));
    }
}

fn key(email: &str) -> String {
    email.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit_per_email() {
        let t = LoginThrottle::default();
        for _ in 0..PER_EMAIL {
            assert!(t.blocked("A@x.org", "1.2.3.4").is_none());
            t.failed("a@x.org", "1.2.3.4");
        }
        assert!(t.blocked("a@x.org", "5.6.7.8").is_some());
        assert!(t.blocked("b@x.org", "1.2.3.4").is_none());
        t.succeeded("a@x.org");
        assert!(t.blocked("a@x.org", "1.2.3.4").is_none());
    }
}
