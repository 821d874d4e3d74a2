//! The Closed Circuit server: axum on tokio. The router is built by [`app`] so tests can
//! drive it in-process; [`serve`] binds it to a socket with the embedded storage.
//!
//! **Architecture invariant:** this is the only crate that knows about HTTP and JSON
//! problem responses; it never decrypts anything, and every camera route gets its data
//! through a `cc_store::authz` proof.

mod admission;
mod error;
mod extract;
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
use cc_store::blobs::LocalBlobs;
use cc_store::cache::Faults;
use cc_store::{Store, StoreOptions};
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa_axum::router::OpenApiRouter;

pub use admission::Limits;
pub use error::ApiError;
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
}

/// The whole HTTP surface, with the OpenAPI document at `/v1/openapi.json`.
pub fn app(state: AppState) -> Router {
    let admission = state.admission.clone();
    let viewers = OpenApiRouter::new()
        .merge(routes::accounts::routes())
        .merge(routes::cameras::routes())
        .merge(routes::events::routes())
        .merge(routes::shares::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            admission.clone(),
            admission::viewer_gate,
        ));
    let (router, api) = OpenApiRouter::with_openapi(openapi::document())
        .merge(viewers)
        .merge(routes::device::routes(admission))
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

/// Opens the embedded storage under `config.data_dir` and builds the node's state.
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
    config.instance_secret = instance_secret(&dir).map_err(data_err)?;
    let blobs = LocalBlobs::new(dir.join("blobs")).map_err(data_err)?;
    let url = format!("sqlite://{}", dir.join("metadata.db").display());
    let tuning = StoreOptions {
        faults: config
            .lying_cache
            .map(|seed| std::sync::Arc::new(Faults::new(seed))),
        ..StoreOptions::default()
    };
    let store = Store::open_with(&url, std::sync::Arc::new(blobs), tuning).await?;
    config.data_dir = dir;
    Ok(AppState::new(store, config, staging))
}

fn instance_secret(dir: &std::path::Path) -> std::io::Result<[u8; 32]> {
    let path = dir.join("instance.key");
    if let Ok(bytes) = std::fs::read(&path) {
        if let Ok(secret) = <[u8; 32]>::try_from(bytes.as_slice()) {
            return Ok(secret);
        }
    }
    let secret: [u8; 32] = rand::random();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(&path)?, &secret)?;
    Ok(secret)
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
    println!(
        "Closed Circuit listening on http://{addr} (data in {})",
        state.config.data_dir.display()
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

/// Ends guest shares and applies retention, once a minute.
async fn sweep(store: Store) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
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
