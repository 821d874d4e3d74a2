//! Handing a camera to a new owner through the real binary: the recordings go with it,
//! the old owner is shut out, the camera and the remaining member follow the signed
//! transfer, and events after it open for the new owner only.

use crate::harness::*;

#[test]
fn a_transferred_camera_follows_its_new_owner() -> TestResult {
    let root = tempfile::tempdir()?;
    let server = Server::start(root.path())?;
    let alice = User::signup(root.path(), &server, "alice@example.com")?;
    let bob = User::signup(root.path(), &server, "bob@example.com")?;
    let carol = User::signup(root.path(), &server, "carol@example.com")?;
    let cam_dir = root.path().join("drive");
    let (camera, before) = alice.pair_camera("Driveway", &cam_dir, 1)?;
    alice.ok(&[
        "share", "invite", "--camera", &camera, "--email", &bob.email, "--role", "viewer",
    ])?;
    bob.ok(&["share", "accept"])?;
    assert_eq!(bob.json(&["camera", "list"])?[0]["verified"], true);

    // Without a terminal the owner must confirm with --yes.
    let unconfirmed = alice.run(&["camera", "transfer", &camera, "--to", &carol.email])?;
    assert!(!unconfirmed.status.success());
    let offered = alice.ok(&["camera", "transfer", &camera, "--to", &carol.email, "--yes"])?;
    assert!(
        offered.contains("Verification phrase with carol@example.com"),
        "{offered}"
    );
    // Until Carol accepts, nothing changes for anyone.
    assert_eq!(alice.json(&["camera", "list"])?[0]["epoch"], 1);
    assert!(carol
        .json(&["camera", "list"])?
        .as_array()
        .is_some_and(Vec::is_empty));

    let accepted = carol.ok(&["share", "accept"])?;
    assert!(accepted.contains("you now own Driveway"), "{accepted}");
    let cameras = carol.json(&["camera", "list"])?;
    assert_eq!(cameras[0]["name"], "Driveway");
    assert_eq!(cameras[0]["role"], "owner");
    assert_eq!(cameras[0]["epoch"], 2);
    assert_eq!(cameras[0]["verified"], true);

    // Alice is shut out on every route.
    assert!(alice
        .json(&["camera", "list"])?
        .as_array()
        .is_some_and(Vec::is_empty));
    let listed = alice.run(&["events", "list", "--camera", &camera])?;
    assert!(String::from_utf8_lossy(&listed.stderr).contains("not_found"));

    // The recordings went with the camera: Carol opens the event from Alice's time.
    let out = root.path().join("carol-out");
    let out_text = out.to_string_lossy().into_owned();
    carol.ok(&[
        "events", "get", &before[0], "--camera", &camera, "--out", &out_text,
    ])?;

    // The camera follows Alice's signed transfer to Carol's key; its next event is
    // sealed to Carol's new content key and opens for Carol and for Bob, who stayed.
    let (_, after) = carol.agent(&cam_dir, None, 1)?;
    assert_eq!(after.len(), 1);
    carol.ok(&[
        "events", "get", &after[0], "--camera", &camera, "--out", &out_text,
    ])?;
    let bob_view = bob.json(&["camera", "list"])?;
    assert_eq!(bob_view[0]["verified"], true, "{bob_view}");
    assert_eq!(bob_view[0]["name"], "Driveway");
    let bob_out = root.path().join("bob-out");
    bob.ok(&[
        "events",
        "get",
        &after[0],
        "--camera",
        &camera,
        "--out",
        &bob_out.to_string_lossy(),
    ])?;
    Ok(())
}
