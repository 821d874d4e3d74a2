//! The storm in the test suite: at least 2,000 simulated cameras across 500 households
//! reconnect at once, with the normal membership cache and with one that lies. The
//! oracle runs in full, live view included; only counts are scaled, never checks.

use std::time::Duration;

use cc_storm::{run, Arrival, Options};

fn options(lying_cache: bool) -> Options {
    Options {
        servers: Vec::new(),
        households: 500,
        cameras_per: 4,
        viewers_per: 1,
        events_per: 1,
        arrival: Arrival::All,
        duration: Duration::from_secs(2),
        lying_cache,
        seed: 7,
        progress: false,
    }
}

async fn storm(lying_cache: bool) -> Result<(), cc_storm::StormError> {
    let report = run(options(lying_cache)).await?;
    println!("{}", report.table());
    assert_eq!(report.cameras, 2000);
    assert_eq!(report.connected, 2000);
    assert_eq!(report.events_acked, 2000);
    assert_eq!(report.leaks, 0, "{:?}", report.leak_details);
    assert_eq!(report.lost_events, 0);
    assert_eq!(report.responses_5xx, 0);
    assert!(
        report.viewer_errors.is_empty(),
        "{:?}",
        report.viewer_errors
    );
    assert!(report.items_checked > 0, "the oracle checked nothing");
    assert!(
        report.live_segments_checked > 0,
        "no live segment reached the oracle"
    );
    assert!(report.passed());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_cameras_reconnect_at_once() -> Result<(), cc_storm::StormError> {
    storm(false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_storm_with_a_lying_membership_cache() -> Result<(), cc_storm::StormError> {
    storm(true).await
}
