//! DESIGN I1: media with a known marker goes in; the marker is nowhere in the data
//! directory (database, WAL, blobs, staging), while the owner can still decrypt it.

use cc_core::api::{EventInfo, Grant};
use cc_core::envelope::Identity;
use reqwest::{Method, StatusCode};

use crate::common::*;

#[tokio::test]
async fn only_ciphertext_reaches_the_data_directory() -> TestResult {
    let server = start().await?;
    let user = server.signup("ivan@example.com", "pw").await?;
    let camera = server.pair(&user, "SECRET-CAMERA-NAME").await?;
    let marker = b"MEDIA-MARKER-5f1c2b";
    let mut ids = Vec::new();
    for i in 0..5u8 {
        let thumb = [marker.as_slice(), b"-thumb-", &[i]].concat();
        let clip = [marker.as_slice(), b"-clip-", &[i; 2000]].concat();
        let upload = event(&camera, &thumb, &clip)?;
        assert_eq!(
            server.upload(&camera, &upload).await?.status,
            StatusCode::CREATED
        );
        ids.push((upload.path_event, clip));
    }
    for file in files_below(&server.data_dir) {
        let bytes = std::fs::read(&file)?;
        assert!(
            !contains(&bytes, marker),
            "plaintext media in {}",
            file.display()
        );
        assert!(
            !contains(&bytes, b"SECRET-CAMERA-NAME"),
            "plaintext name in {}",
            file.display()
        );
        assert!(
            !contains(&bytes, b"AGE-SECRET-KEY-"),
            "a private key in {}",
            file.display()
        );
    }

    // The owner's path still works: grant → content key → clip.
    let grants: Vec<Grant> = server
        .send(
            Method::GET,
            &format!("/v1/cameras/{}/grants", camera.camera_id),
            Some(&user.token),
            None,
        )
        .await?
        .json()?;
    let content = Identity::parse(&String::from_utf8(
        user.keys.identity.decrypt(&grants[0].grant)?,
    )?)?;
    let (event_id, clip) = &ids[0];
    let info: EventInfo = server
        .send(
            Method::GET,
            &format!("/v1/cameras/{}/events/{event_id}", camera.camera_id),
            Some(&user.token),
            None,
        )
        .await?
        .json()?;
    let manifest = info.manifest.verify(&camera.device.verifying_key())?;
    manifest.check_identity(camera.camera_id, *event_id)?;
    let stored = server
        .send(
            Method::GET,
            &format!("/v1/cameras/{}/events/{event_id}/clip", camera.camera_id),
            Some(&user.token),
            None,
        )
        .await?;
    manifest.check_clip(&stored.body)?;
    assert_eq!(&content.decrypt(&stored.body)?, clip);
    Ok(())
}
