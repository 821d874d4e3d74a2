//! A thin JSON-over-HTTP client for simulated users and cameras.

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::StormError;

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
        })
    }

    pub async fn send<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&B>,
    ) -> Result<Reply, StormError> {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        if let Some(b) = body {
            request = request.json(b);
        }
        Self::reply(request.send().await?).await
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
