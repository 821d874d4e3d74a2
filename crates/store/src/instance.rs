//! Secrets of the installation that every node must share.

use sqlx::Row;

use crate::{Result, Store, StoreError};

impl Store {
    /// The installation's secret for decoy answers: the one already stored, or else
    /// `candidate`, stored now. Nodes starting together agree on whichever came first.
    pub async fn instance_secret(&self, candidate: [u8; 32]) -> Result<[u8; 32]> {
        sqlx::query("INSERT INTO instance (id, secret) VALUES (1, $1) ON CONFLICT (id) DO NOTHING")
            .bind(candidate.to_vec())
            .execute(&self.pool)
            .await?;
        let stored: Vec<u8> = sqlx::query("SELECT secret FROM instance WHERE id = 1")
            .fetch_one(&self.pool)
            .await?
            .try_get("secret")?;
        <[u8; 32]>::try_from(stored.as_slice())
            .map_err(|_| StoreError::Corrupt("the instance secret is not 32 bytes".into()))
    }
}
