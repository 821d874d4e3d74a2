//! The SQL handle and its migrations. One set of queries serves SQLite and PostgreSQL
//! (sqlx's `Any` driver, `$n` placeholders, portable types); only the DDL differs per
//! backend, in numbered files under `migrations/<backend>/`.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor, Row};

use crate::cache::{Faults, MembershipCache};
use crate::shared::SharedTier;
use crate::{Blobs, Result, StoreError};

/// Tuning of a store handle.
pub struct StoreOptions {
    /// How many membership answers the door keeps.
    pub cache_capacity: u64,
    /// Make the membership cache lie (tests and `storm --lying-cache` only).
    pub faults: Option<Arc<Faults>>,
    /// Redis shared by every node (generations and door answers); `None`: in-process.
    pub shared: Option<SharedTier>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            cache_capacity: 100_000,
            faults: None,
            shared: None,
        }
    }
}

/// Metadata and blobs together: the one place persistence goes through.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    pub(crate) blobs: Blobs,
    pub(crate) members: Arc<MembershipCache>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Backend {
    Sqlite,
}

const SQLITE_MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_init.sql")),
    (
        2,
        include_str!("../migrations/sqlite/0002_sharing_audit.sql"),
    ),
    (
        3,
        include_str!("../migrations/sqlite/0003_retention_quota.sql"),
    ),
];

impl Store {
    /// Opens (creating if needed) the metadata database at `url` (`sqlite://PATH` or
    /// `postgres://…`) and brings its schema up to date.
    pub async fn open(url: &str, blobs: Blobs) -> Result<Self> {
        Self::open_with(url, blobs, StoreOptions::default()).await
    }

    pub async fn open_with(url: &str, blobs: Blobs, tuning: StoreOptions) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(StoreError::Invalid("unsupported metadata URL scheme"));
        };
        let url = match backend {
            Backend::Sqlite if !url.contains('?') => format!("{url}?mode=rwc"),
            Backend::Sqlite => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL for concurrent readers; FULL so a commit survives power loss
                        // before the camera is told its event is stored.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = FULL").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        let store = Self {
            pool,
            blobs,
            members: Arc::new(match tuning.shared {
                Some(tier) => MembershipCache::shared(tuning.cache_capacity, tuning.faults, tier),
                None => MembershipCache::new(tuning.cache_capacity, tuning.faults),
            }),
        };
        store.migrate(backend).await?;
        Ok(store)
    }

    async fn migrate(&self, backend: Backend) -> Result<()> {
        let migrations = match backend {
            Backend::Sqlite => SQLITE_MIGRATIONS,
        };
        self.pool
            .execute("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY)")
            .await?;
        let applied: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| r.try_get::<i64, _>(0))
            .collect::<Result<_, _>>()?;
        for (version, sql) in migrations {
            if applied.contains(version) {
                continue;
            }
            let mut tx = self.pool.begin().await?;
            for statement in sql
                .split(";\n")
                .map(str::trim)
                .filter(|s| !only_comments(s))
            {
                tx.execute(statement).await?;
            }
            sqlx::query("INSERT INTO schema_migrations (version) VALUES ($1)")
                .bind(*version)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            tracing::info!(version, "applied metadata migration");
        }
        Ok(())
    }

    pub fn blobs(&self) -> &Blobs {
        &self.blobs
    }

    /// The door's cache counters (hits, fills, rejected entries).
    pub fn cache_stats(&self) -> &crate::cache::CacheStats {
        &self.members.stats
    }
}

fn only_comments(sql: &str) -> bool {
    sql.lines()
        .map(str::trim)
        .all(|l| l.is_empty() || l.starts_with("--"))
}
