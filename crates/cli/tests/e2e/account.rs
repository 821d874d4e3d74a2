//! Account security through the real binary: sessions, step-up before video, and
//! two-factor login.

use crate::harness::*;

fn current_code(secret: &str) -> TestResult<String> {
    let bytes = data_encoding::BASE32_NOPAD.decode(secret.trim().as_bytes())?;
    let totp = totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 1, 30, bytes)?;
    Ok(totp.generate_current()?)
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn sessions_step_up_and_two_factor_login() -> TestResult {
    let root = tempfile::tempdir()?;
    let server = Server::start(root.path())?;
    let carol = User::signup(root.path(), &server, "carol@example.com")?;
    let cam_dir = root.path().join("hall");
    let (camera, acked) = carol.pair_camera("Hall", &cam_dir, 1)?;
    let out = root.path().join("out").to_string_lossy().into_owned();
    let get = [
        "events", "get", &acked[0], "--camera", &camera, "--out", &out,
    ];

    // Step-up: once required, video needs a fresh password check on the session.
    let settings = carol.json(&["account", "security", "--require-step-up", "on"])?;
    assert_eq!(settings["require_step_up"], true);
    let refused = carol.run(&get)?;
    assert!(!refused.status.success());
    assert!(stderr_of(&refused).contains("step_up_required"));
    carol.ok(&["account", "step-up"])?;
    carol.ok(&get)?;

    // A second device's session shows up, and ending it logs that device out.
    let laptop = User {
        profile: root.path().join("carol-laptop"),
        ..User::new(root.path(), &server, &carol.email)
    };
    laptop.ok(&["account", "login", "--email", &carol.email])?;
    let sessions = carol.json(&["account", "sessions"])?;
    let list = sessions.as_array().ok_or("not a list")?;
    assert_eq!(list.len(), 2);
    let other = list
        .iter()
        .find(|s| s["current"] == false)
        .and_then(|s| s["session_id"].as_str())
        .ok_or("no other session")?;
    carol.ok(&["account", "sessions", "revoke", other])?;
    let ended = laptop.run(&["account", "whoami"])?;
    assert!(!ended.status.success());
    assert!(stderr_of(&ended).contains("unauthenticated"));

    // Two-factor: without a terminal the first run shows the secret and asks for --code.
    let first = carol.run(&["account", "2fa", "enable"])?;
    assert!(!first.status.success());
    let shown = String::from_utf8(first.stdout)?;
    let secret = shown
        .lines()
        .find_map(|l| l.strip_prefix("Secret: "))
        .ok_or("no secret shown")?;
    let enabled = carol.ok(&["account", "2fa", "enable", "--code", &current_code(secret)?])?;
    assert!(enabled.contains("Recovery codes"));
    let no_code = laptop.run(&["account", "login", "--email", &carol.email])?;
    assert!(!no_code.status.success());
    assert!(stderr_of(&no_code).contains("second_factor_required"));
    laptop.ok(&[
        "account",
        "login",
        "--email",
        &carol.email,
        "--totp",
        &current_code(secret)?,
    ])?;
    laptop.ok(&["account", "step-up", "--totp", &current_code(secret)?])?;
    laptop.ok(&get)?;
    Ok(())
}
