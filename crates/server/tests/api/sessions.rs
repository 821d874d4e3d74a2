//! Sessions: logged-out, logged-out-everywhere, expired and forged tokens all get 401.

use reqwest::{Method, StatusCode};

use crate::common::*;

async fn status_of(server: &TestServer, token: &str) -> TestResult<StatusCode> {
    let sent = server
        .send(Method::GET, "/v1/cameras", Some(token), None)
        .await?;
    if sent.status == StatusCode::UNAUTHORIZED {
        assert_eq!(sent.problem()?.code, "unauthenticated");
    }
    Ok(sent.status)
}

#[tokio::test]
async fn logout_and_logout_everywhere_take_effect_at_once() -> TestResult {
    let server = start().await?;
    let user = server.signup("carol@example.com", "pw carol").await?;
    let second = server.login("carol@example.com", "pw carol").await?.token;
    let third = server.login("carol@example.com", "pw carol").await?.token;
    assert_eq!(status_of(&server, &user.token).await?, StatusCode::OK);

    let out = server
        .send(
            Method::DELETE,
            "/v1/sessions/current",
            Some(&user.token),
            None,
        )
        .await?;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert_eq!(
        status_of(&server, &user.token).await?,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(status_of(&server, &second).await?, StatusCode::OK);

    let all = server
        .send(Method::DELETE, "/v1/sessions", Some(&second), None)
        .await?;
    assert_eq!(all.status, StatusCode::NO_CONTENT);
    assert_eq!(status_of(&server, &second).await?, StatusCode::UNAUTHORIZED);
    assert_eq!(status_of(&server, &third).await?, StatusCode::UNAUTHORIZED);
    Ok(())
}

#[tokio::test]
async fn expired_sessions_are_refused() -> TestResult {
    let server = start_with(|c| c.session_ttl = chrono::Duration::milliseconds(300)).await?;
    let user = server.signup("dave@example.com", "pw dave").await?;
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(
        status_of(&server, &user.token).await?,
        StatusCode::UNAUTHORIZED
    );
    Ok(())
}

#[tokio::test]
async fn forged_tokens_and_wrong_passwords_are_refused() -> TestResult {
    let server = start().await?;
    let user = server.signup("erin@example.com", "pw erin").await?;
    let mut forged = user.token.clone();
    let last = forged.pop().unwrap_or('0');
    forged.push(if last == '0' { '1' } else { '0' });
    for token in [forged.as_str(), "ccu_", "", "ccd_0000", "Bearer x"] {
        assert_eq!(
            status_of(&server, token).await?,
            StatusCode::UNAUTHORIZED,
            "{token:?}"
        );
    }
    let bad = server
        .send(
            Method::POST,
            "/v1/sessions",
            None,
            Some(serde_json::json!({"email": "erin@example.com", "auth_key": cc_core::b64::encode([0u8; 32])})),
        )
        .await?;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert_eq!(bad.problem()?.code, "invalid_credentials");
    // Unknown and known emails get answers of the same shape from prelogin.
    for email in ["erin@example.com", "nobody@example.com"] {
        let pre = server
            .send(
                Method::POST,
                "/v1/accounts/prelogin",
                None,
                Some(serde_json::json!({"email": email})),
            )
            .await?;
        assert_eq!(pre.status, StatusCode::OK);
    }
    let dup = server.signup_raw_duplicate("erin@example.com").await?;
    assert_eq!(dup, StatusCode::CONFLICT);
    Ok(())
}
