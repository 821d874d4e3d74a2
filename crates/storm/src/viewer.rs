//! A simulated viewer with the leak oracle: every item it receives must belong to a
//! camera of its own household, its manifest must verify against that camera's
//! owner-signed certificate, and its thumbnail must decrypt to that camera's content.
//! Now and then it also opens live view of one of its cameras (see [`crate::live`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use cc_core::api::{CameraInfo, EventInfo, EventPage, Grant};
use cc_core::envelope::Identity;
use cc_core::{CameraId, EventId};
use reqwest::Method;

use crate::camera::plaintext;
use crate::household::Household;
use crate::http::Http;
use crate::stats::{Counters, Latencies};
use crate::StormError;

/// Share of a viewer's rounds that also open live view of one of its cameras.
const LIVE_SHARE: f64 = 0.2;

/// Viewer loop: list cameras, list events, open the newest, until `stop`.
pub async fn watch(
    http: Http,
    household: Arc<Household>,
    counters: Arc<Counters>,
    idle: Arc<Latencies>,
    storm: Arc<Latencies>,
    storming: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> Result<(), StormError> {
    let token = household.login(&http).await?;
    let mut keys: HashMap<CameraId, Identity> = HashMap::new();
    while !stop.load(Ordering::Relaxed) {
        let phase = if storming.load(Ordering::Relaxed) {
            &storm
        } else {
            &idle
        };
        match round(&http, &token, &household, &counters, phase, &mut keys).await {
            Ok(()) => {}
            Err(StormError::Status { status: 503, .. }) => counters.add_503(),
            Err(e) => return Err(e),
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Ok(())
}

/// One look at the app: cameras, a page of events each, every item checked.
async fn round(
    http: &Http,
    token: &str,
    household: &Household,
    counters: &Counters,
    phase: &Latencies,
    keys: &mut HashMap<CameraId, Identity>,
) -> Result<(), StormError> {
    let started = Instant::now();
    let cameras: Vec<CameraInfo> = http
        .send::<()>(Method::GET, "/v1/cameras", Some(token), None)
        .await?
        .json("list cameras")?;
    phase.record(started.elapsed());
    for camera in &cameras {
        counters.items_checked.fetch_add(1, Ordering::Relaxed);
        if !household
            .cameras
            .iter()
            .any(|c| c.camera_id == camera.camera_id)
        {
            counters.leak(format!(
                "household {} was shown camera {}",
                household.index, camera.camera_id
            ));
            continue;
        }
        let started = Instant::now();
        let page: EventPage = http
            .send::<()>(
                Method::GET,
                &format!("/v1/cameras/{}/events?limit=5", camera.camera_id),
                Some(token),
                None,
            )
            .await?
            .json("list events")?;
        phase.record(started.elapsed());
        for event in &page.events {
            if event.camera_id != camera.camera_id {
                counters.leak(format!(
                    "household {}: listing of {} carried event {} of camera {}",
                    household.index, camera.camera_id, event.event_id, event.camera_id
                ));
                continue;
            }
            check_event(http, token, household, camera, event, keys, counters).await?;
        }
    }
    if rand::random::<f64>() < LIVE_SHARE {
        if let Some(camera) = cameras.get(rand::random::<usize>() % cameras.len().max(1)) {
            let key = content_key(http, token, household, camera.camera_id, keys).await?;
            crate::live::watch(http, token, household, camera, key, counters).await?;
        }
    }
    Ok(())
}

async fn check_event(
    http: &Http,
    token: &str,
    household: &Household,
    camera: &CameraInfo,
    event: &EventInfo,
    keys: &mut HashMap<CameraId, Identity>,
    counters: &Counters,
) -> Result<(), StormError> {
    counters.items_checked.fetch_add(1, Ordering::Relaxed);
    let whose = format!(
        "household {} camera {} event {}",
        household.index, camera.camera_id, event.event_id
    );
    let verified = camera
        .certificate
        .verify_owner(&household.keys.verifying_key())
        .ok()
        .and_then(|cert| cert.device_key().ok())
        .and_then(|device| event.manifest.verify(&device).ok())
        .filter(|m| m.check_identity(camera.camera_id, event.event_id).is_ok());
    let Some(manifest) = verified else {
        counters.leak(format!("{whose}: manifest does not verify for this camera"));
        return Ok(());
    };
    let thumb = http
        .send::<()>(
            Method::GET,
            &format!(
                "/v1/cameras/{}/events/{}/thumb",
                camera.camera_id, event.event_id
            ),
            Some(token),
            None,
        )
        .await?;
    if !thumb.status.is_success() || manifest.check_thumb(&thumb.body).is_err() {
        counters.leak(format!("{whose}: thumbnail does not match its manifest"));
        return Ok(());
    }
    let Some(key) = content_key(http, token, household, camera.camera_id, keys).await? else {
        counters.leak(format!("{whose}: no grant to decrypt it"));
        return Ok(());
    };
    let expected = plaintext(camera.camera_id, event.event_id, "thumb");
    if key.decrypt(&thumb.body).ok() != Some(expected) {
        counters.leak(format!(
            "{whose}: thumbnail does not decrypt to this camera's content"
        ));
    }
    Ok(())
}

async fn content_key<'a>(
    http: &Http,
    token: &str,
    household: &Household,
    camera: CameraId,
    keys: &'a mut HashMap<CameraId, Identity>,
) -> Result<Option<&'a Identity>, StormError> {
    if let std::collections::hash_map::Entry::Vacant(slot) = keys.entry(camera) {
        let grants: Vec<Grant> = http
            .send::<()>(
                Method::GET,
                &format!("/v1/cameras/{camera}/grants"),
                Some(token),
                None,
            )
            .await?
            .json("grants")?;
        let key = grants
            .iter()
            .find(|g| g.epoch == 1)
            .and_then(|g| household.keys.identity.decrypt(&g.grant).ok())
            .and_then(|secret| String::from_utf8(secret).ok())
            .and_then(|text| Identity::parse(&text).ok());
        if let Some(key) = key {
            slot.insert(key);
        }
    }
    Ok(keys.get(&camera))
}

/// Events of `camera` the household can list, all pages.
pub async fn all_events(
    http: &Http,
    token: &str,
    camera: CameraId,
) -> Result<Vec<EventId>, StormError> {
    let mut ids = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let mut path = format!("/v1/cameras/{camera}/events?limit=200");
        if let Some(cursor) = &before {
            path.push_str(&format!("&before={cursor}"));
        }
        let page: EventPage = http
            .send::<()>(Method::GET, &path, Some(token), None)
            .await?
            .json("list all events")?;
        ids.extend(page.events.iter().map(|e| e.event_id));
        match page.next_cursor {
            Some(c) => before = Some(c),
            None => return Ok(ids),
        }
    }
}
