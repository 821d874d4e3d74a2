//! A thin JSON-over-HTTP client for simulated users and cameras.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::StormError;

/// How many `503`s in a row one request waits out before giving up.
const MAX_RETRIES: u32 = 30;

/// What came back, kept whole so overload answers can be counted.
pub struct Reply {
    pub status: StatusCode,
    pub retry_after: Option<u64>,
    pub body: bytes::Bytes,
}

impl Reply {
    pub fn json<T: DeserializeOwned>(&self, what: &str) -> Result<T, StormError> {
        if !self.status.is_success() {
            return Err(StormError::Status {
                what: what.to_owned(),
                status: self.status.as_u16(),
                body: String::from_utf8_lossy(&self.body).into_owned(),
            });
        }
        serde_json::from_slice(&self.body).map_err(|e| StormError::Protocol(format!("{what}: {e}")))
    }
}

#[derive(Clone)]
pub struct Http {
    pub base: String,
    pub client: reqwest::Client,
    /// `503` answers that `send` waited out and retried.
    pub retried_503: Arc<AtomicU64>,
}

impl Http {
    pub fn new(base: &str) -> Result<Self, StormError> {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            .build()?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            client,
            retried_503: Arc::default(),
        })
    }

    /// Sends a request; a `503` is waited out (full-jitter backoff, at least its
    /// `Retry-After`) and retried, as every client of an overloaded service should.
    pub async fn send<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&B>,
    ) -> Result<Reply, StormError> {
        let mut attempt = 0;
        loop {
            let mut request = self
                .client
                .request(method.clone(), format!("{}{path}", self.base));
            if let Some(t) = token {
                request = request.bearer_auth(t);
            }
            if let Some(b) = body {
                request = request.json(b);
            }
            let reply = Self::reply(request.send().await?).await?;
            if reply.status != StatusCode::SERVICE_UNAVAILABLE || attempt >= MAX_RETRIES {
                return Ok(reply);
            }
            self.retried_503.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(crate::camera::backoff(attempt, reply.retry_after)).await;
            attempt += 1;
        }
    }

    pub async fn reply(response: reqwest::Response) -> Result<Reply, StormError> {
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        Ok(Reply {
            status,
            retry_after,
            body: response.bytes().await?,
        })
    }
}
