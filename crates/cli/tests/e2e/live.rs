//! Live view through the real binary: a running camera agent streams on request, the
//! owner's `camera live` writes verified, decrypted frames, a stranger gets nothing, and
//! no frame reaches the server's disk or logs.

use std::process::Stdio;

use crate::harness::*;

#[test]
fn a_running_camera_streams_live_to_its_owner_only() -> TestResult {
    let root = tempfile::tempdir()?;
    let server = Server::start(root.path())?;
    let alice = User::signup(root.path(), &server, "alice@example.com")?;
    let mallory = User::signup(root.path(), &server, "mallory@example.com")?;
    let cam_dir = root.path().join("hall");
    let (camera, _) = alice.pair_camera("Hall", &cam_dir, 1)?;

    // The camera runs on, waiting for viewers.
    let mut agent = alice
        .running_agent(&cam_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let frames = root.path().join("frames");
    let watched = alice.run(&[
        "camera",
        "live",
        &camera,
        "--frames",
        "3",
        "--all",
        "--out",
        &frames.to_string_lossy(),
    ]);
    let stranger = mallory.run(&["camera", "live", &camera, "--frames", "1"]);
    agent.kill()?;
    agent.wait()?;

    let watched = watched?;
    assert!(
        watched.status.success(),
        "{}",
        String::from_utf8_lossy(&watched.stderr)
    );
    let written = files_below(&frames);
    assert_eq!(written.len(), 3, "{written:?}");
    let live_marker = format!("CLOSEDCIRCUIT-SYNTHETIC-MARKER live {camera}");
    for file in &written {
        assert!(contains(&std::fs::read(file)?, live_marker.as_bytes()));
    }

    let stranger = stranger?;
    assert!(!stranger.status.success());
    assert!(String::from_utf8_lossy(&stranger.stderr).contains("not_found"));

    let mut scanned = files_below(&server.data_dir);
    scanned.push(server.log.clone());
    for file in scanned {
        let bytes = std::fs::read(&file)?;
        assert!(!contains(&bytes, MARKER), "plaintext in {}", file.display());
    }
    Ok(())
}

#[test]
fn a_revocation_rotates_the_running_cameras_live_key_and_ends_the_members_view() -> TestResult {
    let root = tempfile::tempdir()?;
    let server = Server::start(root.path())?;
    let alice = User::signup(root.path(), &server, "alice@example.com")?;
    let bob = User::signup(root.path(), &server, "bob@example.com")?;
    let cam_dir = root.path().join("porch");
    let (camera, _) = alice.pair_camera("Porch", &cam_dir, 1)?;
    alice.ok(&[
        "share", "invite", "--camera", &camera, "--email", &bob.email, "--role", "viewer",
    ])?;
    bob.ok(&["share", "accept", "--camera", &camera])?;

    let agent_log = root.path().join("agent.log");
    let mut agent = alice
        .running_agent(&cam_dir)
        .stdout(std::fs::File::create(&agent_log)?)
        .stderr(Stdio::null())
        .spawn()?;
    let watch = |user: &User, out: &str| {
        user.run(&[
            "camera",
            "live",
            &camera,
            "--frames",
            "2",
            "--out",
            &root.path().join(out).to_string_lossy(),
        ])
    };
    let before = watch(&bob, "bob-before");
    let revoked = alice.run(&[
        "share", "revoke", "--camera", &camera, "--email", &bob.email,
    ]);
    let after = watch(&bob, "bob-after");
    let owner = watch(&alice, "alice-after");
    agent.kill()?;
    agent.wait()?;

    let (before, revoked, after, owner) = (before?, revoked?, after?, owner?);
    assert!(
        before.status.success(),
        "{}",
        String::from_utf8_lossy(&before.stderr)
    );
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    assert!(!after.status.success());
    assert!(String::from_utf8_lossy(&after.stderr).contains("not_found"));
    assert!(
        owner.status.success(),
        "{}",
        String::from_utf8_lossy(&owner.stderr)
    );
    let log = std::fs::read_to_string(&agent_log)?;
    assert!(log.contains("live view now uses epoch 2"), "{log}");
    Ok(())
}
