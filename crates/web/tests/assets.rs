//! The app's files are served with the strict policy, and the page names nothing outside
//! its own origin.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use tower::ServiceExt;

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn get(path: &str) -> Result<axum::response::Response, Box<dyn std::error::Error>> {
    let app: axum::Router = cc_web::routes();
    Ok(app
        .oneshot(Request::builder().uri(path).body(Body::empty())?)
        .await?)
}

#[tokio::test]
async fn every_asset_carries_the_content_security_policy() -> TestResult {
    for (path, kind) in [
        ("/", "text/html"),
        ("/app.js", "text/javascript"),
        ("/app.css", "text/css"),
        ("/favicon.svg", "image/svg+xml"),
    ] {
        let response = get(path).await?;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers();
        assert!(headers[header::CONTENT_TYPE].to_str()?.starts_with(kind));
        assert_eq!(
            headers[header::CONTENT_SECURITY_POLICY],
            cc_web::CONTENT_SECURITY_POLICY
        );
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
    }
    Ok(())
}

#[tokio::test]
async fn the_page_loads_only_same_origin_files() -> TestResult {
    let response = get("/").await?;
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await?;
    let page = std::str::from_utf8(&bytes)?;
    let foreign: Vec<&str> = page
        .split(['"', '\''])
        .filter(|s| s.contains("//"))
        .collect();
    assert!(
        foreign.is_empty(),
        "the page names other origins: {foreign:?}"
    );
    assert!(!page.contains("<script>") && !page.contains("style="));
    Ok(())
}

#[test]
fn the_policy_allows_nothing_from_elsewhere() {
    let policy = cc_web::CONTENT_SECURITY_POLICY;
    assert!(!policy.contains("unsafe-inline") && !policy.contains("http"));
    assert!(policy.contains("default-src 'self'") && policy.contains("frame-ancestors 'none'"));
}
