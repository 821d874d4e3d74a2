//! The Closed Circuit server: axum on tokio. The router is built by [`app`] so tests can
//! drive it in-process; [`serve`] binds it to a socket with the embedded storage.
//!
//! **Architecture invariant:** this is the only crate that knows about HTTP and JSON
//! problem responses; it never decrypts anything, and every camera route gets its data
//! through a `cc_store::authz` proof.

mod admission;
pub mod config;
mod error;
mod extract;
mod fanout;
mod openapi;
mod range;
mod routes;
mod state;
mod throttle;
mod upload;

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::PathBuf;

use axum::http::{header, HeaderValue, StatusCode};
use axum::Router;
use cc_store::blobs::{LocalBlobs, S3Blobs};
use cc_store::cache::Faults;
use cc_store::shared::SharedTier;
use cc_store::{Store, StoreOptions};
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa_axum::router::OpenApiRouter;

pub use admission::Limits;
pub use error::ApiError;
pub use fanout::{EventNotice, Fanout, FanoutError};
pub use state::AppState;

/// How one node runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// Embedded storage: `metadata.db` (SQLite), `blobs/`, `tmp/`.
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// How long a login lasts.
    pub session_ttl: chrono::Duration,
    /// Keys the decoy answers for unknown emails; loaded from the data directory.
    pub instance_secret: [u8; 32],
    /// Admission control and bulkhead budgets.
    pub limits: Limits,
    /// Seed of a membership cache that lies (tests and `storm --lying-cache` only).
    pub lying_cache: Option<u64>,
    /// Where metadata lives (default: SQLite in the data directory).
    pub metadata: config::Metadata,
    /// Where encrypted media lives (default: `blobs/` in the data directory).
    pub blobs: config::Blobs,
    /// Where the door's cache and limits are shared (default: this process).
    pub cache: config::Cache,
    /// How notifications reach other nodes (default: this process).
    pub fanout: config::Fanout,
    /// Prefix of every Redis key and NATS subject, so installations can share servers.
    pub namespace: String,
}

impl Config {
    /// A node configured by checked [`config::Settings`], other knobs at their defaults.
    pub fn from_settings(settings: config::Settings) -> Self {
        Self {
            data_dir: settings.data_dir,
            listen: settings.listen,
            metadata: settings.metadata,
            blobs: settings.blobs,
            cache: settings.cache,
            fanout: settings.fanout,
            ..Self::default()
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("closedcircuit-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            session_ttl: chrono::Duration::days(30),
            instance_secret: [0; 32],
            lying_cache: None,
            limits: Limits::default(),
            metadata: config::Metadata::default(),
            blobs: config::Blobs::default(),
            cache: config::Cache::default(),
            fanout: config::Fanout::default(),
            namespace: "cc".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot use data directory {path}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the metadata store")]
    Store(#[from] cc_store::StoreError),
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server failed")]
    Io(#[from] std::io::Error),
    #[error("cannot use the S3 bucket")]
    S3(#[source] std::io::Error),
    #[error("cannot use Redis")]
    Redis(#[from] cc_store::shared::SharedError),
    #[error("cannot use NATS")]
    Nats(#[from] FanoutError),
}

/// The whole HTTP surface, with the OpenAPI document at `/v1/openapi.json`.
pub fn app(state: AppState) -> Router {
    let admission = state.admission.clone();
    let viewers = OpenApiRouter::new()
        .merge(routes::accounts::routes())
        .merge(routes::cameras::routes())
        .merge(routes::events::routes())
        .merge(routes::live::viewer_routes())
        .merge(routes::shares::routes())
        .merge(routes::transfers::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            admission.clone(),
            admission::viewer_gate,
        ));
    let (router, api) = OpenApiRouter::with_openapi(openapi::document())
        .merge(viewers)
        .merge(routes::device::routes(admission.clone()))
        .merge(routes::live::device_routes(admission))
        .split_for_parts();
    let api = std::sync::Arc::new(api);
    router
        .route(
            "/v1/openapi.json",
            axum::routing::get(move || {
                let api = api.clone();
                async move { axum::Json(api.as_ref().clone()) }
            }),
        )
        // The web app, outside `/v1` and the OpenAPI document.
        .merge(cc_web::routes())
        .fallback(|| async {
            error::problem(StatusCode::NOT_FOUND, "not_found", "Not found", None)
        })
        .method_not_allowed_fallback(|| async {
            error::problem(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Method not allowed",
                None,
            )
        })
        // Camera data must never sit in a shared cache (the failure this product answers).
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .with_state(state)
}

/// Opens the configured storage (by default embedded under `config.data_dir`) and
/// builds the node's state.
pub async fn open(mut config: Config) -> Result<AppState, ServeError> {
    let dir = &config.data_dir;
    let data_err = |source| ServeError::DataDir {
        path: dir.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(data_err)?;
    let dir = std::fs::canonicalize(dir).map_err(data_err)?;
    let staging = dir.join("tmp");
    std::fs::create_dir_all(&staging).map_err(data_err)?;
    let legacy_secret = legacy_instance_secret(&dir);
    let blobs: cc_store::Blobs = match &config.blobs {
        config::Blobs::Embedded => local_blobs(dir.join("blobs"))?,
        config::Blobs::File(root) => local_blobs(root.clone())?,
        config::Blobs::S3(s3) => std::sync::Arc::new(S3Blobs::new(s3).map_err(ServeError::S3)?),
    };
    let url = match &config.metadata {
        config::Metadata::Embedded => format!("sqlite://{}", dir.join("metadata.db").display()),
        config::Metadata::Sqlite(path) => format!("sqlite://{}", path.display()),
        config::Metadata::Postgres(url) => url.expose().to_owned(),
    };
    let shared = match &config.cache {
        config::Cache::Memory => None,
        config::Cache::Redis(url) => Some(SharedTier::connect(url.expose(), &config.namespace)?),
    };
    let tuning = StoreOptions {
        faults: config
            .lying_cache
            .map(|seed| std::sync::Arc::new(Faults::new(seed))),
        shared: shared.clone(),
        ..StoreOptions::default()
    };
    let store = Store::open_with(&url, blobs, tuning).await?;
    config.instance_secret = store
        .instance_secret(legacy_secret.unwrap_or_else(rand::random))
        .await?;
    config.data_dir = dir;
    let fanout = match &config.fanout {
        config::Fanout::Memory => None,
        config::Fanout::Nats(url) => Some(Fanout::nats(url.expose(), &config.namespace).await?),
    };
    let mut state = AppState::new(store, config, staging);
    if let Some(tier) = shared {
        state = state.with_shared_limits(tier);
    }
    if let Some(fanout) = fanout {
        state = state.with_fanout(fanout);
    }
    Ok(state)
}

fn local_blobs(root: PathBuf) -> Result<cc_store::Blobs, ServeError> {
    match LocalBlobs::new(&root) {
        Ok(blobs) => Ok(std::sync::Arc::new(blobs)),
        Err(source) => Err(ServeError::DataDir { path: root, source }),
    }
}

/// The decoy secret an installation kept in its data directory before the secret moved
/// into the metadata database (where every node finds the same one); it is adopted so
/// the decoy answers do not change.
fn legacy_instance_secret(dir: &std::path::Path) -> Option<[u8; 32]> {
    let bytes = std::fs::read(dir.join("instance.key")).ok()?;
    <[u8; 32]>::try_from(bytes.as_slice()).ok()
}

const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs a node until Ctrl-C or SIGTERM.
pub async fn serve(config: Config) -> Result<(), ServeError> {
    let listen = config.listen;
    let state = open(config).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| ServeError::Listen {
            addr: listen,
            source,
        })?;
    let addr = listener.local_addr()?;
    tokio::spawn(sweep(state.store.clone()));
    tokio::spawn(flush_presence(state.store.clone()));
    println!(
        "Closed Circuit listening on http://{addr} (data in {}, metadata in {})",
        state.config.data_dir.display(),
        state.store.backend().name()
    );
    let service = app(state).into_make_service_with_connect_info::<SocketAddr>();
    let stop = std::sync::Arc::new(tokio::sync::Notify::new());
    let stopped = stop.clone();
    let serving = axum::serve(listener, service)
        .with_graceful_shutdown(async move { stopped.notified().await })
        .into_future();
    tokio::pin!(serving);
    tokio::select! {
        result = &mut serving => result?,
        () = shutdown_signal() => {
            stop.notify_one();
            // Requests in flight finish; long-lived streams (which never do) are cut
            // after a grace period, and their clients reconnect elsewhere.
            if tokio::time::timeout(SHUTDOWN_GRACE, serving).await.is_err() {
                tracing::info!("closed open streams after the shutdown grace period");
            }
        }
    }
    Ok(())
}

/// Writes which cameras this node sees connected, every few seconds, in one transaction.
async fn flush_presence(store: Store) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(10));
    loop {
        tick.tick().await;
        if let Err(e) = store.flush_presence().await {
            tracing::warn!(error = %e, "writing camera presence failed; retrying next round");
        }
    }
}

/// Sweeps for orphaned blobs once per this many minutes: a full listing of the blob
/// store is too costly to repeat every minute.
const ORPHAN_SWEEP_EVERY: u64 = 60;

/// Ends guest shares and applies retention, once a minute; removes orphaned blobs
/// (left by a crash between blob and row) once an hour.
async fn sweep(store: Store) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    for minute in 0u64.. {
        tick.tick().await;
        if minute % ORPHAN_SWEEP_EVERY == ORPHAN_SWEEP_EVERY - 1 {
            match store
                .sweep_orphan_blobs(cc_store::orphans::DEFAULT_GRACE)
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "orphaned blobs deleted"),
                Err(e) => tracing::warn!(error = %e, "orphan sweep failed"),
            }
        }
        match store.sweep_expired_members().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(ended = n, "guest shares expired"),
            Err(e) => tracing::warn!(error = %e, "sweeping expired shares failed"),
        }
        match store.sweep_retention().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "retention: old events deleted"),
            Err(e) => tracing::warn!(error = %e, "retention sweep failed"),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
