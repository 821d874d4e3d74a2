//! Moving a populated SQLite installation to PostgreSQL (and back) loses nothing: the
//! per-table counts and hashes match and the moved store serves the same answers.

use cc_core::api::{EventQuery, Role};
use cc_store::authz::{self, View};
use cc_store::metadata_copy::{self, CopyOptions};
use cc_store::{Store, StoreError};

use crate::harness::{
    events, login_request, offer_transfer, pair, rotate, share, signup, Backend, TestResult,
};

/// Everything a small household makes: accounts, sessions, a rotated camera with a
/// removed member, events, a pending ownership transfer, a quota, retention and
/// access-log entries.
async fn populate(store: &Store) -> TestResult<Vec<String>> {
    let owner = signup(store, "owner@example.org").await?;
    let family = signup(store, "family@example.org").await?;
    let friend = signup(store, "friend@example.org").await?;
    let camera = pair(store, &owner).await?;
    events(store, &camera, 5).await?;
    share(store, &owner, &camera, &family, Role::Viewer).await?;
    share(store, &owner, &camera, &friend, Role::Admin).await?;
    let manage = authz::check::<cc_store::authz::Manage>(store, &owner.session, camera.id).await?;
    store.revoke_member(&manage, friend.id).await?;
    store.set_retention(&manage, Some(30)).await?;
    let rotated = rotate(store, &owner, &camera, &[&owner, &family]).await?;
    events(store, &rotated, 3).await?;
    offer_transfer(store, &owner, &[&camera, &rotated], &family).await?;
    store.set_quota("owner@example.org", Some(1 << 30)).await?;
    let view = authz::check::<View>(store, &family.session, camera.id).await?;
    for object in ["thumb", "clip", "grants"] {
        store.log_access(&view, None, object, "192.0.2.4").await?;
    }
    Ok(vec![owner.token, camera.device_token])
}

fn render(digests: &[metadata_copy::TableDigest]) -> Vec<(String, u64, String)> {
    digests
        .iter()
        .map(|d| (d.table.to_owned(), d.rows, d.sha256.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_to_postgres_and_back_loses_nothing() -> TestResult {
    let source = Backend::sqlite().await?;
    let target = Backend::postgres().await?;
    let back = Backend::sqlite().await?;
    let outcome = check_round_trip(&source.store, &target.store, &back.store).await;
    for backend in [source, target, back] {
        backend.finish().await?;
    }
    outcome
}

async fn check_round_trip(source: &Store, target: &Store, back: &Store) -> TestResult {
    let tokens = populate(source).await?;
    let before = metadata_copy::digests(source).await?;
    for table in [
        "users",
        "cameras",
        "events",
        "grants",
        "access_log",
        "membership_history",
    ] {
        let rows = before
            .iter()
            .find(|d| d.table == table)
            .map_or(0, |d| d.rows);
        assert!(rows > 0, "{table} is populated");
    }

    let mut progress = Vec::new();
    metadata_copy::copy(
        source,
        target,
        CopyOptions {
            batch: 2,
            replace: false,
        },
        |table, rows| progress.push((table.to_owned(), rows)),
    )
    .await?;
    assert!(progress.contains(&("events".to_owned(), 8)));
    assert_eq!(
        render(&metadata_copy::digests(target).await?),
        render(&before)
    );

    // The moved store answers as the old one did.
    let session = authz::authenticate(target, &tokens[0]).await?;
    let device = authz::authenticate_device(target, &tokens[1]).await?;
    assert_eq!(device.epoch(), 2);
    let auth = authz::check::<View>(target, &session, device.camera()).await?;
    let moved = target.list_events(&auth, &EventQuery::default()).await?;
    let old_session = authz::authenticate(source, &tokens[0]).await?;
    let old_auth = authz::check::<View>(source, &old_session, device.camera()).await?;
    let original = source
        .list_events(&old_auth, &EventQuery::default())
        .await?;
    let ids = |page: &cc_core::api::EventPage| -> Vec<_> {
        page.events.iter().map(|e| e.event_id).collect()
    };
    assert_eq!(ids(&moved), ids(&original));
    let report = target.verify_access_log().await?;
    assert_eq!((report.entries, report.first_broken_seq), (3, None));
    target
        .login(
            &login_request(target, "family@example.org").await?,
            "192.0.2.5",
            chrono::Duration::hours(1),
        )
        .await?;
    assert_eq!(target.verify_access_log().await?.first_broken_seq, None);

    // A target that holds data is refused unless replacing is asked for.
    let refused = metadata_copy::copy(source, target, CopyOptions::default(), |_, _| {}).await;
    assert!(matches!(refused, Err(StoreError::Conflict(_))));

    metadata_copy::copy(target, back, CopyOptions::default(), |_, _| {}).await?;
    let after = render(&metadata_copy::digests(back).await?);
    let moved_again = render(&metadata_copy::digests(target).await?);
    assert_eq!(after, moved_again);
    metadata_copy::copy(
        source,
        back,
        CopyOptions {
            batch: 1000,
            replace: true,
        },
        |_, _| {},
    )
    .await?;
    assert_eq!(
        render(&metadata_copy::digests(back).await?),
        render(&before)
    );
    Ok(())
}
