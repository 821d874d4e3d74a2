//! Moving an installation's metadata from one SQL backend to another (typically the
//! embedded SQLite file to a shared PostgreSQL database) with nothing lost: every table
//! is copied in dependency order, in batches, inside one transaction on the target,
//! and both sides are then summarised per table by a row count and a content hash that
//! does not depend on the backend.
//!
//! The tables and columns are listed here explicitly rather than discovered, so a value
//! is always read and written with its declared type; [`check_schema`] refuses a
//! database whose tables or columns differ from this list, so a migration that adds a
//! column cannot be silently dropped by a copy.

use std::collections::BTreeSet;
use std::io;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;

use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::blobs::{BlobKey, BlobStore};
use crate::db::Backend;
use crate::{Result, Store, StoreError};

/// Opens a metadata database for an operator task that never touches media (copying,
/// verifying): its blob operations all fail instead of creating directories.
pub async fn open_metadata(url: &str) -> Result<Store> {
    Store::open(url, Arc::new(NoBlobs)).await
}

struct NoBlobs;

fn no_blobs() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "this store was opened for metadata only",
    )
}

#[async_trait]
impl BlobStore for NoBlobs {
    async fn put_file(&self, _: &BlobKey, _: &Path) -> io::Result<()> {
        Err(no_blobs())
    }
    async fn get_range(&self, _: &BlobKey, _: Range<u64>) -> io::Result<bytes::Bytes> {
        Err(no_blobs())
    }
    async fn delete(&self, _: &BlobKey) -> io::Result<()> {
        Err(no_blobs())
    }
    async fn delete_prefix(&self, _: &str) -> io::Result<()> {
        Err(no_blobs())
    }
    async fn list(&self, _: &str) -> io::Result<Vec<crate::blobs::Listed>> {
        Err(no_blobs())
    }
}

/// How a column's values are read and written on both backends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Int,
    Text,
    Bytes,
}

use Kind::{Bytes, Int, Text};

/// One table as the current schema defines it.
pub struct Table {
    /// The table's name.
    pub name: &'static str,
    columns: &'static [(&'static str, Kind)],
    /// Primary-key columns, for keyset paging; empty when the table has none.
    key: &'static [&'static str],
}

/// Every table of the current schema version, parents before children.
pub const TABLES: &[Table] = &[
    Table {
        name: "users",
        columns: &[
            ("id", Text),
            ("email", Text),
            ("salt", Bytes),
            ("kdf_m_kib", Int),
            ("kdf_t", Int),
            ("kdf_p", Int),
            ("auth_hash", Text),
            ("age_recipient", Text),
            ("signing_key", Text),
            ("wrapped_keys", Bytes),
            ("recovery_wrapped_keys", Bytes),
            ("created_at", Int),
            ("totp_secret", Bytes),
            ("totp_enabled", Int),
            ("require_step_up", Int),
            ("quota_bytes", Int),
        ],
        key: &["id"],
    },
    Table {
        name: "sessions",
        columns: &[
            ("id", Text),
            ("user_id", Text),
            ("token_hash", Text),
            ("client", Text),
            ("ip", Text),
            ("created_at", Int),
            ("last_seen_at", Int),
            ("expires_at", Int),
            ("revoked_at", Int),
            ("step_up_at", Int),
        ],
        key: &["id"],
    },
    Table {
        name: "recovery_codes",
        columns: &[("user_id", Text), ("code_hash", Text), ("used_at", Int)],
        key: &["user_id", "code_hash"],
    },
    Table {
        name: "claims",
        columns: &[
            ("id", Text),
            ("owner_id", Text),
            ("secret_hash", Text),
            ("expires_at", Int),
            ("pairing_id", Text),
            ("device_key", Text),
            ("mac", Bytes),
            ("camera_id", Text),
            ("token_issued", Int),
        ],
        key: &["id"],
    },
    Table {
        name: "cameras",
        columns: &[
            ("id", Text),
            ("owner_id", Text),
            ("epoch", Int),
            ("name_epoch", Int),
            ("name_ct", Bytes),
            ("certificate_body", Text),
            ("certificate_sig", Text),
            ("device_key", Text),
            ("device_token_hash", Text),
            ("paired_at", Int),
            ("last_seen_at", Int),
            ("last_event_at", Int),
            ("rotation_needed", Int),
            ("retention_days", Int),
        ],
        key: &["id"],
    },
    Table {
        name: "certificates",
        columns: &[
            ("camera_id", Text),
            ("epoch", Int),
            ("body", Text),
            ("signature", Text),
        ],
        key: &["camera_id", "epoch"],
    },
    Table {
        name: "members",
        columns: &[
            ("camera_id", Text),
            ("user_id", Text),
            ("role", Text),
            ("since", Int),
            ("expires_at", Int),
        ],
        key: &["camera_id", "user_id"],
    },
    Table {
        name: "grants",
        columns: &[
            ("camera_id", Text),
            ("user_id", Text),
            ("epoch", Int),
            ("grant_ct", Bytes),
        ],
        key: &["camera_id", "user_id", "epoch"],
    },
    Table {
        name: "shares",
        columns: &[
            ("camera_id", Text),
            ("inviter_id", Text),
            ("invitee_id", Text),
            ("role", Text),
            ("history", Int),
            ("created_at", Int),
            ("expires_at", Int),
            ("accepted_at", Int),
        ],
        key: &["camera_id", "invitee_id"],
    },
    Table {
        name: "transfers",
        columns: &[
            ("camera_id", Text),
            ("epoch", Int),
            ("from_user_id", Text),
            ("to_user_id", Text),
            ("body", Text),
            ("signature", Text),
            ("created_at", Int),
            ("accepted_at", Int),
        ],
        key: &["camera_id", "epoch"],
    },
    Table {
        name: "transfer_grants",
        columns: &[
            ("camera_id", Text),
            ("transfer_epoch", Int),
            ("epoch", Int),
            ("grant_ct", Bytes),
        ],
        key: &["camera_id", "transfer_epoch", "epoch"],
    },
    Table {
        name: "membership_history",
        columns: &[
            ("camera_id", Text),
            ("user_id", Text),
            ("role", Text),
            ("from_at", Int),
            ("until_at", Int),
        ],
        key: &[],
    },
    Table {
        name: "events",
        columns: &[
            ("camera_id", Text),
            ("id", Text),
            ("kind", Text),
            ("started_at", Int),
            ("duration_ms", Int),
            ("epoch", Int),
            ("thumb_sha256", Text),
            ("thumb_size", Int),
            ("clip_sha256", Text),
            ("clip_size", Int),
            ("manifest_body", Text),
            ("manifest_sig", Text),
            ("received_at", Int),
        ],
        key: &["camera_id", "id"],
    },
    Table {
        name: "access_log",
        columns: &[
            ("seq", Int),
            ("at", Int),
            ("user_id", Text),
            ("session_id", Text),
            ("camera_id", Text),
            ("event_id", Text),
            ("object", Text),
            ("ip", Text),
            ("prev_hash", Text),
            ("hash", Text),
        ],
        key: &["seq"],
    },
    Table {
        name: "access_log_head",
        columns: &[("id", Int), ("seq", Int), ("hash", Text)],
        key: &["id"],
    },
    Table {
        name: "instance",
        columns: &[("id", Int), ("secret", Bytes)],
        key: &["id"],
    },
];

/// Tables every migrated database has that hold no data of their own.
const BOOKKEEPING: &[&str] = &["schema_migrations"];

/// One column value, typed by its declaration; `None` is SQL NULL.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Value {
    Int(Option<i64>),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
}

impl Value {
    fn read(row: &AnyRow, index: usize, kind: Kind) -> Result<Self> {
        Ok(match kind {
            Int => Value::Int(row.try_get(index)?),
            Text => Value::Text(row.try_get(index)?),
            Bytes => Value::Bytes(row.try_get(index)?),
        })
    }

    /// Appends a self-delimiting encoding: a tag (0 NULL, 1 integer, 2 text, 3 bytes),
    /// then for non-NULL values the length and the bytes (integers as 8 bytes, big-endian).
    fn encode(&self, out: &mut Vec<u8>) {
        let (tag, bytes): (u8, Option<&[u8]>) = match self {
            Value::Int(Some(i)) => {
                out.push(1);
                out.extend_from_slice(&i.to_be_bytes());
                return;
            }
            Value::Text(Some(t)) => (2, Some(t.as_bytes())),
            Value::Bytes(Some(b)) => (3, Some(b)),
            Value::Int(None) | Value::Text(None) | Value::Bytes(None) => (0, None),
        };
        out.push(tag);
        if let Some(bytes) = bytes {
            out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
            out.extend_from_slice(bytes);
        }
    }
}

type Query<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>;

fn bind(query: Query<'_>, value: Value) -> Query<'_> {
    match value {
        Value::Int(v) => query.bind(v),
        Value::Text(v) => query.bind(v),
        Value::Bytes(v) => query.bind(v),
    }
}

/// A table's size and content, comparable across backends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableDigest {
    /// The table's name.
    pub table: &'static str,
    /// How many rows it holds.
    pub rows: u64,
    /// SHA-256 (hex) over the sorted SHA-256 digests of the rows' canonical encodings,
    /// so neither the backend's collation nor its row order changes it.
    pub sha256: String,
}

/// How [`copy`] treats the target.
#[derive(Clone, Copy, Debug)]
pub struct CopyOptions {
    /// Rows read and written per statement.
    pub batch: usize,
    /// Delete whatever the target holds first; without it a non-empty target is refused.
    pub replace: bool,
}

impl Default for CopyOptions {
    fn default() -> Self {
        Self {
            batch: 500,
            replace: false,
        }
    }
}

/// PostgreSQL accepts at most 65,535 parameters per statement; stay well below.
const MAX_PARAMS: usize = 30_000;

/// Reads one batch of `table` after `after` (the previous batch's last key, or the
/// number of rows already read for a table without a key).
async fn read_batch(
    store: &Store,
    table: &Table,
    after: &Cursor,
    limit: usize,
) -> Result<Vec<Vec<Value>>> {
    let columns: Vec<&str> = table.columns.iter().map(|(c, _)| *c).collect();
    let mut sql = format!("SELECT {} FROM {}", columns.join(", "), table.name);
    let limit = i64::try_from(limit).map_err(|_| StoreError::Invalid("batch too large"))?;
    let rows = if table.key.is_empty() {
        sql.push_str(&format!(
            " ORDER BY {} LIMIT $1 OFFSET $2",
            columns.join(", ")
        ));
        let offset = match after {
            Cursor::Offset(n) => *n,
            Cursor::Start | Cursor::Key(_) => 0,
        };
        sqlx::query(&sql)
            .bind(limit)
            .bind(offset)
            .fetch_all(&store.pool)
            .await?
    } else {
        let key = table.key.join(", ");
        let mut query_binds = Vec::new();
        if let Cursor::Key(last) = after {
            let params: Vec<String> = (1..=last.len()).map(|i| format!("${i}")).collect();
            sql.push_str(&format!(" WHERE ({key}) > ({})", params.join(", ")));
            query_binds.clone_from(last);
        }
        sql.push_str(&format!(" ORDER BY {key} LIMIT ${}", query_binds.len() + 1));
        let mut query = sqlx::query(&sql);
        for value in query_binds {
            query = bind(query, value);
        }
        query.bind(limit).fetch_all(&store.pool).await?
    };
    rows.iter()
        .map(|row| {
            table
                .columns
                .iter()
                .enumerate()
                .map(|(i, (_, kind))| Value::read(row, i, *kind))
                .collect()
        })
        .collect()
}

/// Where the next batch of a table starts.
enum Cursor {
    Start,
    Key(Vec<Value>),
    Offset(i64),
}

impl Cursor {
    fn after(table: &Table, batch: &[Vec<Value>], read_so_far: u64) -> Self {
        match batch.last() {
            Some(last) if !table.key.is_empty() => Cursor::Key(
                table
                    .key
                    .iter()
                    .filter_map(|k| table.columns.iter().position(|(c, _)| c == k))
                    .filter_map(|i| last.get(i).cloned())
                    .collect(),
            ),
            _ => Cursor::Offset(i64::try_from(read_so_far).unwrap_or(i64::MAX)),
        }
    }
}

/// Calls `each` with every batch of `table`, in key order.
async fn for_each_batch<F>(store: &Store, table: &Table, batch: usize, mut each: F) -> Result<u64>
where
    F: AsyncFnMut(Vec<Vec<Value>>) -> Result<()>,
{
    let mut cursor = Cursor::Start;
    let mut read = 0u64;
    loop {
        let rows = read_batch(store, table, &cursor, batch).await?;
        let n = rows.len();
        read += n as u64;
        cursor = Cursor::after(table, &rows, read);
        if n > 0 {
            each(rows).await?;
        }
        if n < batch {
            return Ok(read);
        }
    }
}

async fn insert_rows(
    tx: &mut Transaction<'_, Any>,
    table: &Table,
    rows: Vec<Vec<Value>>,
) -> Result<()> {
    let width = table.columns.len();
    let per_statement = (MAX_PARAMS / width).max(1);
    let columns: Vec<&str> = table.columns.iter().map(|(c, _)| *c).collect();
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Vec<Value>> = rows.by_ref().take(per_statement).collect();
        let tuples: Vec<String> = (0..chunk.len())
            .map(|r| {
                let params: Vec<String> =
                    (1..=width).map(|c| format!("${}", r * width + c)).collect();
                format!("({})", params.join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO {} ({}) VALUES {}",
            table.name,
            columns.join(", "),
            tuples.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for value in chunk.into_iter().flatten() {
            query = bind(query, value);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

async fn count(store: &Store, table: &str) -> Result<u64> {
    let n: i64 = sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}"))
        .fetch_one(&store.pool)
        .await?
        .try_get("n")?;
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("{table}: negative count")))
}

/// Whether anything was ever appended to the access log (a new database's head row
/// says 0).
async fn log_appended(store: &Store) -> Result<bool> {
    let seq: Option<i64> = sqlx::query("SELECT MAX(seq) AS seq FROM access_log_head")
        .fetch_one(&store.pool)
        .await?
        .try_get("seq")?;
    Ok(seq.unwrap_or(0) != 0)
}

/// Copies every table of `from` into `to`, parents first, in one transaction on `to`.
/// `progress` hears each table's name and the rows copied so far. A target with any
/// data (beyond the empty access-log head every new database starts with) is refused
/// unless `options.replace` is set.
pub async fn copy(
    from: &Store,
    to: &Store,
    options: CopyOptions,
    mut progress: impl FnMut(&str, u64),
) -> Result<()> {
    check_schema(from).await?;
    check_schema(to).await?;
    let batch = options.batch.max(1);
    if !options.replace {
        for table in TABLES {
            let holds_data = if table.name == "access_log_head" {
                log_appended(to).await?
            } else if table.name == "instance" {
                // A node that started on the target made its secret; the source's wins.
                false
            } else {
                count(to, table.name).await? > 0
            };
            if holds_data {
                return Err(StoreError::Conflict(
                    "the target database already holds data",
                ));
            }
        }
    }
    let mut tx = to.pool.begin().await?;
    for table in TABLES.iter().rev() {
        sqlx::query(&format!("DELETE FROM {}", table.name))
            .execute(&mut *tx)
            .await?;
    }
    for table in TABLES {
        progress(table.name, 0);
        let mut copied = 0u64;
        for_each_batch(from, table, batch, async |rows| {
            copied += rows.len() as u64;
            insert_rows(&mut tx, table, rows).await?;
            progress(table.name, copied);
            Ok(())
        })
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Row count and content hash of every table, in [`TABLES`] order.
pub async fn digests(store: &Store) -> Result<Vec<TableDigest>> {
    let mut out = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        let mut row_hashes: Vec<[u8; 32]> = Vec::new();
        let mut encoded = Vec::new();
        let rows = for_each_batch(store, table, 1000, async |rows| {
            for row in rows {
                encoded.clear();
                for value in &row {
                    value.encode(&mut encoded);
                }
                row_hashes.push(Sha256::digest(&encoded).into());
            }
            Ok(())
        })
        .await?;
        row_hashes.sort_unstable();
        let mut whole = Sha256::new();
        whole.update(b"closedcircuit table digest v1\0");
        whole.update(table.name.as_bytes());
        for h in &row_hashes {
            whole.update(h);
        }
        out.push(TableDigest {
            table: table.name,
            rows,
            sha256: hex::encode(whole.finalize()),
        });
    }
    Ok(out)
}

/// Refuses a database whose tables or columns are not exactly those of [`TABLES`].
pub async fn check_schema(store: &Store) -> Result<()> {
    let tables_sql = match store.backend {
        Backend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        }
        Backend::Postgres => {
            "SELECT CAST(table_name AS TEXT) AS name FROM information_schema.tables \
             WHERE table_schema = current_schema()"
        }
    };
    let found: BTreeSet<String> = sqlx::query(tables_sql)
        .fetch_all(&store.pool)
        .await?
        .iter()
        .map(|r| r.try_get("name"))
        .collect::<Result<_, _>>()?;
    let expected: BTreeSet<String> = TABLES
        .iter()
        .map(|t| t.name)
        .chain(BOOKKEEPING.iter().copied())
        .map(str::to_owned)
        .collect();
    if found != expected {
        let differ: Vec<&String> = found.symmetric_difference(&expected).collect();
        return Err(StoreError::Corrupt(format!(
            "the {} schema's tables differ from the ones this build copies: {differ:?}",
            store.backend.name()
        )));
    }
    let columns_sql = match store.backend {
        Backend::Sqlite => "SELECT name FROM pragma_table_info($1)",
        Backend::Postgres => {
            "SELECT CAST(column_name AS TEXT) AS name FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1"
        }
    };
    for table in TABLES {
        let found: BTreeSet<String> = sqlx::query(columns_sql)
            .bind(table.name)
            .fetch_all(&store.pool)
            .await?
            .iter()
            .map(|r| r.try_get("name"))
            .collect::<Result<_, _>>()?;
        let expected: BTreeSet<String> =
            table.columns.iter().map(|(c, _)| (*c).to_owned()).collect();
        if found != expected {
            let differ: Vec<&String> = found.symmetric_difference(&expected).collect();
            return Err(StoreError::Corrupt(format!(
                "{}.{}: columns differ from the ones this build copies: {differ:?}",
                store.backend.name(),
                table.name
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_are_unambiguous() {
        let enc = |values: &[Value]| {
            let mut out = Vec::new();
            for v in values {
                v.encode(&mut out);
            }
            out
        };
        let a = enc(&[
            Value::Text(Some("ab".into())),
            Value::Text(Some("c".into())),
        ]);
        let b = enc(&[
            Value::Text(Some("a".into())),
            Value::Text(Some("bc".into())),
        ]);
        assert_ne!(a, b);
        assert_ne!(
            enc(&[Value::Text(None)]),
            enc(&[Value::Text(Some(String::new()))])
        );
        assert_ne!(
            enc(&[Value::Int(Some(1))]),
            enc(&[Value::Bytes(Some(1i64.to_be_bytes().to_vec()))])
        );
    }

    #[test]
    fn every_key_column_is_a_column() {
        for table in TABLES {
            for key in table.key {
                assert!(
                    table.columns.iter().any(|(c, _)| c == key),
                    "{}.{key}",
                    table.name
                );
            }
        }
    }
}
