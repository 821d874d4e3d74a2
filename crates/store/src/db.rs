//! The SQL handle and its migrations. One set of queries serves SQLite and PostgreSQL
//! (sqlx's `Any` driver, `$n` placeholders, portable types); only the DDL differs per
//! backend, in numbered files under `migrations/<backend>/`.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor, Row};

use crate::cache::{Faults, MembershipCache};
use crate::commit::GroupCommit;
use crate::presence::Presence;
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
    /// Cameras' reads on connect (token, epoch, certificate) have a pool of their own,
    /// so a reconnect storm queues behind its own connections, never viewers'.
    pub(crate) devices: AnyPool,
    pub(crate) blobs: Blobs,
    pub(crate) members: Arc<MembershipCache>,
    pub(crate) commit: GroupCommit,
    pub(crate) presence: Arc<Presence>,
    pub(crate) backend: Backend,
}

/// Which SQL database a store talks to; only the DDL and the migration lock differ.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Backend {
    /// Embedded, one node: `sqlite://PATH`.
    Sqlite,
    /// Shared by several nodes: `postgres://…` or `postgresql://…`.
    Postgres,
}

impl Backend {
    /// The backend a metadata URL names, by its scheme.
    pub fn of_url(url: &str) -> Result<Self> {
        let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
        match scheme {
            "sqlite" => Ok(Self::Sqlite),
            "postgres" | "postgresql" => Ok(Self::Postgres),
            _ => Err(StoreError::Invalid(
                "unsupported metadata URL scheme (expected sqlite: or postgres:)",
            )),
        }
    }

    /// A short name for messages and reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
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
    (4, include_str!("../migrations/sqlite/0004_transfers.sql")),
    (5, include_str!("../migrations/sqlite/0005_instance.sql")),
];

/// The same versions as [`SQLITE_MIGRATIONS`], in PostgreSQL's dialect.
const POSTGRES_MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_init.sql")),
    (
        2,
        include_str!("../migrations/postgres/0002_sharing_audit.sql"),
    ),
    (
        3,
        include_str!("../migrations/postgres/0003_retention_quota.sql"),
    ),
    (4, include_str!("../migrations/postgres/0004_transfers.sql")),
    (5, include_str!("../migrations/postgres/0005_instance.sql")),
];

/// Key of the PostgreSQL advisory lock that makes nodes starting together on one
/// database migrate it one at a time ("ccmigrat" in ASCII).
const MIGRATION_LOCK: i64 = 0x6363_6d69_6772_6174;

impl Store {
    /// Opens (creating if needed) the metadata database at `url` (`sqlite://PATH` or
    /// `postgres://…`) and brings its schema up to date.
    pub async fn open(url: &str, blobs: Blobs) -> Result<Self> {
        Self::open_with(url, blobs, StoreOptions::default()).await
    }

    /// [`Store::open`] with explicit tuning (cache size, test-only faults).
    pub async fn open_with(url: &str, blobs: Blobs, tuning: StoreOptions) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url)?;
        let url = match backend {
            Backend::Sqlite if !url.contains('?') => format!("{url}?mode=rwc"),
            Backend::Sqlite | Backend::Postgres => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = Self::connect_pool(&options, backend, 8).await?;
        let devices = Self::connect_pool(&options, backend, 2).await?;
        let store = Self {
            commit: GroupCommit::start(pool.clone()),
            presence: Arc::default(),
            pool,
            devices,
            blobs,
            members: Arc::new(match tuning.shared {
                Some(tier) => MembershipCache::shared(tuning.cache_capacity, tuning.faults, tier),
                None => MembershipCache::new(tuning.cache_capacity, tuning.faults),
            }),
            backend,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// A pool of at most `size` connections, each set up for durability (SQLite: WAL,
    /// FULL sync, foreign keys, a busy timeout).
    async fn connect_pool(
        options: &AnyConnectOptions,
        backend: Backend,
        size: u32,
    ) -> Result<AnyPool> {
        Ok(AnyPoolOptions::new()
            .max_connections(size)
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
            .connect_with(options.clone())
            .await?)
    }

    /// Applies missing migrations in one transaction. On PostgreSQL the transaction first
    /// takes an advisory lock, so nodes starting at once on one database wait for each
    /// other instead of racing to create the same tables; the lock ends with it.
    async fn migrate(&self) -> Result<()> {
        let migrations = match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS,
            Backend::Postgres => POSTGRES_MIGRATIONS,
        };
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(MIGRATION_LOCK)
                .execute(&mut *tx)
                .await?;
        }
        tx.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY)")
            .await?;
        let applied: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations")
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get::<i64, _>(0))
            .collect::<Result<_, _>>()?;
        for (version, sql) in migrations {
            if applied.contains(version) {
                continue;
            }
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
            tracing::info!(
                version,
                backend = self.backend.name(),
                "applied metadata migration"
            );
        }
        tx.commit().await?;
        Ok(())
    }

    /// Closes every pooled connection, waiting for those in use to come back; a
    /// PostgreSQL database can then be dropped or handed to another process.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The SQL backend this store talks to.
    pub fn backend(&self) -> Backend {
        self.backend
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
