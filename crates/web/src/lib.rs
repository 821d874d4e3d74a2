//! The web app, served at `/`. Its assets are built from `web/` by esbuild and committed
//! here, so the server binary carries them and running it never needs Node. Everything
//! the page decrypts is decrypted in the browser: the server only hands out static files
//! and ciphertext.
//!
//! Every asset goes out with a Content-Security-Policy that allows only this origin (and
//! WebAssembly compilation, which the in-browser Argon2id needs), so an injected string
//! can neither run script nor send data anywhere.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// The policy every page and asset carries: same-origin only, no inline script, no
/// plugins, no framing; `blob:` images and media are the decrypted thumbnails and clips.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' blob:; media-src 'self' blob:; connect-src 'self'; font-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// One embedded file: its path, the type it is served as, and its bytes.
type Asset = (&'static str, &'static str, &'static [u8]);

/// The whole app: the page, its bundled script, its stylesheet and its icon.
const ASSETS: [Asset; 4] = [
    (
        "/",
        "text/html; charset=utf-8",
        include_bytes!("../assets/index.html"),
    ),
    (
        "/app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/app.js"),
    ),
    (
        "/app.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/app.css"),
    ),
    (
        "/favicon.svg",
        "image/svg+xml",
        include_bytes!("../assets/favicon.svg"),
    ),
];

fn respond(content_type: &'static str, body: &'static [u8]) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (
                header::HeaderName::from_static("cross-origin-opener-policy"),
                HeaderValue::from_static("same-origin"),
            ),
        ],
        body,
    )
        .into_response()
}

/// The routes serving the app, for any router state. They sit outside `/v1`, so the
/// API and its OpenAPI document are unchanged.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    ASSETS
        .into_iter()
        .fold(Router::new(), |router, (path, content_type, body)| {
            router.route(
                path,
                get(move || async move { respond(content_type, body) }),
            )
        })
}
