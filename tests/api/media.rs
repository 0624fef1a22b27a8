//! The media proxy is inert and no SSRF tool: scriptable media is a download with a
//! sandbox CSP, content types are parsed, and media is fetched only from Twilio (live mode)
//! or from public addresses (simulator mode), redirects included.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};

use crate::helpers::{Agent, TestApp, new_sid};
use crate::on_both_backends;

on_both_backends! {
    scriptable_media_is_a_sandboxed_download: FakeTwilio,
    media_content_types_are_parsed_never_a_500: FakeTwilio,
    live_media_is_fetched_from_twilio_only_redirects_included: FakeTwilio,
    simulator_media_never_reaches_inside_addresses: Simulator,
}

/// Posts an inbound MMS with these `(url, content type)` items; returns the message.
async fn mms(app: &TestApp, agent: &Agent, items: &[(&str, &str)]) -> Value {
    let sid = new_sid().replacen("SM", "MM", 1);
    let n = items.len().to_string();
    let mut params: Vec<(String, String)> = vec![
        ("MessageSid".into(), sid),
        ("From".into(), "+14155550123".into()),
        ("To".into(), "+15550001000".into()),
        ("Body".into(), String::new()),
        ("NumMedia".into(), n),
    ];
    for (i, (url, ct)) in items.iter().enumerate() {
        params.push((format!("MediaUrl{i}"), url.to_string()));
        params.push((format!("MediaContentType{i}"), ct.to_string()));
    }
    let refs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let r = app.post_webhook("/api/crm/sms/webhook", &refs).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    newest_message(app, agent).await
}

async fn newest_message(app: &TestApp, agent: &Agent) -> Value {
    let (_, sync) = app
        .get("/api/crm/sms/sync?since=0&limit=1000", Some(agent))
        .await;
    sync["messages"].as_array().unwrap().last().unwrap().clone()
}

/// `GET` media `n` of message `m`: status, headers, body.
async fn media(
    app: &TestApp,
    agent: &Agent,
    m: &Value,
    n: usize,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let id = m["id"].as_str().unwrap();
    let r = app
        .http
        .get(app.url(&format!("/api/crm/sms/messages/{id}/media/{n}")))
        .bearer_auth(&agent.token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.bytes().await.unwrap().to_vec())
}

fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    h.get(name).map(|v| v.to_str().unwrap()).unwrap_or_default()
}

fn assert_not_found_json(status: u16, body: &[u8], what: &str) {
    assert_eq!(status, 404, "{what}: {}", String::from_utf8_lossy(body));
    let v: Value = serde_json::from_slice(body).expect("the error JSON");
    assert_eq!(v["error"]["code"], "not_found", "{what}");
}

async fn scriptable_media_is_a_sandboxed_download(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let fake = app.fake.as_ref().unwrap();
    let html = b"<script src=\"1\"></script><script>localStorage.x = 1</script>";
    let cases: &[(&str, &str, &str)] = &[
        // (name, what upstream says, what the webhook said)
        ("page.html", "text/html; charset=utf-8", "image/jpeg"),
        ("code.js", "application/javascript", "image/png"),
        ("drawing.svg", "image/svg+xml", "image/svg+xml"),
        ("page.xhtml", "application/xhtml+xml", "image/gif"),
        ("feed.xml", "text/xml", "text/xml"),
        (
            "mixed",
            "multipart/x-mixed-replace; boundary=x",
            "image/png",
        ),
        ("style.css", "text/css", "image/png"),
        ("doc.pdf", "application/pdf", "application/pdf"),
        ("cat.png", "image/png", "image/png"),
        ("clip.mp4", "video/mp4", "video/mp4"),
        ("voice.ogg", "audio/ogg; codecs=opus", "audio/ogg"),
    ];
    let urls: Vec<String> = cases
        .iter()
        .map(|(name, upstream, _)| fake.media_url(name, upstream, html))
        .collect();
    let mut m = Value::Null;
    for chunk in 0..2 {
        let items: Vec<(&str, &str)> = cases
            .iter()
            .zip(&urls)
            .skip(chunk * 6)
            .take(6)
            .map(|((_, _, stored), url)| (url.as_str(), *stored))
            .collect();
        let message = mms(&app, &alice, &items).await;
        for (n, (name, upstream, _)) in cases.iter().skip(chunk * 6).take(6).enumerate() {
            let (status, h, body) = media(&app, &alice, &message, n).await;
            assert_eq!(status, 200, "{name}");
            assert_eq!(body, html, "{name}: the bytes pass through");
            assert_eq!(header(&h, "x-content-type-options"), "nosniff", "{name}");
            assert_eq!(
                header(&h, "content-security-policy"),
                "sandbox",
                "{name}: the page's CSP must not replace the sandbox"
            );
            let inline = ["image/png", "video/mp4", "audio/ogg; codecs=opus"].contains(upstream);
            if inline {
                assert_eq!(header(&h, "content-disposition"), "inline", "{name}");
                assert_eq!(
                    header(&h, "content-type"),
                    upstream.split(';').next().unwrap(),
                    "{name}"
                );
            } else {
                let id = message["id"].as_str().unwrap();
                let disposition = header(&h, "content-disposition");
                assert!(
                    disposition.starts_with(&format!("attachment; filename=\"media-{id}-{n}.")),
                    "{name}: {disposition}"
                );
                assert_eq!(
                    header(&h, "content-type"),
                    "application/octet-stream",
                    "{name}: no type a <script> or <link> on our origin would accept"
                );
            }
        }
        m = message;
    }
    assert_eq!(m["media"][1]["contentType"], "application/pdf");

    // The pages connect to their own origin only.
    let r = app.http.get(app.url("/login")).send().await.unwrap();
    let csp = header(r.headers(), "content-security-policy");
    assert!(csp.contains("connect-src 'self';"), "{csp}");
    assert!(!csp.contains("ws:") && !csp.contains("wss:"), "{csp}");
}

async fn media_content_types_are_parsed_never_a_500(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let fake = app.fake.as_ref().unwrap();
    let untyped = fake.media_url("untyped", "", b"GIF89a");
    let typed = fake.media_url("typed", "image/GIF", b"GIF89a");
    let m = mms(
        &app,
        &alice,
        &[
            (&untyped, "text/html\r\nSet-Cookie: a=b"),
            (&untyped, "image/png\u{1}"),
            (&untyped, ""),
            (&untyped, "image/jpeg; name=\"cat.jpg\""),
            (&typed, "text/html\r\nX: 1"),
        ],
    )
    .await;
    let stored: Vec<&str> = m["media"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["contentType"].as_str().unwrap())
        .collect();
    assert_eq!(
        stored,
        [
            "application/octet-stream",
            "application/octet-stream",
            "application/octet-stream",
            "image/jpeg",
            "application/octet-stream",
        ]
    );
    let expected = [
        ("application/octet-stream", "attachment"),
        ("application/octet-stream", "attachment"),
        ("application/octet-stream", "attachment"),
        // No type upstream: the one Twilio reported, once it parsed.
        ("image/jpeg", "inline"),
        // Upstream's own type wins.
        ("image/gif", "inline"),
    ];
    for (n, (ct, disposition)) in expected.iter().enumerate() {
        let (status, h, body) = media(&app, &alice, &m, n).await;
        assert_eq!(status, 200, "media {n}: {}", String::from_utf8_lossy(&body));
        assert_eq!(header(&h, "content-type"), *ct, "media {n}");
        assert!(
            header(&h, "content-disposition").starts_with(disposition),
            "media {n}"
        );
        assert_eq!(body, b"GIF89a");
    }
}

/// A loopback service that the proxy must never reach; counts the requests it gets.
async fn inside_service(bind: &str) -> Option<(String, Arc<AtomicUsize>)> {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = Router::new().fallback(get(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        async { ([("content-type", "image/png")], "internal secret") }
    }));
    let listener = tokio::net::TcpListener::bind(bind).await.ok()?;
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Some((port.to_string(), hits))
}

async fn live_media_is_fetched_from_twilio_only_redirects_included(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let fake = app.fake.as_ref().unwrap();
    let (port, hits) = inside_service("127.0.0.1:0").await.unwrap();
    let fake_port = fake.url.rsplit(':').next().unwrap();
    let cat = fake.media_url("cat.png", "image/png", b"cat");
    // The API's own origin may redirect within itself.
    let same_origin = fake.redirect_url("same", &cat);
    let inside = format!("http://127.0.0.1:{port}/secret.png");
    let to_inside = fake.redirect_url("inside", &inside);
    let to_localhost = fake.redirect_url(
        "localhost",
        &format!("http://localhost:{fake_port}/media/cat.png"),
    );
    let m = mms(
        &app,
        &alice,
        &[
            (&same_origin, "image/png"),
            (&to_inside, "image/png"),
            (&to_localhost, "image/png"),
            (&inside, "image/png"),
            (
                &format!("http://localhost:{fake_port}/media/cat.png"),
                "image/png",
            ),
        ],
    )
    .await;
    let (status, _, body) = media(&app, &alice, &m, 0).await;
    assert_eq!((status, body.as_slice()), (200, b"cat".as_slice()));
    for n in 1..5 {
        let (status, _, body) = media(&app, &alice, &m, n).await;
        assert_not_found_json(status, &body, &format!("media {n}"));
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "nothing reached the inside service"
    );
}

async fn simulator_media_never_reaches_inside_addresses(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let (port, hits) = inside_service("127.0.0.1:0").await.unwrap();
    let mut urls = vec![
        format!("http://127.0.0.1:{port}/a.png"),
        format!("http://localhost:{port}/b.png"),
        format!("http://2130706433:{port}/c.png"),
        format!("http://[::ffff:127.0.0.1]:{port}/d.png"),
        format!("http://0.0.0.0:{port}/e.png"),
        // The simulator's own fake Twilio API.
        format!("{}/dev/twilio/2010-04-01/Accounts", app.addr),
    ];
    let v6 = inside_service("[::1]:0").await;
    if let Some((port6, _)) = &v6 {
        urls.push(format!("http://[::1]:{port6}/f.png"));
    }
    // Refused before any connection is attempted.
    urls.push("http://10.0.0.1/g.png".into());
    urls.push("http://169.254.169.254/latest/meta-data/h.png".into());
    urls.push("http://192.168.0.1/i.png".into());
    let (status, body) = app
        .post_json(
            "/dev/simulate/inbound",
            Some(&alice),
            json!({"from": "+14155550123", "to": "+15550001000", "body": "", "mediaUrls": urls}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["webhookStatus"], 200, "{body}");
    let m = newest_message(&app, &alice).await;
    assert_eq!(m["media"].as_array().unwrap().len(), urls.len());
    for (n, url) in urls.iter().enumerate() {
        let (status, _, body) = media(&app, &alice, &m, n).await;
        assert_not_found_json(status, &body, url);
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0, "nothing reached 127.0.0.1");
    if let Some((_, hits6)) = v6 {
        assert_eq!(hits6.load(Ordering::SeqCst), 0, "nothing reached [::1]");
    }
}
