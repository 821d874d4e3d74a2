//! DESIGN I4's model failure: a request cancelled mid-flight leaves a connection, cache
//! slot or buffer holding its answer, and the next request gets it. Here clients of two
//! households abandon requests at random points while others complete, through the
//! lying cache; every completed answer must be the asker's own, and the access log's
//! chain must stay whole whatever was cut off.

use std::time::Duration;

use cc_core::api::{CameraInfo, EventPage};
use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_requests_never_hand_their_answer_to_the_next() -> TestResult {
    let server = start_with(|c| c.lying_cache = Some(11)).await?;
    let mut homes = Vec::new();
    for (email, name) in [("a@example.com", "A"), ("b@example.com", "B")] {
        let user = server.signup(email, "pw").await?;
        let camera = server.pair(&user, name).await?;
        let upload = event(&camera, b"thumb", b"clip")?;
        assert_eq!(
            server.upload(&camera, &upload).await?.status,
            StatusCode::CREATED
        );
        homes.push((user, camera, upload.path_event));
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let mut tasks = tokio::task::JoinSet::new();
    for round in 0..400 {
        let (user, camera, event) = &homes[round % 2];
        let (token, cam, event) = (user.token.clone(), camera.camera_id, *event);
        let path = match round % 4 {
            0 | 1 => format!("/v1/cameras/{cam}/events"),
            2 => format!("/v1/cameras/{cam}/events/{event}/clip"),
            _ => "/v1/cameras".to_owned(),
        };
        // Half the requests are abandoned after a random few hundred microseconds.
        let cut = (rng.gen_bool(0.5)).then(|| Duration::from_micros(rng.gen_range(50..3000)));
        let client = server.http.clone();
        let url = format!("{}{path}", server.url);
        tasks.spawn(async move {
            let request = async {
                let response = client.get(&url).bearer_auth(&token).send().await?;
                let status = response.status();
                Ok::<_, reqwest::Error>((status, response.bytes().await?))
            };
            let answer = match cut {
                Some(after) => match tokio::time::timeout(after, request).await {
                    Ok(answer) => answer,
                    Err(_) => return Ok(None),
                },
                None => request.await,
            };
            answer.map(|a| Some((path, cam, event, a)))
        });
    }
    let mut completed = 0;
    while let Some(joined) = tasks.join_next().await {
        let Some((path, cam, event, (status, body))) = joined?? else {
            continue;
        };
        assert_eq!(status, StatusCode::OK, "{path}");
        completed += 1;
        if path.ends_with("/clip") {
            let camera = homes
                .iter()
                .find(|h| h.1.camera_id == cam)
                .ok_or("no camera")?;
            assert_eq!(camera.2, event);
            assert_eq!(camera.1.content.decrypt(&body)?, b"clip", "{path}");
        } else if path.ends_with("/events") {
            let page: EventPage = serde_json::from_slice(&body)?;
            assert!(page
                .events
                .iter()
                .all(|e| e.camera_id == cam && e.event_id == event));
        } else {
            let cameras: Vec<CameraInfo> = serde_json::from_slice(&body)?;
            assert_eq!(cameras.len(), 1);
            assert_eq!(cameras[0].camera_id, cam, "another household's camera");
        }
    }
    assert!(completed > 0);
    // Afterwards each household still gets exactly its own camera.
    for (user, camera, _) in &homes {
        let cameras: Vec<CameraInfo> = server
            .send(Method::GET, "/v1/cameras", Some(&user.token), None)
            .await?
            .json()?;
        assert_eq!(cameras.len(), 1);
        assert_eq!(cameras[0].camera_id, camera.camera_id);
    }
    let chain = server.store.verify_access_log().await?;
    assert_eq!(chain.first_broken_seq, None);
    Ok(())
}
