//! Moving an embedded installation to PostgreSQL with `admin migrate`, then serving it
//! from there: the same user, the same camera, the same events, still verified.

use std::process::Command;
use std::time::Duration;

use cc_store::testing::TempPostgres;

use crate::harness::*;

fn event_ids(user: &User) -> TestResult<Vec<String>> {
    Ok(user
        .json(&["events", "list", "--limit", "100"])?
        .as_array()
        .ok_or("not a list")?
        .iter()
        .filter(|e| e["verified"] == true)
        .filter_map(|e| e["event_id"].as_str().map(str::to_owned))
        .collect())
}

#[test]
fn an_embedded_installation_moves_to_postgres_with_nothing_lost() -> TestResult {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let db = runtime.block_on(TempPostgres::create())?;
    let outcome = move_and_serve(db.url());
    runtime.block_on(db.drop_database())?;
    outcome
}

fn move_and_serve(postgres: &str) -> TestResult {
    let root = tempfile::tempdir()?;
    let data = root.path().join("data");
    let server = Server::start_in(root.path(), &data)?;
    let alice = User::signup(root.path(), &server, "grace@example.com")?;
    let (camera, acked) = alice.pair_camera("Hall", &root.path().join("hall"), 3)?;
    let before = event_ids(&alice)?;
    assert_eq!(before.len(), 3);
    drop(server);

    let migrate = |extra: &[&str]| {
        Command::new(bin())
            .args(["admin", "migrate", "--from"])
            .arg(&data)
            .args(["--to", postgres])
            .args(extra)
            .output()
    };
    let moved = migrate(&[])?;
    let report = String::from_utf8(moved.stdout)?;
    assert!(
        moved.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&moved.stderr)
    );
    for table in ["users", "cameras", "events", "grants", "access_log"] {
        let line = report
            .lines()
            .find(|l| l.starts_with(&format!("{table} ")))
            .ok_or_else(|| format!("no line for {table} in {report}"))?;
        assert!(line.ends_with(" ok"), "{line}");
    }
    assert!(report.contains("Metadata verified"), "{report}");
    let again = migrate(&[])?;
    assert!(
        !again.status.success(),
        "a non-empty target was overwritten"
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("--replace-target"));
    let verified = Command::new(bin())
        .args(["admin", "audit-verify", "--metadata-url", postgres])
        .output()?;
    assert!(
        String::from_utf8_lossy(&verified.stdout).contains("hash chain verified"),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );

    // A new node on PostgreSQL, its media where the embedded server left it.
    let blobs = format!("file://{}", data.canonicalize()?.join("blobs").display());
    let node = Server::start_with(
        root.path(),
        &root.path().join("node"),
        &["--metadata-url", postgres, "--blobs-url", &blobs],
    )?;
    let alice = User {
        server: node.url.clone(),
        ..alice
    };
    assert_eq!(event_ids(&alice)?, before);
    let out = root.path().join("out");
    alice.ok(&["events", "get", &acked[0], "--out", &out.to_string_lossy()])?;
    assert!(files_below(&out)
        .iter()
        .all(|f| std::fs::read(f).is_ok_and(|b| contains(&b, MARKER))));
    let (_, more) = alice.agent(&root.path().join("hall"), None, 1)?;
    assert_eq!(
        event_ids(&alice)?.len(),
        4,
        "camera {camera} uploads to the new node"
    );
    assert_eq!(more.len(), 1);
    Ok(())
}

#[test]
fn a_service_it_cannot_use_is_refused_at_start_with_what_it_expected() -> TestResult {
    let root = tempfile::tempdir()?;
    let out = Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(root.path().join("data"))
        .env("CC_CACHE_URL", "memcached://127.0.0.1:11211")
        .output()?;
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("cache_url") && said.contains("redis://"),
        "{said}"
    );
    Ok(())
}

/// Three nodes on shared PostgreSQL, an S3-compatible bucket, Redis and NATS; the storm
/// (live view included) spread over them; one node killed in the middle. Its cameras and viewers move to the others, and
/// nothing leaks or goes missing.
#[test]
fn three_nodes_survive_losing_one_mid_storm() -> TestResult {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let db = runtime.block_on(TempPostgres::create())?;
    let outcome = storm_over_three_nodes(&runtime, db.url());
    runtime.block_on(db.drop_database())?;
    outcome
}

fn storm_over_three_nodes(runtime: &tokio::runtime::Runtime, postgres: &str) -> TestResult {
    let root = tempfile::tempdir()?;
    let s3 = S3Server::start()?;
    let mut flags = vec![
        "--metadata-url",
        postgres,
        "--cache-url",
        "redis://127.0.0.1:6379",
        "--fanout-url",
        "nats://127.0.0.1:4222",
    ];
    let s3_flags = s3.flags();
    flags.extend(s3_flags.iter().map(String::as_str));
    let mut nodes = Vec::new();
    for n in 0..3 {
        nodes.push(Server::start_with(
            root.path(),
            &root.path().join(format!("node-{n}")),
            &flags,
        )?);
    }
    let options = cc_storm::Options {
        servers: nodes.iter().map(|n| n.url.clone()).collect(),
        households: 150,
        cameras_per: 2,
        viewers_per: 1,
        events_per: 3,
        arrival: cc_storm::Arrival::Ramp(6.0),
        duration: Duration::from_secs(10),
        lying_cache: false,
        seed: 3,
        progress: false,
    };
    let storm = runtime.spawn(cc_storm::run(options));
    // Once the storm is uploading, node B dies without a goodbye.
    runtime.block_on(until_events_stored(postgres, 100))?;
    nodes.remove(1).kill()?;
    let report = runtime.block_on(storm)??;
    println!("{}", report.table());
    assert_eq!(report.leaks, 0, "{:?}", report.leak_details);
    assert_eq!(report.lost_events, 0);
    assert_eq!(report.connected, 300);
    assert_eq!(report.events_acked, 900);
    let log = std::fs::read_to_string(&nodes[0].log).unwrap_or_default();
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(report.responses_5xx, 0, "{errors:#?}");
    assert!(
        report.viewer_errors.is_empty(),
        "{:?}",
        report.viewer_errors
    );
    assert!(
        report.failovers > 0,
        "nobody had to move off the killed node"
    );
    Ok(())
}

/// Waits until `count` events are committed in the shared database.
async fn until_events_stored(postgres: &str, count: i64) -> TestResult {
    use sqlx::{Connection, Row};
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(postgres).await?;
    let waited = std::time::Instant::now();
    loop {
        let stored: i64 = sqlx::query("SELECT COUNT(*) AS n FROM events")
            .fetch_one(&mut conn)
            .await?
            .try_get("n")?;
        if stored >= count {
            return Ok(conn.close().await?);
        }
        if waited.elapsed() > Duration::from_secs(300) {
            return Err(format!("only {stored} events stored after 5 minutes").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
