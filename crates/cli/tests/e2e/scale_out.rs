//! Moving an embedded installation to PostgreSQL with `admin migrate`, then serving it
//! from there: the same user, the same camera, the same events, still verified.

use std::process::Command;

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
