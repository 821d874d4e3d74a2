//! The OpenAPI document lists every route the server answers.

use reqwest::{Method, StatusCode};

use crate::common::*;

#[tokio::test]
async fn openapi_describes_every_route() -> TestResult {
    let server = start().await?;
    let sent = server
        .send(Method::GET, "/v1/openapi.json", None, None)
        .await?;
    assert_eq!(sent.status, StatusCode::OK);
    let doc: serde_json::Value = sent.json()?;
    let expected = [
        ("post", "/v1/accounts/prelogin"),
        ("post", "/v1/accounts"),
        ("post", "/v1/sessions"),
        ("delete", "/v1/sessions"),
        ("delete", "/v1/sessions/current"),
        ("get", "/v1/me"),
        ("post", "/v1/claims"),
        ("get", "/v1/claims"),
        ("post", "/v1/claims/{claim_id}/complete"),
        ("delete", "/v1/claims/{claim_id}"),
        ("get", "/v1/cameras"),
        ("get", "/v1/cameras/{camera_id}"),
        ("patch", "/v1/cameras/{camera_id}"),
        ("delete", "/v1/cameras/{camera_id}"),
        ("get", "/v1/cameras/{camera_id}/grants"),
        ("get", "/v1/cameras/{camera_id}/events"),
        ("get", "/v1/cameras/{camera_id}/events/{event_id}"),
        ("get", "/v1/cameras/{camera_id}/events/{event_id}/thumb"),
        ("get", "/v1/cameras/{camera_id}/events/{event_id}/clip"),
        ("get", "/v1/events/stream"),
        ("post", "/v1/device/pair"),
        ("get", "/v1/device/pair/{pairing_id}"),
        ("post", "/v1/device/connect"),
        ("put", "/v1/device/events/{event_id}"),
        ("get", "/v1/device/stream"),
        ("post", "/v1/device/live"),
        ("get", "/v1/cameras/{camera_id}/live"),
        ("put", "/v1/cameras/{camera_id}/retention"),
        ("get", "/v1/sessions"),
        ("delete", "/v1/sessions/{session_id}"),
        ("post", "/v1/sessions/current/step-up"),
        ("post", "/v1/me/2fa/setup"),
        ("post", "/v1/me/2fa/enable"),
        ("get", "/v1/me/security"),
        ("put", "/v1/me/security"),
        ("get", "/v1/users/lookup"),
        ("get", "/v1/cameras/{camera_id}/shares"),
        ("post", "/v1/cameras/{camera_id}/shares"),
        ("delete", "/v1/cameras/{camera_id}/shares/{user_id}"),
        ("get", "/v1/invitations"),
        ("post", "/v1/invitations/{camera_id}/accept"),
        ("get", "/v1/cameras/{camera_id}/certificates"),
        ("post", "/v1/cameras/{camera_id}/rotate"),
        ("get", "/v1/cameras/{camera_id}/access-log"),
        ("post", "/v1/cameras/{camera_id}/transfer"),
        ("delete", "/v1/cameras/{camera_id}/transfer"),
        ("get", "/v1/transfers"),
        ("post", "/v1/transfers/{camera_id}/accept"),
    ];
    let paths = doc["paths"].as_object().ok_or("no paths")?;
    let documented: usize = paths
        .values()
        .filter_map(|p| p.as_object())
        .map(|p| p.len())
        .sum();
    for (method, path) in expected {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is not documented"
        );
    }
    assert_eq!(
        documented,
        expected.len(),
        "the document lists routes this test does not know"
    );
    Ok(())
}
