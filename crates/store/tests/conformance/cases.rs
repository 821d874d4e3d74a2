//! Each case takes a fresh, migrated store and must pass on every backend.

use cc_core::api::{AccessQuery, EventQuery, Role};
use cc_store::authz::{self, Manage, Own, View};
use cc_store::blobs::MediaObject;
use cc_store::events::Inserted;
use cc_store::{Store, StoreError};

use crate::harness::{
    events, login_request, manifest, pair, rotate, share, signup, signup_request, TestResult,
};

fn is<T>(result: Result<T, StoreError>, want: fn(&StoreError) -> bool) -> bool {
    matches!(result, Err(ref e) if want(e))
}

pub async fn schema_matches_the_copy_list(store: Store) -> TestResult {
    cc_store::metadata_copy::check_schema(&store).await?;
    Ok(())
}

pub async fn accounts_and_sessions(store: Store) -> TestResult {
    let alice = signup(&store, "Alice@Example.org").await?;
    let (again, _) = signup_request("alice@example.org")?;
    assert!(is(store.create_user(&again).await, |e| matches!(
        e,
        StoreError::Conflict(_)
    )));
    assert!(store.prelogin("nobody@example.org").await?.is_none());
    let me = store.me(&alice.session).await?;
    assert_eq!(
        (me.user_id, me.email.as_str()),
        (alice.id, "alice@example.org")
    );

    let mut wrong = login_request(&store, "alice@example.org").await?;
    wrong.auth_key = vec![7; 32];
    let ttl = chrono::Duration::hours(1);
    assert!(is(store.login(&wrong, "192.0.2.9", ttl).await, |e| {
        matches!(e, StoreError::BadCredentials)
    }));

    let second = store
        .login(
            &login_request(&store, "alice@example.org").await?,
            "192.0.2.2",
            ttl,
        )
        .await?;
    let listed = store.sessions(&alice.session).await?;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed.iter().filter(|s| s.current).count(), 1);
    store
        .revoke_session(&alice.session, second.session_id)
        .await?;
    assert!(is(authz::authenticate(&store, &second.token).await, |e| {
        matches!(e, StoreError::Unauthenticated)
    }));
    assert!(is(
        store
            .revoke_session(&alice.session, second.session_id)
            .await,
        |e| matches!(e, StoreError::NotFound)
    ));
    assert!(is(authz::authenticate(&store, "ccu_forged").await, |e| {
        matches!(e, StoreError::Unauthenticated)
    }));

    // Step-up: required, then satisfied by the password-derived key.
    store.set_require_step_up(&alice.session, true).await?;
    let camera = pair(&store, &alice).await?;
    let view = authz::check::<View>(&store, &alice.session, camera.id).await?;
    let event = events(&store, &camera, 1).await?[0];
    let step_up_needed = async || -> TestResult<bool> {
        Ok(store
            .media_location(&view, event, MediaObject::Clip)
            .await?
            .step_up_needed)
    };
    assert!(step_up_needed().await?);
    let key = login_request(&store, "alice@example.org").await?.auth_key;
    assert!(is(
        store.step_up(&alice.session, Some(&[0; 32]), None).await,
        |e| matches!(e, StoreError::BadCredentials)
    ));
    store.step_up(&alice.session, Some(&key), None).await?;
    assert!(!step_up_needed().await?);
    assert!(
        store
            .security_settings(&alice.session)
            .await?
            .require_step_up
    );

    authz::revoke_all(&store, &alice.session).await?;
    assert!(is(authz::authenticate(&store, &alice.token).await, |e| {
        matches!(e, StoreError::Unauthenticated)
    }));
    Ok(())
}

pub async fn claims_and_pairing(store: Store) -> TestResult {
    let owner = signup(&store, "owner@example.org").await?;
    let camera = pair(&store, &owner).await?;
    let auth = authz::check::<View>(&store, &owner.session, camera.id).await?;
    let info = store.camera_info(&auth).await?;
    assert_eq!(
        (info.camera_id, info.epoch, info.role),
        (camera.id, 1, Role::Owner)
    );
    assert!(!info.rotation_needed);
    assert_eq!(store.grants(&auth).await?.len(), 1);
    assert!(store.open_claims(&owner.session).await?.is_empty());
    assert_eq!(
        authz::authenticate_device(&store, &camera.device_token)
            .await?
            .camera(),
        camera.id
    );
    assert!(is(
        authz::authenticate_device(&store, "ccd_forged").await,
        |e| matches!(e, StoreError::Unauthenticated)
    ));

    let secret = "ab".repeat(32);
    store.create_claim(&owner.session, &secret).await?;
    assert!(is(store.create_claim(&owner.session, &secret).await, |e| {
        matches!(e, StoreError::Conflict(_))
    }));
    assert!(is(store.create_claim(&owner.session, "xyz").await, |e| {
        matches!(e, StoreError::Invalid(_))
    }));
    let open = store.open_claims(&owner.session).await?;
    assert_eq!(open.len(), 1);
    store.delete_claim(&owner.session, open[0].claim_id).await?;
    assert!(is(
        store.delete_claim(&owner.session, open[0].claim_id).await,
        |e| matches!(e, StoreError::NotFound)
    ));
    Ok(())
}

pub async fn events_are_idempotent_and_paged(store: Store) -> TestResult {
    let owner = signup(&store, "owner@example.org").await?;
    let camera = pair(&store, &owner).await?;
    let ids = events(&store, &camera, 7).await?;

    let (m, s) = manifest(&camera, chrono::Duration::seconds(5))?;
    assert_eq!(
        store.insert_event(&camera.device, &m, &s).await?,
        Inserted::New
    );
    assert_eq!(
        store.insert_event(&camera.device, &m, &s).await?,
        Inserted::Duplicate
    );
    let (mut other, _) = manifest(&camera, chrono::Duration::seconds(9))?;
    other.event_id = m.event_id;
    let other_signed = cc_core::manifest::SignedManifest::sign(&other, &camera.signing);
    assert!(is(
        store
            .insert_event(&camera.device, &other, &other_signed)
            .await,
        |e| matches!(e, StoreError::Conflict(_))
    ));
    let stranger = pair(&store, &owner).await?;
    assert!(is(
        store.insert_event(&stranger.device, &m, &s).await,
        |e| matches!(e, StoreError::Invalid(_))
    ));

    let auth = authz::check::<View>(&store, &owner.session, camera.id).await?;
    let mut seen = Vec::new();
    let mut query = EventQuery {
        limit: Some(3),
        ..EventQuery::default()
    };
    loop {
        let page = store.list_events(&auth, &query).await?;
        assert!(page.events.len() <= 3);
        seen.extend(page.events.iter().map(|e| e.event_id));
        match page.next_cursor {
            Some(cursor) => query.before = Some(cursor),
            None => break,
        }
    }
    let mut expected = ids.clone();
    expected.push(m.event_id);
    expected.reverse();
    assert_eq!(seen, expected, "every event once, newest first");

    let recent = store
        .list_events(
            &auth,
            &EventQuery {
                since: Some(chrono::Utc::now() - chrono::Duration::seconds(150)),
                ..EventQuery::default()
            },
        )
        .await?;
    assert_eq!(recent.events.len(), 3);
    assert!(is(
        store
            .list_events(
                &auth,
                &EventQuery {
                    before: Some("bm9wZQ".into()),
                    ..EventQuery::default()
                },
            )
            .await,
        |e| matches!(e, StoreError::Invalid(_))
    ));

    let info = store.event(&auth, m.event_id).await?;
    assert_eq!(
        (info.thumb_size, info.clip_size, info.epoch),
        (m.thumb_size, m.clip_size, 1)
    );
    assert_eq!(info.manifest.body, s.body);
    let clip = store
        .media_location(&auth, m.event_id, MediaObject::Clip)
        .await?;
    assert!(clip.key.as_str().contains(&m.event_id.to_string()));
    assert_eq!((clip.size, clip.step_up_needed), (m.clip_size, false));
    let info = store.camera_info(&auth).await?;
    assert!(info.online && info.last_event_at.is_some());
    Ok(())
}

pub async fn the_door_denies(store: Store) -> TestResult {
    let owner = signup(&store, "owner@example.org").await?;
    let viewer = signup(&store, "viewer@example.org").await?;
    let admin = signup(&store, "admin@example.org").await?;
    let stranger = signup(&store, "stranger@example.org").await?;
    let camera = pair(&store, &owner).await?;
    let other = pair(&store, &stranger).await?;
    let theirs = events(&store, &other, 1).await?;
    share(&store, &owner, &camera, &viewer, Role::Viewer).await?;
    share(&store, &owner, &camera, &admin, Role::Admin).await?;

    let not_found = |e: &StoreError| matches!(e, StoreError::NotFound);
    let forbidden = |e: &StoreError| matches!(e, StoreError::Forbidden);
    assert!(is(
        authz::check::<View>(&store, &stranger.session, camera.id).await,
        not_found
    ));
    assert!(is(
        authz::check::<View>(&store, &owner.session, cc_core::CameraId::new_v7()).await,
        not_found
    ));
    authz::check::<View>(&store, &viewer.session, camera.id).await?;
    assert!(is(
        authz::check::<Manage>(&store, &viewer.session, camera.id).await,
        forbidden
    ));
    authz::check::<Manage>(&store, &admin.session, camera.id).await?;
    assert!(is(
        authz::check::<Own>(&store, &admin.session, camera.id).await,
        forbidden
    ));
    authz::check::<Own>(&store, &owner.session, camera.id).await?;

    // Another camera's event is not reachable through a proof for this camera.
    let mine = authz::check::<View>(&store, &viewer.session, camera.id).await?;
    assert!(is(store.event(&mine, theirs[0]).await, not_found));

    let visible: Vec<_> = authz::visible_cameras(&store, &viewer.session)
        .await?
        .iter()
        .map(|a| (a.camera(), a.role()))
        .collect();
    assert_eq!(visible, vec![(camera.id, Role::Viewer)]);
    assert!(authz::visible_cameras(&store, &stranger.session)
        .await?
        .iter()
        .all(|a| a.camera() == other.id));
    Ok(())
}

pub async fn shares_revocation_and_rotation(store: Store) -> TestResult {
    let owner = signup(&store, "owner@example.org").await?;
    let friend = signup(&store, "friend@example.org").await?;
    let family = signup(&store, "family@example.org").await?;
    let camera = pair(&store, &owner).await?;
    share(&store, &owner, &camera, &family, Role::Viewer).await?;
    share(&store, &owner, &camera, &friend, Role::Viewer).await?;
    let auth = authz::check::<View>(&store, &owner.session, camera.id).await?;
    assert_eq!(store.shares(&auth).await?.len(), 3);
    assert!(store.invitations(&friend.session).await?.is_empty());

    let manage = authz::check::<Manage>(&store, &owner.session, camera.id).await?;
    assert!(is(store.revoke_member(&manage, owner.id).await, |e| {
        matches!(e, StoreError::Invalid(_))
    }));
    store.revoke_member(&manage, friend.id).await?;
    assert!(is(
        authz::check::<View>(&store, &friend.session, camera.id).await,
        |e| matches!(e, StoreError::NotFound)
    ));
    assert!(store.camera_info(&auth).await?.rotation_needed);

    // A rotation must cover exactly the remaining members.
    assert!(rotate(&store, &owner, &camera, &[&owner]).await.is_err());
    let rotated = rotate(&store, &owner, &camera, &[&owner, &family]).await?;
    assert_eq!(rotated.device.epoch(), 2);
    let auth = authz::check::<View>(&store, &owner.session, camera.id).await?;
    let info = store.camera_info(&auth).await?;
    assert_eq!(info.epoch, 2);
    assert!(!info.rotation_needed);
    assert_eq!(store.certificates(&auth).await?.len(), 2);
    assert_eq!(store.grants(&auth).await?.len(), 2);
    let family_view = authz::check::<View>(&store, &family.session, camera.id).await?;
    let epochs: Vec<u32> = store
        .grants(&family_view)
        .await?
        .iter()
        .map(|g| g.epoch)
        .collect();
    assert_eq!(epochs, [1, 2]);
    assert_eq!(
        store.current_certificate(&rotated.device).await?.body,
        store.certificates(&auth).await?[1].body
    );
    Ok(())
}

pub async fn access_log_chain(store: Store) -> TestResult {
    let owner = signup(&store, "owner@example.org").await?;
    let viewer = signup(&store, "viewer@example.org").await?;
    let camera = pair(&store, &owner).await?;
    let ids = events(&store, &camera, 2).await?;
    share(&store, &owner, &camera, &viewer, Role::Viewer).await?;
    let view = authz::check::<View>(&store, &viewer.session, camera.id).await?;
    store
        .log_access(&view, Some(ids[0]), "clip", "192.0.2.7")
        .await?;
    store.log_access(&view, None, "grants", "192.0.2.7").await?;
    // Appends from many tasks at once still make one unbroken chain.
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = store.clone();
        let session = owner.session.clone();
        let (camera, event) = (camera.id, ids[i % 2]);
        tasks.push(tokio::spawn(async move {
            let auth = authz::check::<View>(&store, &session, camera).await?;
            store.log_access(&auth, Some(event), "thumb", "::1").await
        }));
    }
    for task in tasks {
        task.await??;
    }
    let report = store.verify_access_log().await?;
    assert_eq!((report.entries, report.first_broken_seq), (18, None));

    let manage = authz::check::<Manage>(&store, &owner.session, camera.id).await?;
    let entries = store.access_log(&manage, &AccessQuery::default()).await?;
    assert_eq!(entries.len(), 18);
    assert_eq!(entries[0].email.as_deref(), Some("viewer@example.org"));
    assert_eq!(entries[0].event_id, Some(ids[0]));
    assert!(entries.windows(2).all(|w| w[0].seq < w[1].seq));

    let now = chrono::Utc::now();
    let window = (
        now - chrono::Duration::hours(1),
        now + chrono::Duration::hours(1),
    );
    assert!(store.breach_report(window.0, window.1).await?.is_empty());
    let intruder = signup(&store, "intruder@example.org").await?;
    store
        .record_access_unchecked(intruder.id, intruder.session.id(), camera.id, None, "clip")
        .await?;
    let breaches = store.breach_report(window.0, window.1).await?;
    assert_eq!(breaches.len(), 1);
    assert_eq!(breaches[0].owner_email, "owner@example.org");
    assert_eq!(breaches[0].entry.user_id, intruder.id);
    assert_eq!(store.verify_access_log().await?.entries, 19);
    Ok(())
}

pub async fn retention_and_quota(store: Store) -> TestResult {
    let owner = signup(&store, "owner@example.org").await?;
    let camera = pair(&store, &owner).await?;
    let (old, old_signed) = manifest(&camera, chrono::Duration::days(10))?;
    store
        .insert_event(&camera.device, &old, &old_signed)
        .await?;
    let fresh = events(&store, &camera, 2).await?;
    let manage = authz::check::<Manage>(&store, &owner.session, camera.id).await?;
    assert!(is(store.set_retention(&manage, Some(0)).await, |e| {
        matches!(e, StoreError::Invalid(_))
    }));
    assert_eq!(store.sweep_retention().await?, 0, "no retention set yet");
    store.set_retention(&manage, Some(7)).await?;
    assert_eq!(store.sweep_retention().await?, 1);
    let view = authz::check::<View>(&store, &owner.session, camera.id).await?;
    let left = store
        .list_events(&view, &EventQuery::default())
        .await?
        .events;
    let ids: Vec<_> = left.iter().map(|e| e.event_id).collect();
    assert_eq!(ids, [fresh[1], fresh[0]]);

    let used: u64 = left.iter().map(|e| e.thumb_size + e.clip_size).sum();
    store.check_quota(&camera.device, u64::MAX).await?;
    store
        .set_quota("OWNER@example.org", Some(used + 10))
        .await?;
    store.check_quota(&camera.device, 10).await?;
    assert!(is(store.check_quota(&camera.device, 11).await, |e| {
        matches!(e, StoreError::QuotaExceeded)
    }));
    store.set_quota("owner@example.org", None).await?;
    store.check_quota(&camera.device, 1 << 40).await?;
    assert!(is(
        store.set_quota("nobody@example.org", Some(1)).await,
        |e| { matches!(e, StoreError::NotFound) }
    ));
    Ok(())
}

pub async fn removing_a_camera_removes_its_data(store: Store) -> TestResult {
    let owner = signup(&store, "owner@example.org").await?;
    let viewer = signup(&store, "viewer@example.org").await?;
    let camera = pair(&store, &owner).await?;
    events(&store, &camera, 3).await?;
    share(&store, &owner, &camera, &viewer, Role::Viewer).await?;
    let own = authz::check::<Own>(&store, &owner.session, camera.id).await?;
    store.remove_camera(&own).await?;
    for user in [&owner, &viewer] {
        assert!(is(
            authz::check::<View>(&store, &user.session, camera.id).await,
            |e| matches!(e, StoreError::NotFound)
        ));
    }
    assert!(is(store.device_again(&camera.device).await, |e| {
        matches!(e, StoreError::Unauthenticated)
    }));
    Ok(())
}

/// The first node's secret stands: every node's decoy answers for unknown emails match.
pub async fn every_node_gets_the_same_instance_secret(store: Store) -> TestResult {
    let first = store.instance_secret([1; 32]).await?;
    assert_eq!(first, [1; 32]);
    assert_eq!(store.instance_secret([2; 32]).await?, first);
    Ok(())
}
