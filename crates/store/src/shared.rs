//! Redis as the tier that several nodes share: membership generations and cached door
//! answers (DESIGN I4 across nodes), and fixed-window rate-limit counters.
//!
//! Every call has a short deadline. A Redis error or timeout is reported to the caller,
//! which degrades to the database (the door) or to its own local limiter (rate limits);
//! nothing here ever turns an error into "allowed".
//!
//! Requests go through `redis`'s multiplexed connection manager, which pairs every reply
//! with the request that asked for it inside its own driver task: a caller cancelled
//! between sending and receiving cannot leave a reply on the connection for the next
//! caller to read (the failure behind the redis-py incident that leaked chat titles).

use std::time::Duration;

use cc_core::api::Role;
use cc_core::{CameraId, UserId};
use rand::Rng;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};

use crate::cache::{MemberEntry, MemberKey};

/// Why a shared-tier call gave no answer; callers degrade, never allow.
#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("redis returned an unexpected value")]
    Garbled,
    #[error("redis failed moments ago; not asked again yet")]
    Resting,
}

/// How long any one Redis call may take before the caller degrades.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(200);

/// After a failed call, calls fail at once for this long instead of each waiting out
/// its own deadline: an outage should cost requests a database query, not 200 ms each.
const REST_AFTER_FAILURE_MS: u64 = 1_000;

/// How long a door answer stays in Redis; a generation bump retires it sooner.
const ENTRY_TTL_SECS: u64 = 300;

/// Generation keys outlive every entry computed under them, then are re-seeded.
const GENERATION_TTL_SECS: u64 = 86_400;

/// Reads a camera's generation, seeding a missing one with a random value, so that a
/// Redis that lost its data (it keeps nothing on disk) never hands out a generation an
/// entry from before the loss was computed under.
const READ_GENERATION: &str = r"
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'NX')
  v = redis.call('GET', KEYS[1])
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return v
";

/// Moves a camera's generation on; a missing one is re-seeded at random rather than
/// restarted at 1.
const BUMP_GENERATION: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('INCR', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return redis.call('GET', KEYS[1])
";

/// One fixed-window counter: the count in the current window after this hit.
const HIT_WINDOW: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
";

/// A door answer as stored in Redis: the full key it was computed for and the
/// generation, so a reader can refuse an entry that is not about what it asked.
#[derive(Serialize, Deserialize)]
struct WireEntry {
    user: UserId,
    camera: CameraId,
    generation: u64,
    role: Option<Role>,
    expires_at: Option<i64>,
}

/// A handle on the shared Redis tier; cheap to clone, one per node is enough.
#[derive(Clone)]
pub struct SharedTier {
    conn: ConnectionManager,
    prefix: String,
    timeout: Duration,
    read_generation: std::sync::Arc<redis::Script>,
    bump_generation: std::sync::Arc<redis::Script>,
    hit_window: std::sync::Arc<redis::Script>,
    /// Until when (ms since the epoch) calls fail without asking Redis.
    resting_until: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl SharedTier {
    /// Connects lazily to `url` (`redis://host:port/db`), so a node starts even while
    /// Redis is down. Every key starts with `prefix`, letting several installations (or
    /// parallel tests) share one Redis.
    pub fn connect(url: &str, prefix: &str) -> Result<Self, SharedError> {
        Self::connect_with_timeout(url, prefix, DEFAULT_TIMEOUT)
    }

    /// As [`SharedTier::connect`], with a different deadline per call.
    pub fn connect_with_timeout(
        url: &str,
        prefix: &str,
        timeout: Duration,
    ) -> Result<Self, SharedError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1);
        let conn = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
            timeout,
            read_generation: std::sync::Arc::new(redis::Script::new(READ_GENERATION)),
            bump_generation: std::sync::Arc::new(redis::Script::new(BUMP_GENERATION)),
            hit_window: std::sync::Arc::new(redis::Script::new(HIT_WINDOW)),
            resting_until: std::sync::Arc::default(),
        })
    }

    fn generation_key(&self, camera: CameraId) -> String {
        format!("{}:gen:{camera}", self.prefix)
    }

    fn entry_key(&self, key: MemberKey) -> String {
        format!("{}:member:{}:{}", self.prefix, key.camera, key.user)
    }

    async fn deadline<T>(
        &self,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, SharedError> {
        use std::sync::atomic::Ordering;
        let now = u64::try_from(crate::time::now_ms()).unwrap_or(0);
        if now < self.resting_until.load(Ordering::Relaxed) {
            return Err(SharedError::Resting);
        }
        let result = match tokio::time::timeout(self.timeout, call).await {
            Err(_) => Err(SharedError::Timeout(self.timeout)),
            Ok(answer) => answer.map_err(SharedError::from),
        };
        if result.is_err() {
            self.resting_until
                .store(now + REST_AFTER_FAILURE_MS, Ordering::Relaxed);
        }
        result
    }

    async fn generation_script(
        &self,
        script: &redis::Script,
        camera: CameraId,
    ) -> Result<u64, SharedError> {
        // Below 2^52 so Lua's numbers carry it exactly; far from any value INCR reaches.
        let seed: u64 = rand::thread_rng().gen_range(1..(1u64 << 52));
        let mut conn = self.conn.clone();
        let text: String = self
            .deadline(
                script
                    .key(self.generation_key(camera))
                    .arg(seed)
                    .arg(GENERATION_TTL_SECS)
                    .invoke_async(&mut conn),
            )
            .await?;
        text.parse().map_err(|_| SharedError::Garbled)
    }

    /// The camera's membership generation as every node sees it.
    pub(crate) async fn generation(&self, camera: CameraId) -> Result<u64, SharedError> {
        self.generation_script(&self.read_generation, camera).await
    }

    /// Retires every node's entries about `camera`.
    pub(crate) async fn bump(&self, camera: CameraId) -> Result<u64, SharedError> {
        self.generation_script(&self.bump_generation, camera).await
    }

    /// The stored entry for `key`, if any; the caller re-checks key and generation.
    pub(crate) async fn entry(&self, key: MemberKey) -> Result<Option<MemberEntry>, SharedError> {
        let mut conn = self.conn.clone();
        let text: Option<String> = self
            .deadline(
                redis::cmd("GET")
                    .arg(self.entry_key(key))
                    .query_async(&mut conn),
            )
            .await?;
        let Some(text) = text else { return Ok(None) };
        let wire: WireEntry = serde_json::from_str(&text).map_err(|_| SharedError::Garbled)?;
        Ok(Some(MemberEntry {
            key: MemberKey {
                user: wire.user,
                camera: wire.camera,
            },
            generation: wire.generation,
            role: wire.role,
            expires_at: wire.expires_at,
        }))
    }

    /// Stores an entry under its own key.
    pub(crate) async fn put_entry(&self, entry: &MemberEntry) -> Result<(), SharedError> {
        self.write_entry(entry.key, entry).await
    }

    /// Stores `entry` under `slot`'s Redis key, whatever key the entry is about: how a
    /// test plays a Redis that mixes entries up.
    #[cfg(any(test, feature = "test-support"))]
    pub async fn plant_entry(
        &self,
        slot: MemberKey,
        entry: &MemberEntry,
    ) -> Result<(), SharedError> {
        self.write_entry(slot, entry).await
    }

    /// Sets `camera`'s generation to `value`: how a test plays a Redis that hands out an
    /// old generation.
    #[cfg(any(test, feature = "test-support"))]
    pub async fn plant_generation(&self, camera: CameraId, value: u64) -> Result<(), SharedError> {
        let mut conn = self.conn.clone();
        self.deadline(
            redis::cmd("SET")
                .arg(self.generation_key(camera))
                .arg(value)
                .query_async::<()>(&mut conn),
        )
        .await
    }

    async fn write_entry(&self, slot: MemberKey, entry: &MemberEntry) -> Result<(), SharedError> {
        let wire = WireEntry {
            user: entry.key.user,
            camera: entry.key.camera,
            generation: entry.generation,
            role: entry.role,
            expires_at: entry.expires_at,
        };
        let text = serde_json::to_string(&wire).map_err(|_| SharedError::Garbled)?;
        let mut conn = self.conn.clone();
        self.deadline(
            redis::cmd("SET")
                .arg(self.entry_key(slot))
                .arg(text)
                .arg("EX")
                .arg(ENTRY_TTL_SECS)
                .query_async::<()>(&mut conn),
        )
        .await
    }

    fn rate_key(&self, bucket: &str) -> String {
        format!("{}:rate:{bucket}", self.prefix)
    }

    /// Counts one hit on `bucket` in the current fixed window of `window` and returns the
    /// count so far, shared by every node.
    pub async fn hit(&self, bucket: &str, window: Duration) -> Result<u64, SharedError> {
        let millis = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut conn = self.conn.clone();
        self.deadline(
            self.hit_window
                .key(self.rate_key(bucket))
                .arg(millis)
                .invoke_async(&mut conn),
        )
        .await
    }

    /// Hits on `bucket` in its current window, without counting one.
    pub async fn hits(&self, bucket: &str) -> Result<u64, SharedError> {
        let mut conn = self.conn.clone();
        let count: Option<u64> = self
            .deadline(
                redis::cmd("GET")
                    .arg(self.rate_key(bucket))
                    .query_async(&mut conn),
            )
            .await?;
        Ok(count.unwrap_or(0))
    }

    /// Starts `bucket` over (a successful login clears its failures).
    pub async fn reset(&self, bucket: &str) -> Result<(), SharedError> {
        let mut conn = self.conn.clone();
        self.deadline(
            redis::cmd("DEL")
                .arg(self.rate_key(bucket))
                .query_async::<()>(&mut conn),
        )
        .await
    }
}
