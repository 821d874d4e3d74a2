//! One conformance suite for every metadata backend: each case in `cases` runs on a
//! fresh SQLite file and on a fresh PostgreSQL database (`CC_TEST_POSTGRES_URL` names
//! the server, default `postgres://postgres@127.0.0.1:5432/postgres`).

mod cases;
mod harness;
mod metadata_copy;

conformance!(
    schema_matches_the_copy_list,
    accounts_and_sessions,
    claims_and_pairing,
    events_are_idempotent_and_paged,
    the_door_denies,
    shares_revocation_and_rotation,
    access_log_chain,
    retention_and_quota,
    removing_a_camera_removes_its_data,
    every_node_gets_the_same_instance_secret,
);

mod migrations {
    use std::sync::Arc;

    use cc_store::blobs::LocalBlobs;
    use cc_store::testing::TempPostgres;
    use cc_store::Store;

    use crate::harness::{signup, TestResult};

    /// Nodes starting together on one new database all come up, and the schema is
    /// applied once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_nodes_starting_at_once_migrate_once() -> TestResult {
        let db = TempPostgres::create().await?;
        let blobs = tempfile::tempdir()?;
        let mut nodes = Vec::new();
        for _ in 0..4 {
            let url = db.url().to_owned();
            let blobs = Arc::new(LocalBlobs::new(blobs.path())?);
            nodes.push(tokio::spawn(async move { Store::open(&url, blobs).await }));
        }
        let mut stores = Vec::new();
        for node in nodes {
            stores.push(node.await??);
        }
        let outcome = async {
            signup(&stores[0], "first@example.org").await?;
            let again = Store::open(db.url(), Arc::new(LocalBlobs::new(blobs.path())?)).await?;
            assert!(again.prelogin("first@example.org").await?.is_some());
            again.close().await;
            TestResult::Ok(())
        }
        .await;
        for store in &stores {
            store.close().await;
        }
        db.drop_database().await?;
        outcome
    }

    #[tokio::test]
    async fn unknown_metadata_schemes_are_refused() -> TestResult {
        let blobs = tempfile::tempdir()?;
        let opened = Store::open(
            "mysql://localhost/cc",
            Arc::new(LocalBlobs::new(blobs.path())?),
        )
        .await;
        assert!(matches!(opened, Err(cc_store::StoreError::Invalid(_))));
        Ok(())
    }
}
