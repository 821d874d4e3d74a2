//! The membership cache in front of the door (DESIGN I4). An entry stores the full key
//! it was computed for and the camera's membership generation at the time; a read
//! re-checks both and treats any mismatch as a miss (and counts it). Fills are
//! single-flight per key. Every membership change bumps the camera's generation after
//! it commits, so no entry computed before the change is ever believed after it.
//!
//! [`Faults`] turns the cache into a liar for tests and `closedcircuit storm
//! --lying-cache`: it hands out other keys' entries, stale generations and delays.
//! The door must stay correct regardless.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cc_core::api::Role;
use cc_core::{CameraId, UserId};
use moka::future::Cache;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::shared::SharedTier;
use crate::time::now_ms;
use crate::Result;

/// Whose membership of which camera.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MemberKey {
    pub user: UserId,
    pub camera: CameraId,
}

/// A cached answer of the door, with what it was computed for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberEntry {
    pub key: MemberKey,
    pub generation: u64,
    /// `None`: not a member.
    pub role: Option<Role>,
    pub expires_at: Option<i64>,
}

/// Counters for reports and tests.
#[derive(Debug, Default)]
pub struct CacheStats {
    pub hits: AtomicU64,
    pub fills: AtomicU64,
    /// Entries refused because their key or generation did not match.
    pub rejected: AtomicU64,
    /// Answers taken straight from the database because the shared tier did not answer.
    pub degraded: AtomicU64,
}

/// Membership generations per camera, kept in this process. Values come from one
/// process-wide counter, so a generation never repeats, even for a camera not seen before.
#[derive(Default)]
struct LocalGenerations {
    next: AtomicU64,
    by_camera: Mutex<HashMap<CameraId, u64>>,
}

impl LocalGenerations {
    fn current(&self, camera: CameraId) -> u64 {
        self.by_camera
            .lock()
            .map(|m| m.get(&camera).copied().unwrap_or(0))
            .unwrap_or(u64::MAX)
    }

    fn bump(&self, camera: CameraId) {
        let value = self.next.fetch_add(1, Ordering::SeqCst) + 1;
        if let Ok(mut m) = self.by_camera.lock() {
            m.insert(camera, value);
        }
    }
}

/// Where generations live: in this process (one node), or in Redis, where every node
/// reads them, so a bump on one node retires the entries of all (DESIGN I4 across nodes).
enum Generations {
    Local(LocalGenerations),
    Shared(SharedGenerations),
}

/// Generations read from Redis, with the highest this node has seen per camera: a
/// generation lower than that is a Redis that lies or lost its data, and is not
/// believed. Remembered as long as an entry lives, which is as long as it matters.
struct SharedGenerations {
    tier: SharedTier,
    highest: moka::sync::Cache<CameraId, u64>,
}

impl SharedGenerations {
    fn new(tier: SharedTier, capacity: u64) -> Self {
        Self {
            tier,
            highest: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ENTRY_TTL)
                .build(),
        }
    }

    /// `Some` only for a generation not lower than one seen before.
    fn observe(&self, camera: CameraId, generation: u64) -> Option<u64> {
        match self.highest.get(&camera) {
            Some(highest) if generation < highest => {
                tracing::warn!(%camera, "redis reported an older generation; asking the database");
                None
            }
            Some(highest) if generation == highest => Some(generation),
            _ => {
                self.highest.insert(camera, generation);
                Some(generation)
            }
        }
    }
}

impl Generations {
    /// `None`: the shared tier did not answer (or cannot be believed), so nothing cached
    /// may be.
    async fn current(&self, camera: CameraId) -> Option<u64> {
        match self {
            Generations::Local(local) => Some(local.current(camera)),
            Generations::Shared(shared) => match shared.tier.generation(camera).await {
                Ok(generation) => shared.observe(camera, generation),
                Err(e) => {
                    tracing::warn!(error = %e, "shared cache unavailable; asking the database");
                    None
                }
            },
        }
    }
}

/// How long an entry lives, in this process and in Redis alike.
const ENTRY_TTL: Duration = Duration::from_secs(300);

/// Fault injection: a cache that lies.
pub struct Faults {
    rng: Mutex<StdRng>,
    recent: Mutex<VecDeque<MemberEntry>>,
}

impl Faults {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            recent: Mutex::new(VecDeque::with_capacity(256)),
        }
    }

    fn remember(&self, entry: &MemberEntry) {
        if let Ok(mut r) = self.recent.lock() {
            if r.len() == 256 {
                r.pop_front();
            }
            r.push_back(entry.clone());
        }
    }

    /// What the lying cache returns instead of the truth, and how long it stalls first.
    fn lie(&self, key: MemberKey, truth: Option<MemberEntry>) -> (Option<MemberEntry>, Duration) {
        let Ok(mut rng) = self.rng.lock() else {
            return (truth, Duration::ZERO);
        };
        let delay = Duration::from_micros(rng.gen_range(0..2_000));
        let choice = rng.gen_range(0..10);
        let lie = match choice {
            // Another key's entry (the mix-up behind the incident this product answers),
            // promoted to owner for good measure.
            0..=2 => self.recent.lock().ok().and_then(|r| {
                let len = r.len();
                (len > 0)
                    .then(|| r[rng.gen_range(0..len)].clone())
                    .filter(|e| e.key != key)
                    .map(|mut e| {
                        e.role = Some(Role::Owner);
                        e
                    })
            }),
            // The right key with an old generation and a granted role.
            3..=4 => truth.clone().map(|mut e| {
                e.generation = e.generation.wrapping_sub(1);
                e.role = Some(Role::Owner);
                e
            }),
            _ => truth.clone(),
        };
        (lie.or(truth), delay)
    }
}

/// The door's cache of membership answers.
pub struct MembershipCache {
    entries: Cache<MemberKey, MemberEntry>,
    generations: Generations,
    faults: Option<Arc<Faults>>,
    pub stats: CacheStats,
}

/// How often a failed shared bump is retried before the entries' own lifetimes are all
/// that retire them.
const BUMP_ATTEMPTS: u32 = 20;

impl MembershipCache {
    /// A cache for one node, its generations in this process.
    pub fn new(capacity: u64, faults: Option<Arc<Faults>>) -> Self {
        Self::build(
            capacity,
            faults,
            Generations::Local(LocalGenerations::default()),
        )
    }

    /// A cache whose generations and entries live in Redis, shared by every node; this
    /// node's own entries are re-validated against the shared generation on every read.
    pub fn shared(capacity: u64, faults: Option<Arc<Faults>>, tier: SharedTier) -> Self {
        let generations = SharedGenerations::new(tier, capacity);
        Self::build(capacity, faults, Generations::Shared(generations))
    }

    fn build(capacity: u64, faults: Option<Arc<Faults>>, generations: Generations) -> Self {
        Self {
            entries: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ENTRY_TTL)
                .build(),
            generations,
            faults,
            stats: CacheStats::default(),
        }
    }

    /// Forgets every answer about `camera`; call after a membership change commits.
    /// A shared bump that fails is retried in the background; until it lands, other
    /// nodes' entries live at most their lifetime, and this node's reads of the camera
    /// go to the database whenever Redis does not answer.
    pub async fn bump(&self, camera: CameraId) {
        match &self.generations {
            Generations::Local(local) => local.bump(camera),
            Generations::Shared(shared) => match shared.tier.bump(camera).await {
                Ok(generation) => {
                    shared.observe(camera, generation);
                }
                Err(e) => {
                    // This node at least stops believing its own entries at once.
                    self.entries.invalidate_all();
                    tracing::warn!(error = %e, %camera, "shared generation bump failed; retrying");
                    let tier = shared.tier.clone();
                    tokio::spawn(async move {
                        for attempt in 1..=BUMP_ATTEMPTS {
                            tokio::time::sleep(Duration::from_millis(100) * attempt).await;
                            if tier.bump(camera).await.is_ok() {
                                return;
                            }
                        }
                        tracing::error!(%camera, "shared generation bump abandoned");
                    });
                }
            },
        }
    }

    fn valid(key: MemberKey, entry: &MemberEntry, generation: u64) -> bool {
        entry.key == key
            && entry.generation == generation
            && entry.expires_at.is_none_or(|t| t > now_ms())
    }

    /// The caller's role on the camera (`None`: not a member), from a verified cache entry
    /// or from `load`, which reads the database.
    pub async fn role<F, Fut>(&self, key: MemberKey, load: F) -> Result<Option<Role>>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<(Option<Role>, Option<i64>)>>,
    {
        // The generation is read before anything else, so a change that commits during
        // the fill makes the new entry stale rather than wrong.
        let Some(generation) = self.generations.current(key.camera).await else {
            self.stats.degraded.fetch_add(1, Ordering::Relaxed);
            return Ok(load().await?.0);
        };
        let mut cached = self.entries.get(&key).await;
        if let Some(faults) = &self.faults {
            let (lie, delay) = faults.lie(key, cached);
            tokio::time::sleep(delay).await;
            cached = lie;
        }
        if let Some(entry) = cached {
            if Self::valid(key, &entry, generation) {
                self.stats.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(entry.role);
            }
            self.stats.rejected.fetch_add(1, Ordering::Relaxed);
            self.entries.invalidate(&key).await;
        }
        if let Generations::Shared(shared) = &self.generations {
            match shared.tier.entry(key).await {
                Ok(Some(entry)) if Self::valid(key, &entry, generation) => {
                    self.stats.hits.fetch_add(1, Ordering::Relaxed);
                    self.entries.insert(key, entry.clone()).await;
                    return Ok(entry.role);
                }
                Ok(Some(_)) | Err(crate::shared::SharedError::Garbled) => {
                    self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                }
                Ok(None) | Err(_) => {}
            }
        }
        let entry = self
            .entries
            .try_get_with(key, async {
                let (role, expires_at) = load().await?;
                self.stats.fills.fetch_add(1, Ordering::Relaxed);
                Ok::<_, crate::StoreError>(MemberEntry {
                    key,
                    generation,
                    role,
                    expires_at,
                })
            })
            .await
            .map_err(|e| crate::StoreError::Corrupt(format!("membership lookup failed: {e}")))?;
        if let Some(faults) = &self.faults {
            faults.remember(&entry);
        }
        // A fill that raced a membership change (or was shared with an older request)
        // is not believed: ask the database directly.
        let now = self.generations.current(key.camera).await;
        if now.is_none_or(|now| !Self::valid(key, &entry, now)) {
            self.stats.rejected.fetch_add(1, Ordering::Relaxed);
            self.entries.invalidate(&key).await;
            return Ok(load().await?.0);
        }
        if let Generations::Shared(shared) = &self.generations {
            if let Err(e) = shared.tier.put_entry(&entry).await {
                tracing::debug!(error = %e, "shared cache write skipped");
            }
        }
        Ok(entry.role)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MemberKey {
        MemberKey {
            user: UserId::new_v7(),
            camera: CameraId::new_v7(),
        }
    }

    #[tokio::test]
    async fn bump_invalidates_and_other_keys_never_answer() -> Result<()> {
        let cache = MembershipCache::new(100, None);
        let (a, b) = (key(), key());
        let role = cache
            .role(a, || async { Ok((Some(Role::Viewer), None)) })
            .await?;
        assert_eq!(role, Some(Role::Viewer));
        // Cached: the loader is not consulted.
        let again = cache.role(a, || async { Ok((None, None)) }).await?;
        assert_eq!(again, Some(Role::Viewer));
        cache.bump(a.camera).await;
        let after = cache.role(a, || async { Ok((None, None)) }).await?;
        assert_eq!(after, None);
        let other = cache.role(b, || async { Ok((None, None)) }).await?;
        assert_eq!(other, None);
        Ok(())
    }

    #[tokio::test]
    async fn a_lying_cache_never_changes_an_answer() -> Result<()> {
        let cache = MembershipCache::new(100, Some(Arc::new(Faults::new(7))));
        let keys: Vec<MemberKey> = (0..20).map(|_| key()).collect();
        for round in 0..30 {
            for (i, k) in keys.iter().enumerate() {
                let truth = (i % 3 == 0).then_some(Role::Viewer);
                let got = cache.role(*k, || async move { Ok((truth, None)) }).await?;
                assert_eq!(got, truth, "round {round}, key {i}");
            }
        }
        assert!(cache.stats.rejected.load(Ordering::Relaxed) > 0);
        Ok(())
    }

    /// Shared-tier tests need the Redis the test script starts on its standard port.
    const REDIS: &str = "redis://127.0.0.1:6379";

    fn tier() -> SharedTier {
        let prefix = format!("cc-test-{}", hex::encode(rand::random::<[u8; 8]>()));
        match SharedTier::connect(REDIS, &prefix) {
            Ok(tier) => tier,
            Err(e) => panic!("redis client: {e}"),
        }
    }

    #[tokio::test]
    async fn a_bump_on_one_node_retires_entries_on_every_node() -> Result<()> {
        let tier = tier();
        let node_a = MembershipCache::shared(100, None, tier.clone());
        let node_b = MembershipCache::shared(100, None, tier);
        let k = key();
        let viewer = || async { Ok((Some(Role::Viewer), None)) };
        assert_eq!(node_a.role(k, viewer).await?, Some(Role::Viewer));
        // Node B finds A's answer in Redis without asking its database.
        let unused = || async { Ok((None, None)) };
        assert_eq!(node_b.role(k, unused).await?, Some(Role::Viewer));
        assert_eq!(node_b.stats.fills.load(Ordering::Relaxed), 0);
        // The membership ends on node B; node A must not believe its own entry any more.
        node_b.bump(k.camera).await;
        let ended = || async { Ok((None, None)) };
        assert_eq!(node_a.role(k, ended).await?, None);
        assert_eq!(node_b.role(k, ended).await?, None);
        assert!(node_a.stats.rejected.load(Ordering::Relaxed) > 0);
        Ok(())
    }

    #[tokio::test]
    async fn a_lying_redis_never_grants() -> Result<()> {
        let tier = tier();
        let cache = MembershipCache::shared(100, None, tier.clone());
        let (asked, other) = (key(), key());
        let generation = tier
            .generation(asked.camera)
            .await
            .map_err(|e| crate::StoreError::Corrupt(e.to_string()))?;
        // Another key's owner entry, filed under the key being asked about.
        let foreign = MemberEntry {
            key: other,
            generation,
            role: Some(Role::Owner),
            expires_at: None,
        };
        // The right key, but computed under an older generation.
        let stale = MemberEntry {
            key: asked,
            generation: generation.wrapping_sub(1),
            role: Some(Role::Owner),
            expires_at: None,
        };
        let not_member = || async { Ok((None, None)) };
        for lie in [foreign, stale] {
            tier.plant_entry(asked, &lie)
                .await
                .map_err(|e| crate::StoreError::Corrupt(e.to_string()))?;
            cache.entries.invalidate_all();
            assert_eq!(cache.role(asked, not_member).await?, None);
        }
        assert_eq!(cache.stats.rejected.load(Ordering::Relaxed), 2);
        Ok(())
    }

    #[tokio::test]
    async fn a_redis_handing_out_an_old_generation_is_not_believed() -> Result<()> {
        let tier = tier();
        let cache = MembershipCache::shared(100, None, tier.clone());
        let k = key();
        let viewer = || async { Ok((Some(Role::Viewer), None)) };
        assert_eq!(cache.role(k, viewer).await?, Some(Role::Viewer));
        let before = tier
            .generation(k.camera)
            .await
            .map_err(|e| crate::StoreError::Corrupt(e.to_string()))?;
        cache.bump(k.camera).await;
        // Redis now claims the generation the cached Viewer answer was computed under.
        tier.plant_generation(k.camera, before)
            .await
            .map_err(|e| crate::StoreError::Corrupt(e.to_string()))?;
        let ended = || async { Ok((None, None)) };
        assert_eq!(cache.role(k, ended).await?, None);
        assert!(cache.stats.degraded.load(Ordering::Relaxed) > 0);
        Ok(())
    }

    #[tokio::test]
    async fn redis_down_means_the_database_decides() -> Result<()> {
        let closed = match SharedTier::connect("redis://127.0.0.1:1", "cc-test-down") {
            Ok(tier) => tier,
            Err(e) => panic!("redis client: {e}"),
        };
        let cache = MembershipCache::shared(100, None, closed);
        let k = key();
        let started = std::time::Instant::now();
        for truth in [Some(Role::Viewer), None, Some(Role::Admin), None] {
            let got = cache.role(k, || async move { Ok((truth, None)) }).await?;
            assert_eq!(got, truth);
        }
        cache.bump(k.camera).await;
        assert_eq!(cache.stats.degraded.load(Ordering::Relaxed), 4);
        assert!(started.elapsed() < Duration::from_secs(5));
        Ok(())
    }
}
