//! Sharing through the real binary: an invitation accepted by a friend who then opens an
//! event, a revocation that rotates the camera's key, and the audit trail of it all.

use crate::harness::*;

#[test]
fn share_open_revoke_rotate_and_audit() -> TestResult {
    let root = tempfile::tempdir()?;
    let server = Server::start(root.path())?;
    let alice = User::signup(root.path(), &server, "alice@example.com")?;
    let bob = User::signup(root.path(), &server, "bob@example.com")?;
    let cam_dir = root.path().join("porch");
    let (camera, acked) = alice.pair_camera("Porch", &cam_dir, 2)?;
    assert_eq!(acked.len(), 2);

    // Alice invites Bob with history; both see the same verification phrase.
    let invited = alice.ok(&[
        "share",
        "invite",
        "--camera",
        &camera,
        "--email",
        &bob.email,
        "--role",
        "viewer",
        "--history",
    ])?;
    let phrase = phrase_in(&invited).ok_or("invite printed no phrase")?;
    let pending = bob.json(&["share", "list"])?;
    assert_eq!(pending["invitations"][0]["camera_id"], camera.as_str());
    assert_eq!(pending["invitations"][0]["verification_phrase"], phrase);
    let accepted = bob.ok(&["share", "accept", "--camera", &camera])?;
    assert!(accepted.contains(&phrase), "{accepted}");

    // Bob lists the camera and opens an event, verified against the pinned owner key.
    let cameras = bob.json(&["camera", "list"])?;
    assert_eq!(cameras[0]["name"], "Porch");
    assert_eq!(cameras[0]["verified"], true);
    let events = bob.json(&["events", "list", "--camera", &camera])?;
    assert_eq!(events.as_array().map(Vec::len), Some(2));
    let out = root.path().join("bob-out");
    let out_text = out.to_string_lossy().into_owned();
    bob.ok(&[
        "events", "get", &acked[0], "--camera", &camera, "--out", &out_text,
    ])?;
    assert!(files_below(&out)
        .iter()
        .all(|f| std::fs::read(f).is_ok_and(|b| contains(&b, MARKER))));

    let members = alice.json(&["share", "list", "--camera", &camera])?;
    let bob_row = members["members"]
        .as_array()
        .and_then(|m| m.iter().find(|s| s["email"] == bob.email.as_str()))
        .ok_or("bob is not listed")?;
    assert_eq!(bob_row["status"], "active");
    assert_eq!(bob_row["verification_phrase"], phrase);

    // The access log shows Bob's clip read.
    let log = alice.json(&["audit", "--camera", &camera])?;
    assert!(
        log.as_array().is_some_and(|entries| entries
            .iter()
            .any(|e| e["email"] == bob.email.as_str() && e["object"] == "clip")),
        "{log}"
    );

    // Revocation: Bob loses access at once, and the camera moves to a new key.
    let revoked = alice.ok(&[
        "share", "revoke", "--camera", &camera, "--email", &bob.email,
    ])?;
    assert!(revoked.contains("bob@example.com can no longer see this camera"));
    let listed = bob.run(&["events", "list", "--camera", &camera])?;
    assert!(!listed.status.success());
    assert!(String::from_utf8_lossy(&listed.stderr).contains("not_found"));
    let opened = bob.run(&[
        "events", "get", &acked[1], "--camera", &camera, "--out", &out_text,
    ])?;
    assert!(!opened.status.success());
    assert!(String::from_utf8_lossy(&opened.stderr).contains("not_found"));
    let cameras = alice.json(&["camera", "list"])?;
    assert_eq!(cameras[0]["epoch"], 2);

    // The camera adopts the new certificate; its next event opens for Alice.
    let (_, after) = alice.agent(&cam_dir, None, 1)?;
    assert_eq!(after.len(), 1);
    let alice_out = root.path().join("alice-out");
    alice.ok(&[
        "events",
        "get",
        &after[0],
        "--camera",
        &camera,
        "--out",
        &alice_out.to_string_lossy(),
    ])?;
    let events = alice.json(&["events", "list", "--camera", &camera])?;
    let newest = events
        .as_array()
        .and_then(|e| e.iter().find(|e| e["event_id"] == after[0].as_str()))
        .ok_or("the new event is not listed")?;
    assert_eq!(newest["epoch"], 2);

    // The operator's check of the hash-chained access log passes.
    let verified = alice.ok(&[
        "admin",
        "audit-verify",
        "--data-dir",
        &server.data_dir.to_string_lossy(),
    ])?;
    assert!(verified.contains("intact"), "{verified}");
    Ok(())
}

/// The eight five-digit groups of a verification phrase printed on some line.
fn phrase_in(text: &str) -> Option<String> {
    text.lines()
        .filter_map(|line| line.rsplit_once(": ").map(|(_, p)| p.trim()))
        .find(|p| {
            let groups: Vec<&str> = p.split(' ').collect();
            groups.len() == 8
                && groups
                    .iter()
                    .all(|g| g.len() == 5 && g.chars().all(|c| c.is_ascii_digit()))
        })
        .map(str::to_owned)
}

#[test]
fn an_admins_revocation_is_rotated_by_the_owners_next_camera_list() -> TestResult {
    let root = tempfile::tempdir()?;
    let server = Server::start(root.path())?;
    let alice = User::signup(root.path(), &server, "alice@example.com")?;
    let bob = User::signup(root.path(), &server, "bob@example.com")?;
    let dave = User::signup(root.path(), &server, "dave@example.com")?;
    let (camera, _) = alice.pair_camera("Yard", &root.path().join("yard"), 1)?;

    let invite = |by: &User, to: &User, role: &str| {
        by.ok(&[
            "share", "invite", "--camera", &camera, "--email", &to.email, "--role", role,
        ])
    };
    invite(&alice, &bob, "admin")?;
    bob.ok(&["share", "accept"])?;
    invite(&bob, &dave, "viewer")?;
    dave.ok(&["share", "accept"])?;
    assert_eq!(dave.json(&["camera", "list"])?[0]["name"], "Yard");

    // Bob (an admin, not the owner) removes Dave: access ends, rotation waits for Alice.
    let revoked = bob.ok(&[
        "share",
        "revoke",
        "--camera",
        &camera,
        "--email",
        &dave.email,
    ])?;
    assert!(revoked.contains("dave@example.com can no longer see this camera"));
    assert!(!dave
        .run(&["events", "list", "--camera", &camera])?
        .status
        .success());
    let listed = alice.command(&["camera", "list", "--json"]).output()?;
    assert!(listed.status.success());
    assert!(String::from_utf8_lossy(&listed.stderr).contains("new content key"));
    let cameras: serde_json::Value = serde_json::from_slice(&listed.stdout)?;
    assert_eq!(cameras[0]["epoch"], 2);
    // Bob, still a member, got the new key: the name (sealed to epoch 2) opens for him.
    assert_eq!(bob.json(&["camera", "list"])?[0]["name"], "Yard");

    // Nobody read anything as a non-member; then a tampered log entry is caught.
    let data_dir = server.data_dir.to_string_lossy().into_owned();
    let report = alice.json(&[
        "admin",
        "breach-report",
        "--since",
        "1h",
        "--until",
        "0s",
        "--data-dir",
        &data_dir,
    ])?;
    assert_eq!(report, serde_json::json!([]));
    alice.ok(&["audit", "verify", "--data-dir", &data_dir])?;
    let db = format!("sqlite://{}", server.data_dir.join("metadata.db").display());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            use sqlx::Connection;
            sqlx::any::install_default_drivers();
            let mut conn = sqlx::AnyConnection::connect(&db).await?;
            sqlx::query("UPDATE access_log SET ip = '203.0.113.9' WHERE seq = 1")
                .execute(&mut conn)
                .await?;
            conn.close().await?;
            Ok::<_, sqlx::Error>(())
        })?;
    let broken = alice.run(&["audit", "verify", "--data-dir", &data_dir])?;
    assert!(!broken.status.success());
    assert!(String::from_utf8_lossy(&broken.stderr).contains("BROKEN at entry 1"));
    Ok(())
}
