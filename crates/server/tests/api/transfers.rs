//! Transferring a camera: only its owner offers it, only with a statement signed by the
//! owner's key naming the recipient's real key, only the recipient takes it, and only
//! with a certificate signed by their own key. Afterwards the old owner is shut out and
//! the camera's config names the chain a camera follows.

use cc_core::api::{ConnectResponse, Grant, TransferOffer, TransferRequest};
use cc_core::transfer::{follow, OwnershipTransfer, SignedTransfer};
use reqwest::{Method, StatusCode};

use crate::common::*;

/// What `from`'s client sends to offer `camera` to `to`, signed by `signer`.
async fn offer_request(
    server: &TestServer,
    signer: &User,
    camera: &Camera,
    to: &User,
    to_key: &User,
) -> TestResult<TransferRequest> {
    let statement = OwnershipTransfer {
        v: 1,
        camera_id: camera.camera_id,
        from_key: cc_core::b64::encode(signer.keys.verifying_key().as_bytes()),
        to_user: server.lookup(signer, &to.email).await?,
        to_key: cc_core::b64::encode(to_key.keys.verifying_key().as_bytes()),
        epoch: camera.epoch + 1,
        issued_at: chrono::Utc::now(),
    };
    Ok(TransferRequest {
        transfer: SignedTransfer::sign(&statement, &signer.keys.signing),
        grants: vec![Grant {
            epoch: camera.epoch,
            grant: to
                .keys
                .recipient()
                .encrypt(camera.content.to_secret_string().as_bytes())?,
        }],
    })
}

async fn post(
    server: &TestServer,
    path: &str,
    user: &User,
    body: &impl serde::Serialize,
) -> TestResult<StatusCode> {
    let sent = server
        .send(
            Method::POST,
            path,
            Some(&user.token),
            Some(serde_json::to_value(body)?),
        )
        .await?;
    Ok(sent.status)
}

#[tokio::test]
async fn only_the_owner_offers_and_only_the_recipient_takes() -> TestResult {
    let server = start().await?;
    let owner = server.signup("owner@example.com", "pw").await?;
    let admin = server.signup("admin@example.com", "pw").await?;
    let heir = server.signup("heir@example.com", "pw").await?;
    let stranger = server.signup("stranger@example.com", "pw").await?;
    let camera = server.pair(&owner, "Hall").await?;
    server.share(&owner, &camera, &admin, "admin").await?;
    let cam = camera.camera_id;
    let offer_path = format!("/v1/cameras/{cam}/transfer");

    // An admin cannot give the camera away, even to themselves with the owner's grant.
    let by_admin = offer_request(&server, &admin, &camera, &admin, &admin).await?;
    assert_eq!(
        post(&server, &offer_path, &admin, &by_admin).await?,
        StatusCode::FORBIDDEN
    );
    // A statement not signed by the owner's key, or naming a key that is not the
    // recipient's (a server slipping its own in), is refused.
    let forged = offer_request(&server, &admin, &camera, &heir, &heir).await?;
    assert_eq!(
        post(&server, &offer_path, &owner, &forged).await?,
        StatusCode::BAD_REQUEST
    );
    let swapped = offer_request(&server, &owner, &camera, &heir, &stranger).await?;
    assert_eq!(
        post(&server, &offer_path, &owner, &swapped).await?,
        StatusCode::BAD_REQUEST
    );
    let mut missing_history = offer_request(&server, &owner, &camera, &heir, &heir).await?;
    missing_history.grants.clear();
    assert_eq!(
        post(&server, &offer_path, &owner, &missing_history).await?,
        StatusCode::BAD_REQUEST
    );

    let good = offer_request(&server, &owner, &camera, &heir, &heir).await?;
    assert_eq!(
        post(&server, &offer_path, &owner, &good).await?,
        StatusCode::CREATED
    );
    let offers: Vec<TransferOffer> = server
        .send(Method::GET, "/v1/transfers", Some(&heir.token), None)
        .await?
        .json()?;
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].members.len(), 1, "the admin stays");
    let none: Vec<TransferOffer> = server
        .send(Method::GET, "/v1/transfers", Some(&stranger.token), None)
        .await?
        .json()?;
    assert!(none.is_empty());

    // Someone else cannot take it; the recipient cannot take it with a certificate
    // signed by any key but their own.
    let accept_path = format!("/v1/transfers/{cam}/accept");
    let (by_stranger, _) = server
        .rotation(&stranger, &camera, &[&stranger, &admin])
        .await?;
    assert_eq!(
        post(&server, &accept_path, &stranger, &by_stranger).await?,
        StatusCode::NOT_FOUND
    );
    let (wrong_signer, _) = server.rotation(&owner, &camera, &[&heir, &admin]).await?;
    assert_eq!(
        post(&server, &accept_path, &heir, &wrong_signer).await?,
        StatusCode::BAD_REQUEST
    );
    let (dropping_admin, _) = server.rotation(&heir, &camera, &[&heir]).await?;
    assert_eq!(
        post(&server, &accept_path, &heir, &dropping_admin).await?,
        StatusCode::CONFLICT
    );

    let (taken, after) = server.rotation(&heir, &camera, &[&heir, &admin]).await?;
    assert_eq!(
        post(&server, &accept_path, &heir, &taken).await?,
        StatusCode::NO_CONTENT
    );

    // The old owner is shut out of every route; the heir owns it; the admin stays.
    for route in [
        format!("/v1/cameras/{cam}"),
        format!("/v1/cameras/{cam}/events"),
        format!("/v1/cameras/{cam}/grants"),
    ] {
        let sent = server
            .send(Method::GET, &route, Some(&owner.token), None)
            .await?;
        assert_eq!(sent.status, StatusCode::NOT_FOUND, "{route}");
    }
    let info: cc_core::api::CameraInfo = server
        .send(
            Method::GET,
            &format!("/v1/cameras/{cam}"),
            Some(&heir.token),
            None,
        )
        .await?
        .json()?;
    assert_eq!(info.role, cc_core::api::Role::Owner);
    assert!(server
        .content_key(&admin, cam, after.epoch)
        .await?
        .is_some());
    assert!(
        server
            .content_key(&heir, cam, camera.epoch)
            .await?
            .is_some(),
        "history went along"
    );

    // The camera's config carries the chain from the key it pinned to the heir's.
    let config: ConnectResponse = server
        .send(
            Method::POST,
            "/v1/device/connect",
            Some(&camera.token),
            None,
        )
        .await?
        .json()?;
    let reached = follow(
        cam,
        owner.keys.verifying_key(),
        camera.epoch,
        &config.transfers,
    )?;
    assert_eq!(reached.key, heir.keys.verifying_key());
    assert_eq!(
        config.certificate.verify_owner(&reached.key)?.epoch,
        after.epoch
    );
    Ok(())
}

#[tokio::test]
async fn an_offer_goes_stale_when_the_camera_moves_on() -> TestResult {
    let server = start().await?;
    let owner = server.signup("owner@example.com", "pw").await?;
    let heir = server.signup("heir@example.com", "pw").await?;
    let camera = server.pair(&owner, "Gate").await?;
    let cam = camera.camera_id;
    let offer = offer_request(&server, &owner, &camera, &heir, &heir).await?;
    assert_eq!(
        post(
            &server,
            &format!("/v1/cameras/{cam}/transfer"),
            &owner,
            &offer
        )
        .await?,
        StatusCode::CREATED
    );
    let (prepared, _) = server.rotation(&heir, &camera, &[&heir]).await?;
    server.rotate(&owner, &camera, &[&owner]).await?;
    assert_eq!(
        post(
            &server,
            &format!("/v1/transfers/{cam}/accept"),
            &heir,
            &prepared
        )
        .await?,
        StatusCode::CONFLICT
    );
    let withdrawn = server
        .send(
            Method::DELETE,
            &format!("/v1/cameras/{cam}/transfer"),
            Some(&owner.token),
            None,
        )
        .await?;
    assert_eq!(withdrawn.status, StatusCode::NO_CONTENT);
    Ok(())
}
