//! Exponential backoff with full jitter (DESIGN I6): after the n-th failure wait a random
//! time in `[0, min(cap, base·2ⁿ)]`, so thousands of cameras that lost the server at the
//! same moment do not come back at the same moment. A server's `Retry-After` is a floor.

use std::future::Future;
use std::time::Duration;

use rand::Rng;

use crate::error::ClientError;

/// The longest `Retry-After` honoured; a longer one is treated as this, so a confused
/// server cannot park a camera for days.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// Backoff state for one sequence of retries.
#[derive(Clone, Debug)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap,
            failures: 0,
        }
    }

    /// The defaults cameras use: 500 ms doubling up to 30 s.
    pub fn for_cameras() -> Self {
        Self::new(Duration::from_millis(500), Duration::from_secs(30))
    }

    /// The upper bound of the next wait: `min(cap, base·2ⁿ)`.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.failures.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// How long to wait after another failure; `retry_after` is what the server asked for.
    pub fn next_delay(&mut self, retry_after: Option<Duration>) -> Duration {
        let ceiling = self.ceiling();
        self.failures = self.failures.saturating_add(1);
        let jittered = rand::thread_rng().gen_range(Duration::ZERO..=ceiling);
        let floor = retry_after.unwrap_or(Duration::ZERO).min(MAX_RETRY_AFTER);
        jittered.max(floor)
    }

    /// Starts over after a success.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// Runs `attempt` until it succeeds or fails for a reason other than a transient one
/// (see [`ClientError::is_transient`]), sleeping with backoff in between. `what` names
/// the operation in the warnings logged for each retry.
pub async fn retry<T, F, Fut>(
    what: &str,
    mut backoff: Backoff,
    mut attempt: F,
) -> Result<T, ClientError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ClientError>>,
{
    loop {
        match attempt().await {
            Err(e) if e.is_transient() => {
                let delay = backoff.next_delay(e.retry_after());
                tracing::warn!(
                    "{what} failed ({e}); retrying in {:.1}s",
                    delay.as_secs_f64()
                );
                tokio::time::sleep(delay).await;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ceiling_doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let mut ceilings = Vec::new();
        for _ in 0..6 {
            ceilings.push(b.ceiling().as_millis());
            b.next_delay(None);
        }
        assert_eq!(ceilings, vec![100, 200, 400, 800, 1000, 1000]);
        b.reset();
        assert_eq!(b.ceiling(), Duration::from_millis(100));
        assert_eq!(b.failures(), 0);
    }

    proptest! {
        #[test]
        fn delays_stay_within_bounds(
            base_ms in 1u64..5_000,
            cap_ms in 1u64..60_000,
            failures in 0u32..200,
            retry_after_s in proptest::option::of(0u64..100_000),
        ) {
            let mut b = Backoff::new(Duration::from_millis(base_ms), Duration::from_millis(cap_ms));
            for _ in 0..failures {
                b.next_delay(None);
            }
            let ceiling = b.ceiling();
            prop_assert!(ceiling <= Duration::from_millis(cap_ms));
            let retry_after = retry_after_s.map(Duration::from_secs);
            let delay = b.next_delay(retry_after);
            let floor = retry_after.unwrap_or_default().min(MAX_RETRY_AFTER);
            prop_assert!(delay >= floor);
            prop_assert!(delay <= ceiling.max(floor));
            prop_assert!(b.ceiling() >= ceiling);
        }
    }
}
