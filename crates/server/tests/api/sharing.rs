//! Sharing and revocation: a revoked member loses every route at once and cannot read
//! what comes after the rotation; remaining members notice nothing. Plus the access
//! log's hash chain, the breach report, step-up and two-factor login.

use cc_core::api::{AccessEntry, EventInfo};
use reqwest::{Method, StatusCode};

use crate::common::*;

#[tokio::test]
async fn revoke_then_rotate_locks_out_the_removed_member_only() -> TestResult {
    let server = start().await?;
    let owner = server.signup("owner@example.com", "pw").await?;
    let friend = server.signup("friend@example.com", "pw").await?;
    let family = server.signup("family@example.com", "pw").await?;
    let camera = server.pair(&owner, "Nursery").await?;
    server.share(&owner, &camera, &friend, "viewer").await?;
    server.share(&owner, &camera, &family, "viewer").await?;
    let before = event(&camera, b"thumb-before", b"clip-before")?;
    assert_eq!(
        server.upload(&camera, &before).await?.status,
        StatusCode::CREATED
    );
    let cam = camera.camera_id;
    let path = format!("/v1/cameras/{cam}/events/{}/clip", before.path_event);

    // The friend reads what was shared.
    let key = server
        .content_key(&friend, cam, 1)
        .await?
        .ok_or("friend has no grant")?;
    let clip = server
        .send(Method::GET, &path, Some(&friend.token), None)
        .await?;
    assert_eq!(key.decrypt(&clip.body)?, b"clip-before");

    // Revoke: at once, every route is 404 for the friend.
    server.revoke(&owner, cam, "friend@example.com").await?;
    for route in [
        format!("/v1/cameras/{cam}"),
        format!("/v1/cameras/{cam}/events"),
        format!("/v1/cameras/{cam}/grants"),
        format!("/v1/cameras/{cam}/certificates"),
        format!("/v1/cameras/{cam}/shares"),
        format!("/v1/cameras/{cam}/events/{}", before.path_event),
        path.clone(),
    ] {
        let sent = server
            .send(Method::GET, &route, Some(&friend.token), None)
            .await?;
        assert_eq!(sent.status, StatusCode::NOT_FOUND, "{route}");
    }
    let info: cc_core::api::CameraInfo = server
        .send(
            Method::GET,
            &format!("/v1/cameras/{cam}"),
            Some(&owner.token),
            None,
        )
        .await?
        .json()?;
    assert!(info.rotation_needed);

    // Rotation: the camera now encrypts to a key the friend never gets.
    let camera = server.rotate(&owner, &camera, &[&owner, &family]).await?;
    let stale = event(
        &crate::common::Camera {
            epoch: 1,
            ..camera.clone_for_test()
        },
        b"t",
        b"c",
    )?;
    assert_eq!(
        server.upload(&camera, &stale).await?.status,
        StatusCode::CONFLICT,
        "old epoch refused"
    );
    let after = event(&camera, b"thumb-after", b"clip-after")?;
    assert_eq!(
        server.upload(&camera, &after).await?.status,
        StatusCode::CREATED
    );
    // Even holding the new ciphertext (obtained elsewhere), the friend's old key fails.
    assert!(key.decrypt(&after.clip).is_err());
    assert!(server.content_key(&friend, cam, 2).await?.is_none());
    // Remaining members read old and new events.
    for member in [&owner, &family] {
        for (e, plain, epoch) in [
            (&before, &b"clip-before"[..], 1),
            (&after, &b"clip-after"[..], 2),
        ] {
            let key = server
                .content_key(member, cam, epoch)
                .await?
                .ok_or("missing grant")?;
            let sent = server
                .send(
                    Method::GET,
                    &format!("/v1/cameras/{cam}/events/{}/clip", e.path_event),
                    Some(&member.token),
                    None,
                )
                .await?;
            assert_eq!(key.decrypt(&sent.body)?, plain);
        }
    }
    Ok(())
}

#[tokio::test]
async fn viewers_cannot_manage_and_nobody_can_invite_to_anothers_camera() -> TestResult {
    let server = start().await?;
    let owner = server.signup("o2@example.com", "pw").await?;
    let viewer = server.signup("v2@example.com", "pw").await?;
    let outsider = server.signup("x2@example.com", "pw").await?;
    let camera = server.pair(&owner, "Shed").await?;
    server.share(&owner, &camera, &viewer, "viewer").await?;
    let cam = camera.camera_id;
    let outsider_id = server.lookup(&owner, "x2@example.com").await?;
    let invite = serde_json::json!({"user_id": outsider_id, "role": "viewer", "grants": []});
    let by_viewer = server
        .send(
            Method::POST,
            &format!("/v1/cameras/{cam}/shares"),
            Some(&viewer.token),
            Some(invite.clone()),
        )
        .await?;
    assert_eq!(by_viewer.status, StatusCode::FORBIDDEN);
    let by_outsider = server
        .send(
            Method::POST,
            &format!("/v1/cameras/{cam}/shares"),
            Some(&outsider.token),
            Some(invite),
        )
        .await?;
    assert_eq!(by_outsider.status, StatusCode::NOT_FOUND);
    let remove = server
        .send(
            Method::DELETE,
            &format!("/v1/cameras/{cam}"),
            Some(&viewer.token),
            None,
        )
        .await?;
    assert_eq!(remove.status, StatusCode::FORBIDDEN);
    let log = server
        .send(
            Method::GET,
            &format!("/v1/cameras/{cam}/access-log"),
            Some(&viewer.token),
            None,
        )
        .await?;
    assert_eq!(log.status, StatusCode::FORBIDDEN);
    // An outsider cannot accept an invitation that was never made.
    let accept = server
        .send(
            Method::POST,
            &format!("/v1/invitations/{cam}/accept"),
            Some(&outsider.token),
            None,
        )
        .await?;
    assert_eq!(accept.status, StatusCode::NOT_FOUND);
    Ok(())
}

#[tokio::test]
async fn guest_shares_end_by_themselves() -> TestResult {
    let server = start().await?;
    let owner = server.signup("o3@example.com", "pw").await?;
    let guest = server.signup("g3@example.com", "pw").await?;
    let camera = server.pair(&owner, "Gate").await?;
    let guest_id = server.lookup(&owner, "g3@example.com").await?;
    let grant = guest
        .keys
        .recipient()
        .encrypt(camera.content.to_secret_string().as_bytes())?;
    let expires = chrono::Utc::now() + chrono::Duration::milliseconds(700);
    let invite = serde_json::json!({"user_id": guest_id, "role": "viewer", "expires_at": expires,
        "grants": [{"epoch": 1, "grant": cc_core::b64::encode(&grant)}]});
    let cam = camera.camera_id;
    assert_eq!(
        server
            .send(
                Method::POST,
                &format!("/v1/cameras/{cam}/shares"),
                Some(&owner.token),
                Some(invite)
            )
            .await?
            .status,
        StatusCode::CREATED
    );
    assert_eq!(
        server
            .send(
                Method::POST,
                &format!("/v1/invitations/{cam}/accept"),
                Some(&guest.token),
                None
            )
            .await?
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        server
            .send(
                Method::GET,
                &format!("/v1/cameras/{cam}"),
                Some(&guest.token),
                None
            )
            .await?
            .status,
        StatusCode::OK
    );
    tokio::time::sleep(std::time::Duration::from_millis(900)).await;
    assert_eq!(
        server
            .send(
                Method::GET,
                &format!("/v1/cameras/{cam}"),
                Some(&guest.token),
                None
            )
            .await?
            .status,
        StatusCode::NOT_FOUND
    );
    Ok(())
}

#[tokio::test]
async fn access_log_shows_who_saw_what_and_step_up_guards_video() -> TestResult {
    let server = start().await?;
    let owner = server.signup("o4@example.com", "pw-o4").await?;
    let friend = server.signup("f4@example.com", "pw-f4").await?;
    let camera = server.pair(&owner, "Door").await?;
    server.share(&owner, &camera, &friend, "viewer").await?;
    let e = event(&camera, b"t", b"c")?;
    assert_eq!(
        server.upload(&camera, &e).await?.status,
        StatusCode::CREATED
    );
    let cam = camera.camera_id;
    let clip = format!("/v1/cameras/{cam}/events/{}/clip", e.path_event);
    assert!(server.content_key(&friend, cam, 1).await?.is_some());
    assert_eq!(
        server
            .send(Method::GET, &clip, Some(&friend.token), None)
            .await?
            .status,
        StatusCode::OK
    );

    let log: Vec<AccessEntry> = server
        .send(
            Method::GET,
            &format!("/v1/cameras/{cam}/access-log"),
            Some(&owner.token),
            None,
        )
        .await?
        .json()?;
    let friend_reads: Vec<_> = log
        .iter()
        .filter(|a| a.email.as_deref() == Some("f4@example.com"))
        .collect();
    assert!(friend_reads
        .iter()
        .any(|a| a.object == "clip" && a.event_id == Some(e.path_event)));
    assert!(friend_reads.iter().any(|a| a.object == "grants"));

    // The friend's account turns on step-up: video needs a fresh check on this session.
    let on = server
        .send(
            Method::PUT,
            "/v1/me/security",
            Some(&friend.token),
            Some(serde_json::json!({"require_step_up": true})),
        )
        .await?;
    assert_eq!(on.status, StatusCode::OK);
    let blocked = server
        .send(Method::GET, &clip, Some(&friend.token), None)
        .await?;
    assert_eq!(blocked.status, StatusCode::FORBIDDEN);
    assert_eq!(blocked.problem()?.code, "step_up_required");
    let thumb = format!("/v1/cameras/{cam}/events/{}/thumb", e.path_event);
    assert_eq!(
        server
            .send(Method::GET, &thumb, Some(&friend.token), None)
            .await?
            .status,
        StatusCode::OK
    );
    let wrong = server
        .send(
            Method::POST,
            "/v1/sessions/current/step-up",
            Some(&friend.token),
            Some(serde_json::json!({"auth_key": cc_core::b64::encode([0u8; 32])})),
        )
        .await?;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let auth_key = server.auth_key("f4@example.com", "pw-f4").await?;
    let ok = server
        .send(
            Method::POST,
            "/v1/sessions/current/step-up",
            Some(&friend.token),
            Some(serde_json::json!({"auth_key": cc_core::b64::encode(auth_key)})),
        )
        .await?;
    assert_eq!(ok.status, StatusCode::NO_CONTENT);
    assert_eq!(
        server
            .send(Method::GET, &clip, Some(&friend.token), None)
            .await?
            .status,
        StatusCode::OK
    );
    // A new session of the same account starts without step-up.
    let fresh = server.login("f4@example.com", "pw-f4").await?.token;
    assert_eq!(
        server
            .send(Method::GET, &clip, Some(&fresh), None)
            .await?
            .status,
        StatusCode::FORBIDDEN
    );
    Ok(())
}

#[tokio::test]
async fn two_factor_login_and_session_list() -> TestResult {
    let server = start().await?;
    let user = server.signup("t5@example.com", "pw-t5").await?;
    let setup: cc_core::api::TotpSetup = server
        .send(Method::POST, "/v1/me/2fa/setup", Some(&user.token), None)
        .await?
        .json()?;
    let secret = data_encoding::BASE32_NOPAD.decode(setup.secret.as_bytes())?;
    let totp = totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 1, 30, secret)?;
    let bad = server
        .send(
            Method::POST,
            "/v1/me/2fa/enable",
            Some(&user.token),
            Some(serde_json::json!({"code": "000000x"})),
        )
        .await?;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let codes: cc_core::api::RecoveryCodes = server
        .send(
            Method::POST,
            "/v1/me/2fa/enable",
            Some(&user.token),
            Some(serde_json::json!({"code": totp.generate_current()?})),
        )
        .await?
        .json()?;
    assert_eq!(codes.codes.len(), 10);

    let auth_key = server.auth_key("t5@example.com", "pw-t5").await?;
    let login = |totp: Option<String>| {
        let mut body = serde_json::json!({"email": "t5@example.com", "auth_key": cc_core::b64::encode(&auth_key)});
        if let Some(t) = totp {
            body["totp"] = serde_json::Value::String(t);
        }
        server.send(Method::POST, "/v1/sessions", None, Some(body))
    };
    let without = login(None).await?;
    assert_eq!(without.status, StatusCode::UNAUTHORIZED);
    assert_eq!(without.problem()?.code, "second_factor_required");
    assert_eq!(
        login(Some(totp.generate_current()?)).await?.status,
        StatusCode::OK
    );
    assert_eq!(
        login(Some(codes.codes[0].clone())).await?.status,
        StatusCode::OK
    );
    assert_eq!(
        login(Some(codes.codes[0].clone())).await?.status,
        StatusCode::UNAUTHORIZED,
        "recovery codes are single-use"
    );

    let sessions: Vec<cc_core::api::SessionInfo> = server
        .send(Method::GET, "/v1/sessions", Some(&user.token), None)
        .await?
        .json()?;
    assert_eq!(sessions.len(), 3);
    assert_eq!(sessions.iter().filter(|s| s.current).count(), 1);
    let other = sessions
        .iter()
        .find(|s| !s.current)
        .ok_or("no other session")?;
    let gone = server
        .send(
            Method::DELETE,
            &format!("/v1/sessions/{}", other.session_id),
            Some(&user.token),
            None,
        )
        .await?;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let after: Vec<cc_core::api::SessionInfo> = server
        .send(Method::GET, "/v1/sessions", Some(&user.token), None)
        .await?
        .json()?;
    assert_eq!(after.len(), 2);
    Ok(())
}

#[tokio::test]
async fn password_guessing_is_throttled() -> TestResult {
    let server = start().await?;
    server.signup("g6@example.com", "pw").await?;
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let body = serde_json::json!({"email": "g6@example.com", "auth_key": cc_core::b64::encode([1u8; 32])});
        let sent = server
            .send(Method::POST, "/v1/sessions", None, Some(body))
            .await?;
        statuses.push(sent.status);
    }
    assert_eq!(statuses[0], StatusCode::UNAUTHORIZED);
    assert_eq!(
        *statuses.last().ok_or("no attempts")?,
        StatusCode::TOO_MANY_REQUESTS
    );
    Ok(())
}

#[tokio::test]
async fn events_seen_by_stream_subscribers_respect_membership() -> TestResult {
    let server = start().await?;
    let a = server.signup("sa@example.com", "pw").await?;
    let b = server.signup("sb@example.com", "pw").await?;
    let a_cam = server.pair(&a, "A").await?;
    let mut stream = server
        .http
        .get(format!("{}/v1/events/stream", server.url))
        .bearer_auth(&b.token)
        .send()
        .await?;
    assert_eq!(stream.status(), StatusCode::OK);
    // A camera B claims while the stream is open is followed too.
    let b_cam = server.pair(&b, "B").await?;
    let a_event = event(&a_cam, b"t", b"c")?;
    let b_event = event(&b_cam, b"t", b"c")?;
    assert_eq!(
        server.upload(&a_cam, &a_event).await?.status,
        StatusCode::CREATED
    );
    assert_eq!(
        server.upload(&b_cam, &b_event).await?.status,
        StatusCode::CREATED
    );
    let mut text = String::new();
    while !text.contains(&b_event.path_event.to_string()) {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), stream.chunk())
            .await??
            .ok_or("stream ended")?;
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        !text.contains(&a_event.path_event.to_string()),
        "B's stream carried A's event"
    );
    let data = text
        .lines()
        .find_map(|l| l.strip_prefix("data:"))
        .ok_or("no data line")?;
    let info: EventInfo = serde_json::from_str(data.trim())?;
    assert_eq!(info.camera_id, b_cam.camera_id);
    Ok(())
}

#[tokio::test]
async fn rotation_ends_pending_invitations_that_hold_only_old_keys() -> TestResult {
    let server = start().await?;
    let owner = server.signup("p7@example.com", "pw").await?;
    let invitee = server.signup("i7@example.com", "pw").await?;
    let camera = server.pair(&owner, "Cam").await?;
    let invitee_id = server.lookup(&owner, "i7@example.com").await?;
    let grant = invitee
        .keys
        .recipient()
        .encrypt(camera.content.to_secret_string().as_bytes())?;
    let invite = serde_json::json!({"user_id": invitee_id, "role": "viewer",
        "grants": [{"epoch": 1, "grant": cc_core::b64::encode(&grant)}]});
    let cam = camera.camera_id;
    let sent = server
        .send(
            Method::POST,
            &format!("/v1/cameras/{cam}/shares"),
            Some(&owner.token),
            Some(invite),
        )
        .await?;
    assert_eq!(sent.status, StatusCode::CREATED);
    server.rotate(&owner, &camera, &[&owner]).await?;
    let pending: Vec<cc_core::api::Invitation> = server
        .send(Method::GET, "/v1/invitations", Some(&invitee.token), None)
        .await?
        .json()?;
    assert!(pending.is_empty());
    let accept = server
        .send(
            Method::POST,
            &format!("/v1/invitations/{cam}/accept"),
            Some(&invitee.token),
            None,
        )
        .await?;
    assert_eq!(accept.status, StatusCode::NOT_FOUND);
    Ok(())
}
