//! Several nodes behind one name: one database, shared Redis and NATS, blobs on an
//! S3-compatible server. Notices cross nodes, revocations hold on every node at once,
//! a Redis outage never opens the door, and a crash between blob and row leaves no
//! visible half-event.

use std::time::Duration;

use cc_core::api::EventInfo;
use cc_core::EventId;
use cc_store::blobs::{BlobKey, BlobStore, MediaObject, S3Blobs};
use reqwest::{Method, StatusCode};

use crate::common::*;

#[tokio::test]
async fn a_viewer_on_node_b_watches_a_camera_connected_to_node_a() -> TestResult {
    let nodes = start_nodes(2, local_services()).await?;
    let (a, b) = (&nodes[0], &nodes[1]);
    let owner = a.signup("relay-owner@example.com", "pw").await?;
    let friend = a.signup("relay-friend@example.com", "pw").await?;
    let camera = a.pair(&owner, "Drive").await?;
    a.share(&owner, &camera, &friend, "viewer").await?;
    let cam = camera.camera_id;

    // The camera is connected to A; its friend opens live view on B, and A passes the
    // request on to the camera.
    let mut device = a.open_stream("/v1/device/stream", &camera.token).await?;
    read_until(&mut device, "event: config").await?;
    let mut view = b
        .open_stream(&format!("/v1/cameras/{cam}/live"), &friend.token)
        .await?;
    assert_eq!(view.status(), StatusCode::OK);
    read_until(&mut device, "event: live").await?;

    // Segments sent through A reach the viewer on B, still sealed to the content key.
    let frame = live_frame(&camera, "relay", 1, b"driveway")?;
    let sent = a
        .send(
            Method::POST,
            "/v1/device/live",
            Some(&camera.token),
            Some(serde_json::to_value(&frame)?),
        )
        .await?;
    assert!(sent.json::<cc_core::api::LiveAck>()?.watching);
    let relayed = next_frame(&mut view).await?;
    assert_eq!(relayed.segment, frame.segment);
    let key = b.content_key(&friend, cam, 1).await?.ok_or("no grant")?;
    assert_eq!(
        key.decrypt(&cc_core::b64::decode(&relayed.ciphertext)?)?,
        b"driveway"
    );

    // Revoked on A: the friend's live view on B ends at the next segment, without it.
    a.revoke(&owner, cam, "relay-friend@example.com").await?;
    let after = live_frame(&camera, "relay", 2, b"after")?;
    a.send(
        Method::POST,
        "/v1/device/live",
        Some(&camera.token),
        Some(serde_json::to_value(&after)?),
    )
    .await?;
    let rest = tokio::time::timeout(Duration::from_secs(10), view.bytes()).await??;
    assert!(!contains(&rest, after.ciphertext.as_bytes()));
    Ok(())
}

#[tokio::test]
async fn a_viewer_on_node_b_hears_about_an_upload_through_node_a() -> TestResult {
    let nodes = start_nodes(2, local_services()).await?;
    let (a, b) = (&nodes[0], &nodes[1]);
    let owner = a.signup("fan-owner@example.com", "pw").await?;
    let friend = a.signup("fan-friend@example.com", "pw").await?;
    let stranger = a.signup("fan-stranger@example.com", "pw").await?;
    let camera = a.pair(&owner, "Porch").await?;
    let open = |user_token: String| async move {
        b.http
            .get(format!("{}/v1/events/stream", b.url))
            .bearer_auth(user_token)
            .send()
            .await
    };
    let mut friend_stream = open(friend.token.clone()).await?;
    let mut stranger_stream = open(stranger.token.clone()).await?;
    assert_eq!(friend_stream.status(), StatusCode::OK);
    // The friend accepts the share through node A while their stream is open on B.
    a.share(&owner, &camera, &friend, "viewer").await?;
    let upload = event(&camera, b"thumb", b"clip")?;
    assert_eq!(
        a.upload(&camera, &upload).await?.status,
        StatusCode::CREATED
    );
    let text = read_until(&mut friend_stream, &upload.path_event.to_string()).await?;
    let data = text
        .lines()
        .find_map(|l| l.strip_prefix("data:"))
        .ok_or("no data line")?;
    let info: EventInfo = serde_json::from_str(data.trim())?;
    assert_eq!(info.camera_id, camera.camera_id);
    assert_eq!(info.event_id, upload.path_event);
    // Someone with no share hears nothing, even with the notice on every node.
    let heard = tokio::time::timeout(Duration::from_millis(500), stranger_stream.chunk()).await;
    if let Ok(chunk) = heard {
        let chunk = chunk?.unwrap_or_default();
        assert!(!contains(&chunk, upload.path_event.to_string().as_bytes()));
    }
    Ok(())
}

#[tokio::test]
async fn a_rotation_on_node_b_reaches_a_camera_connected_to_node_a() -> TestResult {
    let nodes = start_nodes(2, local_services()).await?;
    let (a, b) = (&nodes[0], &nodes[1]);
    let owner = a.signup("rot-owner@example.com", "pw").await?;
    let camera = a.pair(&owner, "Garage").await?;
    let mut stream = a
        .http
        .get(format!("{}/v1/device/stream", a.url))
        .bearer_auth(&camera.token)
        .send()
        .await?;
    assert_eq!(stream.status(), StatusCode::OK);
    read_until(&mut stream, "\"epoch\":1").await?;
    b.rotate(&owner, &camera, &[&owner]).await?;
    read_until(&mut stream, "\"epoch\":2").await?;
    Ok(())
}

/// What each node answers `token` on `route`.
async fn statuses(nodes: &[TestServer], route: &str, token: &str) -> TestResult<Vec<StatusCode>> {
    let mut answers = Vec::with_capacity(nodes.len());
    for node in nodes {
        answers.push(
            node.send(Method::GET, route, Some(token), None)
                .await?
                .status,
        );
    }
    Ok(answers)
}

/// The owner ends `email`'s share of `camera`, through `node`.
async fn unshare(node: &TestServer, owner: &User, camera: &Camera, email: &str) -> TestResult {
    let member = node.lookup(owner, email).await?;
    let revoked = node
        .send(
            Method::DELETE,
            &format!("/v1/cameras/{}/shares/{member}", camera.camera_id),
            Some(&owner.token),
            None,
        )
        .await?;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    Ok(())
}

#[tokio::test]
async fn a_share_revoked_on_node_c_is_refused_on_a_and_b_at_once() -> TestResult {
    let nodes = start_nodes(3, local_services()).await?;
    let owner = nodes[0].signup("rv-owner@example.com", "pw").await?;
    let friend = nodes[0].signup("rv-friend@example.com", "pw").await?;
    let camera = nodes[0].pair(&owner, "Hall").await?;
    nodes[0].share(&owner, &camera, &friend, "viewer").await?;
    let route = format!("/v1/cameras/{}/events", camera.camera_id);
    // Every node has the friend's membership cached.
    assert_eq!(
        statuses(&nodes, &route, &friend.token).await?,
        [StatusCode::OK; 3]
    );
    unshare(&nodes[2], &owner, &camera, "rv-friend@example.com").await?;
    assert_eq!(
        statuses(&nodes[..2], &route, &friend.token).await?,
        [StatusCode::NOT_FOUND; 2]
    );
    // A session ended on one node is refused by the others on the next request.
    let logout = nodes[2]
        .send(
            Method::DELETE,
            "/v1/sessions/current",
            Some(&owner.token),
            None,
        )
        .await?;
    assert!(logout.status.is_success(), "{}", logout.status);
    assert_eq!(
        statuses(&nodes[..2], &route, &owner.token).await?,
        [StatusCode::UNAUTHORIZED; 2]
    );
    Ok(())
}

#[tokio::test]
async fn with_redis_unreachable_the_database_decides() -> TestResult {
    let services = Services {
        redis: Some("redis://127.0.0.1:1".into()),
        namespace: fresh_namespace(),
        ..Services::default()
    };
    let nodes = start_nodes(2, services).await?;
    let owner = nodes[0].signup("rd-owner@example.com", "pw").await?;
    let friend = nodes[0].signup("rd-friend@example.com", "pw").await?;
    let stranger = nodes[1].signup("rd-stranger@example.com", "pw").await?;
    let camera = nodes[0].pair(&owner, "Yard").await?;
    nodes[1].share(&owner, &camera, &friend, "viewer").await?;
    let route = format!("/v1/cameras/{}", camera.camera_id);
    assert_eq!(
        statuses(&nodes, &route, &friend.token).await?,
        [StatusCode::OK; 2]
    );
    assert_eq!(
        statuses(&nodes, &route, &stranger.token).await?,
        [StatusCode::NOT_FOUND; 2]
    );
    unshare(&nodes[1], &owner, &camera, "rd-friend@example.com").await?;
    assert_eq!(
        statuses(&nodes, &route, &friend.token).await?,
        [StatusCode::NOT_FOUND; 2]
    );
    assert!(
        nodes[0]
            .store
            .cache_stats()
            .degraded
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
    Ok(())
}

#[tokio::test]
async fn s3_blobs_put_get_range_delete_and_list() -> TestResult {
    let s3 = start_s3().await?;
    let blobs = S3Blobs::new(&s3.config)?;
    let dir = tempfile::tempdir()?;
    let staged = dir.path().join("staged");
    std::fs::write(&staged, b"0123456789")?;
    let camera = cc_core::CameraId::new_v7();
    let key = BlobKey::media(camera, EventId::new_v7(), MediaObject::Clip, "abcd");
    blobs.put_file(&key, &staged).await?;
    assert!(!staged.exists());
    assert_eq!(&blobs.get_range(&key, 0..10).await?[..], b"0123456789");
    assert_eq!(&blobs.get_range(&key, 2..5).await?[..], b"234");
    assert_eq!(&blobs.get_range(&key, 8..100).await?[..], b"89");
    let listed = blobs.list(&BlobKey::camera_prefix(camera)).await?;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].key, key.as_str());
    blobs.delete(&key).await?;
    blobs.delete(&key).await?;
    let missing = blobs
        .get_range(&key, 0..1)
        .await
        .err()
        .ok_or("deleted blob read")?;
    assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
    for n in 0..3 {
        std::fs::write(&staged, b"x")?;
        let k = BlobKey::media(
            camera,
            EventId::new_v7(),
            MediaObject::Thumb,
            &format!("{n}"),
        );
        blobs.put_file(&k, &staged).await?;
    }
    // A clip large enough to go up in parts reads back byte for byte.
    let big: Vec<u8> = (0..20 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&staged, &big)?;
    let big_key = BlobKey::media(camera, EventId::new_v7(), MediaObject::Clip, "b16");
    blobs.put_file(&big_key, &staged).await?;
    assert!(!staged.exists());
    assert_eq!(&blobs.get_range(&big_key, 0..u64::MAX).await?[..], &big[..]);
    let (start, end) = (9 * 1024 * 1024, 9 * 1024 * 1024 + 10);
    assert_eq!(
        &blobs.get_range(&big_key, start as u64..end as u64).await?[..],
        &big[start..end]
    );
    blobs.delete_prefix(&BlobKey::camera_prefix(camera)).await?;
    assert!(blobs
        .list(&BlobKey::camera_prefix(camera))
        .await?
        .is_empty());
    Ok(())
}

/// A camera's blobs were written but the node died before the row: nothing shows, and
/// the sweeper removes exactly the orphans.
async fn crash_between_blob_and_row_leaves_nothing_visible(node: &TestServer) -> TestResult {
    let owner = node.signup("orphan-owner@example.com", "pw").await?;
    let camera = node.pair(&owner, "Shed").await?;
    let kept = event(&camera, b"kept-thumb", b"kept-clip")?;
    assert_eq!(
        node.upload(&camera, &kept).await?.status,
        StatusCode::CREATED
    );
    // The crash: both blobs of an event are durable, its row never commits.
    let lost = event(&camera, b"lost-thumb", b"lost-clip")?;
    let blobs = node.store.blobs();
    let dir = tempfile::tempdir()?;
    for (object, bytes, hash) in [
        (MediaObject::Thumb, &lost.thumb, &lost.manifest.thumb_sha256),
        (MediaObject::Clip, &lost.clip, &lost.manifest.clip_sha256),
    ] {
        let staged = dir.path().join(object.as_str());
        std::fs::write(&staged, bytes)?;
        let key = BlobKey::media(camera.camera_id, lost.path_event, object, hash);
        blobs.put_file(&key, &staged).await?;
    }
    let cam = camera.camera_id;
    let list = node
        .send(
            Method::GET,
            &format!("/v1/cameras/{cam}/events"),
            Some(&owner.token),
            None,
        )
        .await?;
    assert!(!contains(
        &list.body,
        lost.path_event.to_string().as_bytes()
    ));
    for path in [
        format!("/v1/cameras/{cam}/events/{}", lost.path_event),
        format!("/v1/cameras/{cam}/events/{}/clip", lost.path_event),
    ] {
        let sent = node
            .send(Method::GET, &path, Some(&owner.token), None)
            .await?;
        assert_eq!(sent.status, StatusCode::NOT_FOUND, "{path}");
    }
    // Young orphans may belong to an upload still in flight: left alone.
    assert_eq!(
        node.store
            .sweep_orphan_blobs(Duration::from_secs(3600))
            .await?,
        0
    );
    assert_eq!(node.store.sweep_orphan_blobs(Duration::ZERO).await?, 2);
    let clip = node
        .send(
            Method::GET,
            &format!("/v1/cameras/{cam}/events/{}/clip", kept.path_event),
            Some(&owner.token),
            None,
        )
        .await?;
    assert_eq!(clip.status, StatusCode::OK);
    assert_eq!(clip.body, kept.clip);
    let left = blobs.list(&BlobKey::camera_prefix(cam)).await?;
    assert_eq!(left.len(), 2, "{left:?}");
    // Ciphertext only, wherever the blobs live.
    for listed in left {
        let (_, _, key) = BlobKey::parse_media(&listed.key).ok_or("unexpected key")?;
        let stored = blobs.get_range(&key, 0..u64::MAX).await?;
        for marker in [&b"kept-thumb"[..], b"kept-clip"] {
            assert!(!contains(&stored, marker), "{} holds plaintext", listed.key);
        }
    }
    Ok(())
}

#[tokio::test]
async fn orphans_are_swept_from_local_blobs() -> TestResult {
    let node = start().await?;
    crash_between_blob_and_row_leaves_nothing_visible(&node).await
}

#[tokio::test]
async fn orphans_are_swept_from_s3_and_media_is_served_from_it() -> TestResult {
    let s3 = start_s3().await?;
    let services = Services {
        s3: Some(s3.config.clone()),
        ..Services::default()
    };
    let nodes = start_nodes(1, services).await?;
    crash_between_blob_and_row_leaves_nothing_visible(&nodes[0]).await
}

#[tokio::test]
async fn installations_under_different_prefixes_share_a_bucket() -> TestResult {
    let s3 = start_s3().await?;
    let under = |prefix: &str| {
        S3Blobs::new(&cc_store::blobs::S3Config {
            prefix: prefix.into(),
            ..s3.config.clone()
        })
    };
    let (one, two) = (under("one/")?, under("two")?);
    let dir = tempfile::tempdir()?;
    let staged = dir.path().join("staged");
    std::fs::write(&staged, b"only in one")?;
    let key = BlobKey::media(
        cc_core::CameraId::new_v7(),
        EventId::new_v7(),
        MediaObject::Thumb,
        "01",
    );
    one.put_file(&key, &staged).await?;
    assert_eq!(&one.get_range(&key, 0..4).await?[..], b"only");
    assert!(two.get_range(&key, 0..4).await.is_err());
    assert_eq!(one.list(cc_store::blobs::MEDIA_ROOT).await?.len(), 1);
    assert!(two.list(cc_store::blobs::MEDIA_ROOT).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_node_starts_and_serves_with_nats_and_redis_down() -> TestResult {
    let services = Services {
        redis: Some("redis://127.0.0.1:1".into()),
        nats: Some("nats://127.0.0.1:1".into()),
        namespace: fresh_namespace(),
        ..Services::default()
    };
    let nodes = tokio::time::timeout(Duration::from_secs(10), start_nodes(1, services)).await??;
    let node = &nodes[0];
    let owner = node.signup("down-owner@example.com", "pw").await?;
    let camera = node.pair(&owner, "Gate").await?;
    let mut stream = node
        .http
        .get(format!("{}/v1/events/stream", node.url))
        .bearer_auth(&owner.token)
        .send()
        .await?;
    let upload = event(&camera, b"thumb", b"clip")?;
    assert_eq!(
        node.upload(&camera, &upload).await?.status,
        StatusCode::CREATED
    );
    // Notices still reach this node's own streams.
    read_until(&mut stream, &upload.path_event.to_string()).await?;
    Ok(())
}

/// A Redis of this test's own, so stopping it mid-run disturbs no other test.
struct OwnRedis {
    child: std::process::Child,
    port: u16,
}

impl OwnRedis {
    fn start() -> TestResult<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--port", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .spawn()?;
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(10) {
                return Err("redis-server did not start".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Self { child, port })
    }

    fn stop(&mut self) -> TestResult {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn redis_stopped_mid_run_leaves_every_decision_right() -> TestResult {
    let mut redis = OwnRedis::start()?;
    let services = Services {
        redis: Some(format!("redis://127.0.0.1:{}", redis.port)),
        namespace: fresh_namespace(),
        ..Services::default()
    };
    let nodes = start_nodes(2, services).await?;
    let owner = nodes[0].signup("stop-owner@example.com", "pw").await?;
    let friend = nodes[0].signup("stop-friend@example.com", "pw").await?;
    let stranger = nodes[1].signup("stop-stranger@example.com", "pw").await?;
    let camera = nodes[0].pair(&owner, "Porch").await?;
    nodes[0].share(&owner, &camera, &friend, "viewer").await?;
    let route = format!("/v1/cameras/{}/events", camera.camera_id);
    // Warm every cache tier while Redis is up.
    assert_eq!(
        statuses(&nodes, &route, &friend.token).await?,
        [StatusCode::OK; 2]
    );
    assert_eq!(
        statuses(&nodes, &route, &stranger.token).await?,
        [StatusCode::NOT_FOUND; 2]
    );

    redis.stop()?;
    assert_eq!(
        statuses(&nodes, &route, &friend.token).await?,
        [StatusCode::OK; 2]
    );
    assert_eq!(
        statuses(&nodes, &route, &stranger.token).await?,
        [StatusCode::NOT_FOUND; 2]
    );
    // A revocation made while Redis is gone holds on both nodes at once.
    unshare(&nodes[1], &owner, &camera, "stop-friend@example.com").await?;
    assert_eq!(
        statuses(&nodes, &route, &friend.token).await?,
        [StatusCode::NOT_FOUND; 2]
    );
    assert_eq!(
        statuses(&nodes, &route, &owner.token).await?,
        [StatusCode::OK; 2]
    );
    Ok(())
}
