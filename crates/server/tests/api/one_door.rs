//! DESIGN I3: household B, holding household A's IDs in every combination, gets 404 with
//! a problem body on every route; so does A for a camera it removed.

use reqwest::{Method, StatusCode};

use crate::common::*;

/// Every route that names a camera (and an event), with a harmless body where needed.
fn camera_routes(camera: &str, event: &str) -> Vec<(Method, String, Option<serde_json::Value>)> {
    let sealed = serde_json::json!({"name": {"epoch": 1, "ciphertext": cc_core::b64::encode(b"age-encryption.org/v1\nx")}});
    vec![
        (Method::GET, format!("/v1/cameras/{camera}"), None),
        (Method::PATCH, format!("/v1/cameras/{camera}"), Some(sealed)),
        (Method::DELETE, format!("/v1/cameras/{camera}"), None),
        (Method::GET, format!("/v1/cameras/{camera}/grants"), None),
        (Method::GET, format!("/v1/cameras/{camera}/events"), None),
        (
            Method::GET,
            format!("/v1/cameras/{camera}/events/{event}"),
            None,
        ),
        (
            Method::GET,
            format!("/v1/cameras/{camera}/events/{event}/thumb"),
            None,
        ),
        (
            Method::GET,
            format!("/v1/cameras/{camera}/events/{event}/clip"),
            None,
        ),
    ]
}

async fn assert_all_not_found(
    server: &TestServer,
    token: &str,
    camera: &str,
    event: &str,
) -> TestResult {
    for (method, path, body) in camera_routes(camera, event) {
        let sent = server
            .send(method.clone(), &path, Some(token), body)
            .await?;
        assert_eq!(sent.status, StatusCode::NOT_FOUND, "{method} {path}");
        assert_eq!(sent.problem()?.code, "not_found", "{method} {path}");
    }
    Ok(())
}

#[tokio::test]
async fn another_household_cannot_reach_anything_by_id() -> TestResult {
    households_stay_apart(start().await?).await
}

#[tokio::test]
async fn a_lying_membership_cache_changes_nothing() -> TestResult {
    let server = start_with(|c| c.lying_cache = Some(42)).await?;
    households_stay_apart(server).await
}

async fn households_stay_apart(server: TestServer) -> TestResult {
    let alice = server.signup("alice@example.com", "alice password").await?;
    let bob = server.signup("bob@example.com", "bob password").await?;
    let a_cam = server.pair(&alice, "Front door").await?;
    let b_cam = server.pair(&bob, "Garage").await?;
    let a_event = event(&a_cam, b"a-thumb", b"a-clip")?;
    let b_event = event(&b_cam, b"b-thumb", b"b-clip")?;
    assert_eq!(
        server.upload(&a_cam, &a_event).await?.status,
        StatusCode::CREATED
    );
    assert_eq!(
        server.upload(&b_cam, &b_event).await?.status,
        StatusCode::CREATED
    );
    let (ac, ae) = (a_cam.camera_id.to_string(), a_event.path_event.to_string());
    let (bc, be) = (b_cam.camera_id.to_string(), b_event.path_event.to_string());

    // A's camera and event; A's camera with B's event; B's camera with A's event.
    assert_all_not_found(&server, &bob.token, &ac, &ae).await?;
    assert_all_not_found(&server, &bob.token, &ac, &be).await?;
    let swapped = server
        .send(
            Method::GET,
            &format!("/v1/cameras/{bc}/events/{ae}"),
            Some(&bob.token),
            None,
        )
        .await?;
    assert_eq!(swapped.status, StatusCode::NOT_FOUND);
    let swapped_clip = server
        .send(
            Method::GET,
            &format!("/v1/cameras/{bc}/events/{ae}/clip"),
            Some(&bob.token),
            None,
        )
        .await?;
    assert_eq!(swapped_clip.status, StatusCode::NOT_FOUND);
    // IDs in the wrong slots.
    assert_all_not_found(&server, &bob.token, &ae, &ac).await?;

    // Bob's listings show only Bob's things.
    let cams: Vec<cc_core::api::CameraInfo> = server
        .send(Method::GET, "/v1/cameras", Some(&bob.token), None)
        .await?
        .json()?;
    assert_eq!(
        cams.iter().map(|c| c.camera_id).collect::<Vec<_>>(),
        vec![b_cam.camera_id]
    );

    // Alice still sees her event, then removes the camera and sees nothing of it either.
    let mine = server
        .send(
            Method::GET,
            &format!("/v1/cameras/{ac}/events/{ae}/clip"),
            Some(&alice.token),
            None,
        )
        .await?;
    assert_eq!(mine.status, StatusCode::OK);
    assert_eq!(mine.body, a_event.clip);
    let removed = server
        .send(
            Method::DELETE,
            &format!("/v1/cameras/{ac}"),
            Some(&alice.token),
            None,
        )
        .await?;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    assert_all_not_found(&server, &alice.token, &ac, &ae).await?;
    // The removed camera's device token no longer works either.
    let again = server.upload(&a_cam, &event(&a_cam, b"t", b"c")?).await?;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    // Repeat the probes a few times so a lying cache gets its chances.
    for _ in 0..5 {
        assert_all_not_found(&server, &bob.token, &ac, &ae).await?;
        let own = server
            .send(
                Method::GET,
                &format!("/v1/cameras/{bc}/events/{be}"),
                Some(&bob.token),
                None,
            )
            .await?;
        assert_eq!(own.status, StatusCode::OK);
    }
    Ok(())
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_with_problems() -> TestResult {
    let server = start().await?;
    let nowhere = server.send(Method::GET, "/v1/nowhere", None, None).await?;
    assert_eq!(nowhere.status, StatusCode::NOT_FOUND);
    assert_eq!(nowhere.problem()?.code, "not_found");
    let wrong = server.send(Method::PUT, "/v1/cameras", None, None).await?;
    assert_eq!(wrong.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong.problem()?.code, "method_not_allowed");
    let bad_id = server
        .send(Method::GET, "/v1/cameras/not-a-uuid", None, None)
        .await?;
    assert!(bad_id.status.is_client_error());
    bad_id.problem()?;
    Ok(())
}
