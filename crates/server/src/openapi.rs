//! The OpenAPI document's frame; routes add themselves through `utoipa-axum`.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "Closed Circuit", description = "End-to-end-encrypted home camera cloud. \
        The server stores ciphertext only; clients encrypt, sign, verify and decrypt. \
        Errors are RFC 9457 problem JSON with a stable `code`."),
    tags(
        (name = "accounts", description = "Sign-up, login, sessions"),
        (name = "cameras", description = "Claims, pairing and cameras"),
        (name = "events", description = "Events and their encrypted media"),
        (name = "live", description = "Live view: encrypted segments relayed, never stored"),
        (name = "device", description = "What cameras call"),
        (name = "sharing", description = "Shares, key rotation and the access log"),
    )
)]
struct ApiDoc;

pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    doc
}
