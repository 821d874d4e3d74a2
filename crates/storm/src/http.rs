//! A thin JSON-over-HTTP client for simulated users and cameras.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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

    /// The machine-readable `code` of a problem answer.
    pub fn code(&self) -> Option<String> {
        serde_json::from_slice::<cc_core::api::Problem>(&self.body)
            .ok()
            .map(|p| p.code)
    }
}

/// An HTTP client builder whose `https://` runs on rustls with ring, the one TLS stack
/// the workspace builds.
pub fn client_builder() -> reqwest::ClientBuilder {
    // A provider installed earlier (the blob store's, say) is kept.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

/// The bytes of a camera's device stream.
pub type DeviceBytes = futures_util::stream::BoxStream<'static, std::io::Result<bytes::Bytes>>;

/// Opens a camera's device stream as the agent does: offering the connection upgrade,
/// or reading the response body from a server that declines. `Ok(Err(status))`: the
/// server refused it.
pub async fn open_device_stream(
    client: &reqwest::Client,
    base: &str,
    token: &str,
) -> Result<Result<DeviceBytes, StatusCode>, reqwest::Error> {
    use futures_util::{StreamExt, TryStreamExt};
    let response = client
        .get(format!("{base}/v1/device/stream"))
        .bearer_auth(token)
        .header(reqwest::header::CONNECTION, "upgrade")
        .header(
            reqwest::header::UPGRADE,
            cc_core::api::DEVICE_STREAM_UPGRADE,
        )
        .send()
        .await?;
    Ok(match response.status() {
        StatusCode::SWITCHING_PROTOCOLS => {
            Ok(tokio_util::io::ReaderStream::new(response.upgrade().await?).boxed())
        }
        status if status.is_success() => Ok(response
            .bytes_stream()
            .map_err(std::io::Error::other)
            .boxed()),
        status => Err(status),
    })
}

/// A client of one or more nodes behind one name. Each clone made with [`Http::pinned`]
/// talks to one node and moves to the next when that node stops answering, as a client
/// behind a load balancer would be moved.
#[derive(Clone)]
pub struct Http {
    nodes: Arc<[String]>,
    current: Arc<AtomicUsize>,
    pub client: reqwest::Client,
    /// `503` answers that `send` waited out and retried.
    pub retried_503: Arc<AtomicU64>,
    /// Times a client moved to another node because its own stopped answering.
    pub failovers: Arc<AtomicU64>,
}

impl Http {
    pub fn new(base: &str) -> Result<Self, StormError> {
        Self::with_nodes(&[base.to_owned()])
    }

    /// A client of several nodes; it starts on the first.
    pub fn with_nodes(nodes: &[String]) -> Result<Self, StormError> {
        if nodes.is_empty() {
            return Err(StormError::Protocol("no server to talk to".into()));
        }
        let client = client_builder()
            .timeout(std::time::Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            .build()?;
        Ok(Self {
            nodes: nodes
                .iter()
                .map(|n| n.trim_end_matches('/').to_owned())
                .collect(),
            current: Arc::default(),
            client,
            retried_503: Arc::default(),
            failovers: Arc::default(),
        })
    }

    /// A client that starts on node `n` (modulo the number of nodes) and fails over on
    /// its own, sharing the connection pool and counters.
    pub fn pinned(&self, n: usize) -> Self {
        Self {
            current: Arc::new(AtomicUsize::new(n % self.nodes.len())),
            ..self.clone()
        }
    }

    /// The node this client talks to now.
    pub fn base(&self) -> &str {
        let n = self.current.load(Ordering::Relaxed) % self.nodes.len();
        &self.nodes[n]
    }

    /// Moves to the next node after a transport error (a node that is down).
    pub fn fail_over(&self) {
        if self.nodes.len() > 1 {
            self.current.fetch_add(1, Ordering::Relaxed);
            self.failovers.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sends a request; a `503` is waited out (full-jitter backoff, at least its
    /// `Retry-After`) and retried, as every client of an overloaded service should; a
    /// node that does not answer at all is left for the next one.
    pub async fn send<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&B>,
    ) -> Result<Reply, StormError> {
        let mut attempt = 0;
        loop {
            let retry_after = match self.send_once(method.clone(), path, token, body).await {
                Ok(reply)
                    if reply.status != StatusCode::SERVICE_UNAVAILABLE
                        || attempt >= MAX_RETRIES =>
                {
                    return Ok(reply)
                }
                Ok(reply) => {
                    self.retried_503.fetch_add(1, Ordering::Relaxed);
                    reply.retry_after
                }
                // The node went away: the next one answers the same question.
                Err(StormError::Http(e))
                    if (e.is_connect() || e.is_request()) && attempt < MAX_RETRIES =>
                {
                    None
                }
                Err(e) => return Err(e),
            };
            tokio::time::sleep(crate::camera::backoff(attempt, retry_after)).await;
            attempt += 1;
        }
    }

    /// Sends a request once, for what is worthless when late (a live segment): a `503`
    /// is the answer, and a node that does not answer is left for the next request.
    pub async fn send_once<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&B>,
    ) -> Result<Reply, StormError> {
        match self.request(method, path, token, body).send().await {
            Ok(response) => Self::reply(response).await,
            Err(e) => {
                if e.is_connect() || e.is_request() {
                    self.fail_over();
                }
                Err(e.into())
            }
        }
    }

    fn request<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&B>,
    ) -> reqwest::RequestBuilder {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base()));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        if let Some(b) = body {
            request = request.json(b);
        }
        request
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
