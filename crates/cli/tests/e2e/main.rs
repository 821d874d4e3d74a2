//! End to end through the real binary: what a new user does, and what must hold while
//! they do it.

mod account;
mod harness;
mod live;
mod scale_out;
mod sharing;
mod tls;
mod transfer;

use std::io::Read;
use std::str::FromStr;

use harness::*;

#[test]
fn pair_upload_list_and_open_while_the_server_stays_blind() -> TestResult {
    let root = tempfile::tempdir()?;
    let server = Server::start(root.path())?;
    let alice = User::signup(root.path(), &server, "alice@example.com")?;
    let bob = User::signup(root.path(), &server, "bob@example.com")?;
    let cam_dir = root.path().join("front-door");
    let (camera, acked) = alice.pair_camera("Front door", &cam_dir, 3)?;
    assert_eq!(acked.len(), 3);

    let cameras = alice.json(&["camera", "list"])?;
    assert_eq!(cameras[0]["name"], "Front door");
    assert_eq!(cameras[0]["camera_id"], camera.as_str());
    let events = alice.json(&["events", "list", "--camera", &camera])?;
    let listed: Vec<&str> = events
        .as_array()
        .ok_or("not a list")?
        .iter()
        .filter_map(|e| e["event_id"].as_str())
        .collect();
    for id in &acked {
        assert!(listed.contains(&id.as_str()), "acked event {id} not listed");
    }
    assert!(events
        .as_array()
        .ok_or("not a list")?
        .iter()
        .all(|e| e["verified"] == true));

    // Alice opens an event: verified, decrypted, the marker is in her copy.
    let out = root.path().join("out");
    alice.ok(&["events", "get", &acked[0], "--out", &out.to_string_lossy()])?;
    let opened = files_below(&out);
    assert_eq!(opened.len(), 2);
    assert!(opened
        .iter()
        .all(|f| std::fs::read(f).is_ok_and(|b| contains(&b, MARKER))));

    // Bob sees none of it, by listing or by ID.
    assert_eq!(bob.json(&["camera", "list"])?, serde_json::json!([]));
    let probe = bob.run(&[
        "events",
        "get",
        &acked[0],
        "--camera",
        &camera,
        "--out",
        &out.to_string_lossy(),
    ])?;
    assert!(!probe.status.success());
    assert!(String::from_utf8_lossy(&probe.stderr).contains("not_found"));

    // The marker never reached the server's disk or its logs (debug level).
    let mut scanned = files_below(&server.data_dir);
    scanned.push(server.log.clone());
    for file in scanned {
        let bytes = std::fs::read(&file)?;
        assert!(!contains(&bytes, MARKER), "plaintext in {}", file.display());
        assert!(
            !contains(&bytes, b"AGE-SECRET-KEY-"),
            "a private key in {}",
            file.display()
        );
        assert!(
            !contains(&bytes, b"Front door"),
            "the camera name in {}",
            file.display()
        );
    }

    // A stolen camera reads no history: its state holds no decryption key at all.
    for file in files_below(&cam_dir) {
        let bytes = std::fs::read(&file)?;
        assert!(
            !contains(&bytes, b"AGE-SECRET-KEY-"),
            "{} holds an age identity",
            file.display()
        );
    }
    // Restarted with the same state, the camera reconnects without a new claim.
    let (again, more) = alice.agent(&cam_dir, None, 1)?;
    assert_eq!((again.as_str(), more.len()), (camera.as_str(), 1));
    Ok(())
}

#[test]
fn raw_files_open_with_the_reference_age_implementation() -> TestResult {
    let root = tempfile::tempdir()?;
    let server = Server::start(root.path())?;
    let alice = User::signup(root.path(), &server, "carol@example.com")?;
    let (_, acked) = alice.pair_camera("Porch", &root.path().join("porch"), 1)?;
    let raw = root.path().join("raw");
    alice.ok(&[
        "events",
        "get",
        &acked[0],
        "--raw",
        "--out",
        &raw.to_string_lossy(),
    ])?;
    let identity_file = root.path().join("me.txt");
    alice.ok(&[
        "account",
        "export-identity",
        "--out",
        &identity_file.to_string_lossy(),
    ])?;

    // Independent of the project's decrypt path: the `age` crate, as the `age` tool does.
    let identity_text = std::fs::read_to_string(&identity_file)?;
    let line = identity_text
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .ok_or("no identity line")?;
    let user = age::x25519::Identity::from_str(line).map_err(|e| e.to_string())?;
    let dir = raw.join(&acked[0]);
    let grant = std::fs::read(dir.join("grant.age"))?;
    let camera_key_text = String::from_utf8(decrypt(&user, &grant)?)?;
    let camera_key =
        age::x25519::Identity::from_str(camera_key_text.trim()).map_err(|e| e.to_string())?;
    let clip = decrypt(&camera_key, &std::fs::read(dir.join("clip.age"))?)?;
    let thumb = decrypt(&camera_key, &std::fs::read(dir.join("thumb.age"))?)?;
    assert!(contains(&clip, MARKER) && contains(&thumb, MARKER));
    // Without the grant, the user's identity alone opens nothing.
    assert!(decrypt(&user, &std::fs::read(dir.join("clip.age"))?).is_err());
    Ok(())
}

fn decrypt(identity: &age::x25519::Identity, ciphertext: &[u8]) -> TestResult<Vec<u8>> {
    let decryptor = age::Decryptor::new(ciphertext)?;
    let mut reader = decryptor.decrypt(std::iter::once(identity as &dyn age::Identity))?;
    let mut out = Vec::new();
    reader.read_to_end(&mut out)?;
    Ok(out)
}

#[test]
fn every_acknowledged_event_survives_a_kill() -> TestResult {
    let root = tempfile::tempdir()?;
    let data = root.path().join("data");
    let server = Server::start_in(root.path(), &data)?;
    let alice = User::signup(root.path(), &server, "dave@example.com")?;
    let cam_dir = root.path().join("cam");
    alice.pair_camera("Garage", &cam_dir, 1)?;

    // An agent uploading as fast as it can; the server is killed mid-stream.
    let mut agent = alice
        .command(&[
            "camera",
            "agent",
            "--state-dir",
            &cam_dir.to_string_lossy(),
            "--source",
            "synthetic",
            "--events",
            "1000",
            "--interval",
            "0",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let stdout = agent.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut acked = Vec::new();
    while acked.len() < 8 {
        let line = rx.recv_timeout(std::time::Duration::from_secs(60))?;
        acked.extend(parse_agent_output(&line).1);
    }
    server.kill()?;
    // Everything acknowledged up to the kill (and any stragglers printed before it).
    std::thread::sleep(std::time::Duration::from_millis(300));
    acked.extend(rx.try_iter().flat_map(|l| parse_agent_output(&l).1));
    agent.kill()?;
    agent.wait()?;

    let server = Server::start_in(root.path(), &data)?;
    let alice = User {
        server: server.url.clone(),
        ..alice
    };
    let listed = alice.json(&["events", "list", "--limit", "2000"])?;
    let ids: Vec<&str> = listed
        .as_array()
        .ok_or("not a list")?
        .iter()
        .filter_map(|e| e["event_id"].as_str())
        .collect();
    for id in &acked {
        assert!(
            ids.contains(&id.as_str()),
            "acknowledged event {id} lost in the kill"
        );
    }
    // Nothing half-written is visible: every listed event opens.
    let out = root.path().join("out");
    for id in ids.iter().take(3) {
        alice.ok(&["events", "get", id, "--out", &out.to_string_lossy()])?;
    }
    Ok(())
}

#[test]
fn a_server_that_serves_another_cameras_event_is_caught() -> TestResult {
    let root = tempfile::tempdir()?;
    let server = Server::start(root.path())?;
    let erin = User::signup(root.path(), &server, "erin@example.com")?;
    let frank = User::signup(root.path(), &server, "frank@example.com")?;
    let (erin_cam, erin_events) = erin.pair_camera("Kitchen", &root.path().join("k"), 1)?;
    let (_, frank_events) = frank.pair_camera("Attic", &root.path().join("a"), 1)?;

    // The server (here: its database) mixes up Frank's event into Erin's camera.
    let db = format!("sqlite://{}", server.data_dir.join("metadata.db").display());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&db).await?;
        sqlx::query("UPDATE events SET camera_id = $1 WHERE id = $2")
            .bind(&erin_cam)
            .bind(&frank_events[0])
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        Ok::<_, sqlx::Error>(())
    })?;

    let listed = erin.json(&["events", "list", "--camera", &erin_cam])?;
    let swapped = listed
        .as_array()
        .ok_or("not a list")?
        .iter()
        .find(|e| e["event_id"] == frank_events[0].as_str())
        .ok_or("the swapped event is not listed")?;
    assert_eq!(
        swapped["verified"], false,
        "a foreign event was shown as verified"
    );
    let out = root.path().join("out");
    let opened = erin.run(&[
        "events",
        "get",
        &frank_events[0],
        "--camera",
        &erin_cam,
        "--out",
        &out.to_string_lossy(),
    ])?;
    assert!(!opened.status.success());
    assert!(
        files_below(&out).is_empty(),
        "something of the foreign event was written"
    );
    // Erin's own event still opens.
    erin.ok(&[
        "events",
        "get",
        &erin_events[0],
        "--out",
        &out.to_string_lossy(),
    ])?;
    Ok(())
}

/// The reconnect benchmark's mechanics at a small scale: a server in its own process,
/// every camera connected and holding its stream. No figure is judged here.
#[test]
fn the_reconnect_bench_connects_every_camera_to_a_separate_server() -> TestResult {
    let out = std::process::Command::new(bin())
        .args([
            "bench",
            "reconnect",
            "--cameras",
            "150",
            "--viewers",
            "2",
            "--json",
        ])
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(report["connected"], 150);
    assert_eq!(report["streams_open"], 150);
    assert!(report["kib_per_camera"].is_number(), "{report}");
    Ok(())
}
