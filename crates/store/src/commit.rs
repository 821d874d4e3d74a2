//! Group commit. Event rows and access-log entries must be durable before their request
//! is answered, and each durable commit costs a flush of the write-ahead log. A single
//! committer task takes whatever writes are queued when it wakes, applies each inside
//! its own savepoint of one transaction, commits once, and only then answers each
//! writer. Under load many writers share one flush; alone, a writer pays what it did
//! before. A writer that fails is rolled back to its savepoint without affecting the
//! others; a failed commit fails every writer of that batch, and nothing is answered
//! before the commit returns.
//!
//! Several nodes commit into one PostgreSQL database at once, so every batch takes its
//! row locks in one global order (the access-log head first, then cameras by ID, the
//! order the presence flush uses too): batches on different nodes wait for each other
//! instead of deadlocking.

use sqlx::{Any, AnyConnection, AnyPool, Executor, Transaction};
use tokio::sync::{mpsc, oneshot};

use crate::access_log::{append_in, AccessRecord};
use crate::events::{insert_in, EventRecord, Inserted};
use crate::{Result, StoreError};

/// Writes waiting for the committer; a full queue makes writers wait (backpressure).
const QUEUE: usize = 4096;
/// Most writes in one transaction, so one batch never holds the write lock for long.
const MAX_BATCH: usize = 256;

enum Job {
    Event(EventRecord, oneshot::Sender<Result<Inserted>>),
    Access(AccessRecord, oneshot::Sender<Result<()>>),
}

/// An outcome held until the batch commits.
enum Done {
    Event(oneshot::Sender<Result<Inserted>>, Result<Inserted>),
    Access(oneshot::Sender<Result<()>>, Result<()>),
}

impl Done {
    /// Answers the writer; when the commit failed, a write that succeeded inside the
    /// transaction is reported as not stored.
    fn answer(self, committed: &std::result::Result<(), String>) {
        let lost = |why: &String| StoreError::Unavailable(format!("commit failed: {why}"));
        // A writer whose request was cancelled no longer listens; that is fine.
        match (self, committed) {
            (Done::Event(tx, Ok(_)), Err(why)) => drop(tx.send(Err(lost(why)))),
            (Done::Event(tx, outcome), _) => drop(tx.send(outcome)),
            (Done::Access(tx, Ok(())), Err(why)) => drop(tx.send(Err(lost(why)))),
            (Done::Access(tx, outcome), _) => drop(tx.send(outcome)),
        }
    }
}

/// Handle to the committer task of one store.
#[derive(Clone)]
pub(crate) struct GroupCommit {
    queue: mpsc::Sender<Job>,
}

impl GroupCommit {
    /// Starts the committer on the current runtime. It ends when every handle is gone.
    pub(crate) fn start(pool: AnyPool) -> Self {
        let (queue, jobs) = mpsc::channel(QUEUE);
        tokio::spawn(run(pool, jobs));
        Self { queue }
    }

    pub(crate) async fn insert_event(&self, record: EventRecord) -> Result<Inserted> {
        let (tx, rx) = oneshot::channel();
        self.submit(Job::Event(record, tx), rx).await
    }

    pub(crate) async fn append_access(&self, record: AccessRecord) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.submit(Job::Access(record, tx), rx).await
    }

    async fn submit<T>(&self, job: Job, answer: oneshot::Receiver<Result<T>>) -> Result<T> {
        let stopped = || StoreError::Unavailable("the committer has stopped".into());
        self.queue.send(job).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn run(pool: AnyPool, mut jobs: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
        commit_batch(&pool, std::mem::take(&mut batch)).await;
    }
}

/// Where a job takes its locks in the global order: the access-log head, then its camera.
fn lock_order(job: &Job) -> (u8, &str) {
    match job {
        Job::Access(..) => (0, ""),
        Job::Event(record, _) => (1, &record.camera),
    }
}

async fn commit_batch(pool: &AnyPool, mut batch: Vec<Job>) {
    batch.sort_by(|a, b| lock_order(a).cmp(&lock_order(b)));
    let mut tx = match pool.begin().await {
        Ok(tx) => tx,
        Err(e) => {
            let why = Err(e.to_string());
            for job in batch {
                skipped(job).answer(&why);
            }
            return;
        }
    };
    let mut done = Vec::with_capacity(batch.len());
    for job in batch {
        done.push(apply(&mut tx, job).await);
    }
    let committed = tx.commit().await.map_err(|e| e.to_string());
    if let Err(why) = &committed {
        tracing::warn!(error = %why, writes = done.len(), "group commit failed");
    }
    for outcome in done {
        outcome.answer(&committed);
    }
}

/// A job that never ran, as an outcome that the failed commit will answer.
fn skipped(job: Job) -> Done {
    match job {
        Job::Event(_, tx) => Done::Event(tx, Ok(Inserted::New)),
        Job::Access(_, tx) => Done::Access(tx, Ok(())),
    }
}

/// Runs one write inside its own savepoint, so its failure undoes only itself.
async fn apply(tx: &mut Transaction<'static, Any>, job: Job) -> Done {
    if let Err(e) = tx.execute("SAVEPOINT write").await {
        return match job {
            Job::Event(_, reply) => Done::Event(reply, Err(e.into())),
            Job::Access(_, reply) => Done::Access(reply, Err(e.into())),
        };
    }
    let conn: &mut AnyConnection = tx;
    let (done, ok) = match job {
        Job::Event(record, reply) => {
            let outcome = insert_in(conn, &record).await;
            let ok = outcome.is_ok();
            (Done::Event(reply, outcome), ok)
        }
        Job::Access(record, reply) => {
            let outcome = append_in(conn, &record).await;
            let ok = outcome.is_ok();
            (Done::Access(reply, outcome), ok)
        }
    };
    let ended = async {
        if !ok {
            tx.execute("ROLLBACK TO SAVEPOINT write").await?;
        }
        tx.execute("RELEASE SAVEPOINT write").await
    };
    match (ended.await, done) {
        (Ok(_), done) => done,
        (Err(e), Done::Event(reply, _)) => Done::Event(reply, Err(e.into())),
        (Err(e), Done::Access(reply, _)) => Done::Access(reply, Err(e.into())),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::blobs::LocalBlobs;
    use crate::Store;

    fn access(n: usize) -> AccessRecord {
        AccessRecord::for_test(n)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writers_share_commits_and_one_failure_stays_its_own() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite://{}", dir.path().join("m.db").display());
        let store = Store::open(&url, Arc::new(LocalBlobs::new(dir.path().join("b"))?)).await?;
        let mut writers = tokio::task::JoinSet::new();
        for n in 0..200 {
            let commit = store.commit.clone();
            writers.spawn(async move { commit.append_access(access(n)).await });
        }
        // An event for a camera that does not exist fails its own savepoint only.
        let orphan = store
            .commit
            .insert_event(EventRecord::for_test("no such camera"))
            .await;
        assert!(orphan.is_err());
        while let Some(joined) = writers.join_next().await {
            assert!(joined.is_ok_and(|written| written.is_ok()));
        }
        let report = store.verify_access_log().await?;
        assert_eq!(report.entries, 200);
        assert_eq!(report.first_broken_seq, None);
        Ok(())
    }
}
