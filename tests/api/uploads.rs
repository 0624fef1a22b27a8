//! Uploading a picture to send (docs/api.md, "Sending pictures"): JPEG, PNG and GIF told by
//! their bytes, whole, at most 5 MB, refused with our error JSON otherwise; uploads never sent
//! are pruned after a day; and 20 uploads of 5 MB at once stay within their memory budget.

use crate::helpers::{FIVE_MB, GIF, PNG, Part, TestApp, assert_error, jpeg, multipart, read};
use crate::on_both_backends;

on_both_backends! {
    pictures_are_told_by_their_bytes: Simulator,
    a_picture_is_at_most_5_mb: Simulator,
    a_malformed_upload_gets_our_error_json: Simulator,
    uploads_never_sent_are_pruned_after_a_day: Simulator,
}

const ALICES: &str = "+15550001000";

async fn pictures_are_told_by_their_bytes(app: TestApp) {
    let alice = app.agent("alice@example.com", &[ALICES]).await;

    let (status, png) = app.upload(&alice, "cat.gif", "image/gif", PNG).await;
    assert_eq!(status, 201, "{png}");
    assert_eq!(png["contentType"], "image/png", "the bytes say PNG: {png}");
    assert_eq!(png["size"], PNG.len());
    assert!(png["id"].as_str().is_some_and(|id| !id.is_empty()), "{png}");

    let (status, gif) = app
        .upload(&alice, "x.bin", "application/octet-stream", GIF)
        .await;
    assert_eq!(
        (status, gif["contentType"].clone()),
        (201, "image/gif".into())
    );
    let whole = jpeg(4096);
    let (status, jpg) = app.upload(&alice, "photo.png", "image/png", &whole).await;
    assert_eq!(
        (status, jpg["contentType"].clone()),
        (201, "image/jpeg".into())
    );

    let html = b"<!doctype html><script>alert(document.cookie)</script>";
    let (status, body) = app.upload(&alice, "cat.png", "image/png", html).await;
    assert_error(status, &body, 415, "unsupported_media_type");
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>";
    let (status, body) = app.upload(&alice, "cat.svg", "image/svg+xml", svg).await;
    assert_error(status, &body, 415, "unsupported_media_type");

    for cut in [whole.len() - 2, whole.len() / 2] {
        let (status, body) = app
            .upload(&alice, "photo.jpg", "image/jpeg", &whole[..cut])
            .await;
        assert_error(status, &body, 415, "unsupported_media_type");
    }
    let (status, body) = app
        .upload(&alice, "cat.png", "image/png", &PNG[..PNG.len() - 12])
        .await;
    assert_error(status, &body, 415, "unsupported_media_type");
}

async fn a_picture_is_at_most_5_mb(app: TestApp) {
    let alice = app.agent("alice@example.com", &[ALICES]).await;
    let (status, upload) = app
        .upload(&alice, "big.jpg", "image/jpeg", &jpeg(FIVE_MB))
        .await;
    assert_eq!(status, 201, "exactly 5 MB: {upload}");
    assert_eq!(upload["size"], FIVE_MB);

    let (status, body) = app
        .upload(&alice, "big.jpg", "image/jpeg", &jpeg(FIVE_MB + 1))
        .await;
    assert_error(status, &body, 413, "file_too_large");

    // Past the route's own limit, the body is cut off where the limit is, and still answered.
    let (status, body) = app
        .upload(
            &alice,
            "huge.jpg",
            "image/jpeg",
            &jpeg(FIVE_MB + 512 * 1024),
        )
        .await;
    assert_error(status, &body, 413, "file_too_large");

    // The rest of the API keeps its own limit.
    let r = app
        .http
        .post(app.url("/api/crm/sms/replies"))
        .bearer_auth(&alice.token)
        .header("content-type", "application/json")
        .body(vec![b' '; 300 * 1024])
        .send()
        .await
        .unwrap();
    let (status, body) = read(r).await;
    assert_error(status, &body, 413, "payload_too_large");
}

async fn a_malformed_upload_gets_our_error_json(app: TestApp) {
    let alice = app.agent("alice@example.com", &[ALICES]).await;

    let (status, body) = app
        .upload_parts(
            Some(&alice),
            &[Part {
                name: "caption",
                filename: None,
                content_type: None,
                bytes: b"hello",
            }],
        )
        .await;
    assert_error(status, &body, 422, "invalid_field");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("file"),
        "{body}"
    );

    let (status, body) = app.upload(&alice, "empty.png", "image/png", b"").await;
    assert_error(status, &body, 422, "invalid_field");

    let (status, body) = app
        .upload_parts(
            Some(&alice),
            &[
                Part::file("a.png", "image/png", PNG),
                Part::file("b.png", "image/png", PNG),
            ],
        )
        .await;
    assert_error(status, &body, 422, "invalid_field");

    let send = |content_type: &str, body: Vec<u8>| {
        app.http
            .post(app.url("/api/crm/sms/uploads"))
            .bearer_auth(&alice.token)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let (status, body) = read(send("application/json", b"{}".to_vec()).await.unwrap()).await;
    assert_error(status, &body, 415, "unsupported_media_type");
    let (status, body) = read(send("multipart/form-data", multipart(&[]).1).await.unwrap()).await;
    assert_error(status, &body, 400, "bad_request");
    let (content_type, empty) = multipart(&[]);
    let (status, body) = read(send(&content_type, empty).await.unwrap()).await;
    assert_error(status, &body, 422, "invalid_field");
    let (_, mut cut) = multipart(&[Part::file("a.png", "image/png", PNG)]);
    cut.truncate(cut.len() - 20);
    let (status, body) = read(send(&content_type, cut).await.unwrap()).await;
    assert_error(status, &body, 400, "bad_request");

    let (status, body) = app
        .upload_parts(None, &[Part::file("a.png", "image/png", PNG)])
        .await;
    assert_error(status, &body, 401, "unauthorized");
}

async fn uploads_never_sent_are_pruned_after_a_day(app: TestApp) {
    let alice = app.agent("alice@example.com", &[ALICES]).await;
    let conversation = app.conversation(&alice, "+14155550123").await;
    let sent = app.uploaded(&alice, PNG).await;
    let unsent = app.uploaded(&alice, GIF).await;
    let (status, message) = app
        .send_pictures(&alice, &conversation, "", &[&sent], "c-1")
        .await;
    assert_eq!(status, 202, "{message}");

    // As housekeeping prunes: nothing uploaded within the day goes.
    assert_eq!(app.store.prune_uploads().await.unwrap(), 0);
    // A day later: the upload never sent goes, the one a message holds stays.
    app.scalar("UPDATE uploads SET created_at = '2000-01-01T00:00:00Z' RETURNING id")
        .await;
    let aged = app
        .scalar("SELECT COUNT(*) FROM uploads WHERE created_at < '2001-01-01T00:00:00Z'")
        .await;
    assert_eq!(aged, 2);
    assert_eq!(app.store.prune_uploads().await.unwrap(), 1);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM uploads").await, 1);

    let (status, body) = app
        .send_pictures(&alice, &conversation, "", &[&unsent], "c-2")
        .await;
    assert_error(status, &body, 422, "invalid_field");
    let (status, again) = app
        .send_pictures(&alice, &conversation, "", &[&sent], "c-3")
        .await;
    assert_eq!(status, 202, "a picture sent can be sent again: {again}");
    let id = message["message"]["id"].as_str().unwrap();
    let r = app
        .http
        .get(app.url(&format!("/api/crm/sms/messages/{id}/media/0")))
        .bearer_auth(&alice.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), PNG);
}

/// What `/proc/self/status` says of this process, in KiB.
fn proc_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"))
}

/// 20 uploads of 5 MB at once raise this process's resident memory (server and client) by
/// less than 150 MB at its peak: each picture is held once, in one buffer. The client sends
/// one shared body, so what grows is the server's. Run by hand, one backend at a time:
/// `cargo test --test api -- --ignored --test-threads=1 memory_of_20_uploads`.
async fn twenty_uploads_of_5_mb_at_once(app: TestApp) {
    const UPLOADS: usize = 20;
    let alice = app.agent("alice@example.com", &[ALICES]).await;
    let (content_type, body) = multipart(&[Part::file("big.jpg", "image/jpeg", &jpeg(FIVE_MB))]);
    let body = axum::body::Bytes::from(body);
    // One upload first, so that what every upload allocates once (pools, statements) is
    // not counted.
    let (status, _) = app
        .upload(&alice, "big.jpg", "image/jpeg", &jpeg(FIVE_MB))
        .await;
    assert_eq!(status, 201);
    let rss_before = proc_kib("VmRSS:");
    // Resets the peak (VmHWM) to the resident memory now.
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let uploads = (0..UPLOADS).map(|_| {
        app.http
            .post(app.url("/api/crm/sms/uploads"))
            .bearer_auth(&alice.token)
            .header("content-type", content_type.clone())
            .body(body.clone())
            .send()
    });
    let answers = futures_util::future::join_all(uploads).await;
    let peak = proc_kib("VmHWM:");
    let rss_after = proc_kib("VmRSS:");
    for a in answers {
        assert_eq!(a.unwrap().status(), 201);
    }
    let raised = (peak - rss_before) as f64 / 1024.0;
    println!(
        "{UPLOADS} uploads of 5 MB at once: resident {:.1} MiB before, peak {:.1} MiB (+{raised:.1} MiB), {:.1} MiB after",
        rss_before as f64 / 1024.0,
        peak as f64 / 1024.0,
        rss_after as f64 / 1024.0,
    );
    assert!(raised < 150.0, "the peak rose by {raised:.1} MiB");
}

mod memory_of_20_uploads {
    use crate::helpers::{Backend, TestApp, run};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "a measurement: run by hand, alone"]
    async fn sqlite() {
        run(
            Backend::Sqlite,
            TestApp::builder(),
            super::twenty_uploads_of_5_mb_at_once,
        )
        .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "a measurement: run by hand, alone"]
    async fn postgres() {
        run(
            Backend::Postgres,
            TestApp::builder(),
            super::twenty_uploads_of_5_mb_at_once,
        )
        .await
    }
}
