//! Sending pictures (docs/api.md, "Sending pictures"): a send names the sender's uploads, the
//! Messages API call carries one `MediaUrl` per picture, a link Twilio fetches without a
//! session for 7 days, the message lists its pictures for the agents, a retry keeps them,
//! and the simulator fetches them as Twilio does (failing the message with 12300 if it
//! cannot).

use std::sync::Arc;

use axum::extract::State;
use axum::routing::post;
use axum::{Form, Router};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::helpers::{Agent, GIF, PNG, PUBLIC_URL, Script, TestApp, jpeg, read, wait_until};
use crate::on_both_backends;

on_both_backends! {
    pictures_go_to_twilio_as_media_urls: FakeTwilio,
    a_media_link_needs_no_session_and_only_its_token: FakeTwilio,
    only_the_senders_own_uploads_up_to_10_and_5_mb: FakeTwilio,
    a_retry_keeps_its_pictures: FakeTwilio,
    a_local_public_url_refuses_pictures: FakeTwilio.env("PUBLIC_URL", "http://localhost:3000"),
    the_simulator_fetches_the_pictures_and_delivers: Simulator,
    the_simulator_fails_a_picture_it_cannot_fetch_with_12300: Simulator,
}

const ALICES: &str = "+15550001000";
const BOBS: &str = "+15550002000";
const CONTACT: &str = "+14155550123";

/// Alice, her conversation with the contact, and a picture she uploaded.
async fn alice_with_a_picture(app: &TestApp) -> (Agent, String, String) {
    let alice = app.agent("alice@example.com", &[ALICES]).await;
    let conversation = app.conversation(&alice, CONTACT).await;
    let picture = app.uploaded(&alice, PNG).await;
    (alice, conversation, picture)
}

/// `GET` a URL of ours without a session: status, headers, body.
async fn fetch(app: &TestApp, path_or_url: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let url = if path_or_url.starts_with('/') {
        app.url(path_or_url)
    } else {
        path_or_url.replace(PUBLIC_URL, &app.addr)
    };
    let r = app.http.get(url).send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.bytes().await.unwrap().to_vec())
}

fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    h.get(name).map(|v| v.to_str().unwrap()).unwrap_or_default()
}

/// Waits for the `n`th create to reach the fake Twilio and returns its `MediaUrl`s.
async fn media_urls_of_create(app: &TestApp, n: usize) -> Vec<String> {
    let fake = app.fake.as_ref().unwrap();
    wait_until(&format!("create {n} at Twilio"), async || {
        fake.sent_count() > n
    })
    .await;
    fake.media_urls(n)
}

async fn pictures_go_to_twilio_as_media_urls(app: TestApp) {
    let alice = app.agent("alice@example.com", &[ALICES]).await;
    let conversation = app.conversation(&alice, CONTACT).await;
    let photo = jpeg(2048);
    let first = app.uploaded(&alice, &photo).await;
    let second = app.uploaded(&alice, GIF).await;

    let (status, sent) = app
        .send_pictures(&alice, &conversation, "", &[&first, &second], "c-1")
        .await;
    assert_eq!(status, 202, "{sent}");
    let message = &sent["message"];
    let id = message["id"].as_str().unwrap();
    assert_eq!(
        message["media"],
        json!([
            {"url": format!("/api/crm/sms/messages/{id}/media/0"), "contentType": "image/jpeg"},
            {"url": format!("/api/crm/sms/messages/{id}/media/1"), "contentType": "image/gif"},
        ]),
        "listed as inbound media are, with no link token in sight"
    );
    assert_eq!(message["body"], "");
    assert_eq!(message["segments"], 1);

    let urls = media_urls_of_create(&app, 0).await;
    assert_eq!(urls.len(), 2, "{urls:?}");
    let prefix = format!("{PUBLIC_URL}/media/out/");
    for url in &urls {
        let token = url.strip_prefix(&prefix).expect(url);
        assert!(
            token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit()),
            "128 random bits: {url}"
        );
    }
    let fake = app.fake.as_ref().unwrap();
    let create = fake.state.sent.lock().unwrap()[0].clone();
    assert!(
        !create.contains_key("Body"),
        "no empty Body beside pictures: {create:?}"
    );
    for (url, (bytes, content_type)) in urls
        .iter()
        .zip([(&photo[..], "image/jpeg"), (GIF, "image/gif")])
    {
        let (status, h, body) = fetch(&app, url).await;
        assert_eq!(status, 200, "{url}");
        assert_eq!(body, bytes);
        assert_eq!(header(&h, "content-type"), content_type);
        assert_eq!(header(&h, "x-content-type-options"), "nosniff");
        assert!(header(&h, "cache-control").starts_with("private"), "{h:?}");
    }
    app.wait_status(&alice, id, "queued").await;

    // The agents see them through the message, with a session only.
    let (status, _, _) = fetch(&app, &format!("/api/crm/sms/messages/{id}/media/0")).await;
    assert_eq!(status, 401);
    let r = app
        .http
        .get(app.url(&format!("/api/crm/sms/messages/{id}/media/1")))
        .bearer_auth(&alice.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(r.headers(), "content-type"), "image/gif");
    assert_eq!(r.bytes().await.unwrap().as_ref(), GIF);

    // The same clientId with the same text and pictures is the same message; with other
    // pictures it is a clientId reused.
    let (status, again) = app
        .send_pictures(&alice, &conversation, "", &[&first, &second], "c-1")
        .await;
    assert_eq!((status, &again["message"]["id"]), (200, &message["id"]));
    let (status, other) = app
        .send_pictures(&alice, &conversation, "", &[&second, &first], "c-1")
        .await;
    assert_eq!(status, 409, "{other}");
    assert_eq!(other["error"]["code"], "client_id_reused");
    let (status, captioned) = app
        .send_pictures(&alice, &conversation, "Look!", &[&first], "c-2")
        .await;
    assert_eq!(status, 202, "{captioned}");
    let urls = media_urls_of_create(&app, 1).await;
    assert_eq!(urls.len(), 1);
    assert_eq!(fake.state.sent.lock().unwrap()[1]["Body"], "Look!");
    assert_eq!(fake.sent_count(), 2, "nothing sent twice");
}

async fn a_media_link_needs_no_session_and_only_its_token(app: TestApp) {
    let (alice, conversation, picture) = alice_with_a_picture(&app).await;
    let (status, sent) = app
        .send_pictures(&alice, &conversation, "", &[&picture], "c-1")
        .await;
    assert_eq!(status, 202, "{sent}");
    let url = media_urls_of_create(&app, 0).await.remove(0);
    let (status, _, body) = fetch(&app, &url).await;
    assert_eq!((status, body.as_slice()), (200, PNG));

    let token = url.rsplit('/').next().unwrap();
    let flipped = format!(
        "{}{}",
        &token[..31],
        if token.ends_with('0') { '1' } else { '0' }
    );
    for wrong in [
        flipped.as_str(),
        "00000000000000000000000000000000",
        &token[..31],
        &token.to_uppercase(),
    ] {
        let (status, _, body) = fetch(&app, &format!("/media/out/{wrong}")).await;
        assert_eq!(status, 404, "{wrong}");
        let error: Value = serde_json::from_slice(&body).expect("our error JSON");
        assert_eq!(error["error"]["code"], "not_found");
    }

    // Links last 7 days from the send; past that, the same token is 404.
    let expired = app
        .scalar("UPDATE message_media SET expires_at = '2000-01-01T00:00:00Z' RETURNING n")
        .await;
    assert_eq!(expired, 0);
    let (status, _, _) = fetch(&app, &url).await;
    assert_eq!(status, 404, "an expired link");
}

async fn only_the_senders_own_uploads_up_to_10_and_5_mb(app: TestApp) {
    let alice = app.agent("alice@example.com", &[ALICES]).await;
    let bob = app.agent("bob@example.com", &[BOBS]).await;
    let conversation = app.conversation(&alice, CONTACT).await;
    let bobs: &str = &app.uploaded(&bob, PNG).await;
    let mine: &str = &app.uploaded(&alice, PNG).await;

    let refused = async |media: Vec<&str>, body: &str, why: &str| {
        let (status, answer) = app
            .send_pictures(&alice, &conversation, body, &media, "c-x")
            .await;
        assert_eq!(status, 422, "{why}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_field", "{why}: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("mediaIds")
                || why == "no text, no picture",
            "{why}: {answer}"
        );
    };
    refused(vec![bobs], "", "someone else's upload").await;
    refused(vec!["999999"], "", "an unknown upload").await;
    refused(vec![mine, mine], "", "one picture twice").await;
    refused(vec![mine; 11], "", "eleven pictures").await;
    refused(vec![], "", "no text, no picture").await;
    let (status, answer) = app
        .send_pictures(&alice, &conversation, "", &["x1"], "c-y")
        .await;
    assert_eq!(status, 422, "{answer}");

    let big = jpeg(3 * 1024 * 1024);
    let (one, two) = (
        app.uploaded(&alice, &big).await,
        app.uploaded(&alice, &big).await,
    );
    refused(vec![one.as_str(), two.as_str()], "", "6 MB in all").await;

    let mut ten = Vec::new();
    for _ in 0..10 {
        ten.push(app.uploaded(&alice, GIF).await);
    }
    let ten: Vec<&str> = ten.iter().map(String::as_str).collect();
    let (status, sent) = app
        .send_pictures(&alice, &conversation, "ten", &ten, "c-10")
        .await;
    assert_eq!(status, 202, "{sent}");
    assert_eq!(sent["message"]["media"].as_array().unwrap().len(), 10);
    assert_eq!(media_urls_of_create(&app, 0).await.len(), 10);
    assert_eq!(
        app.fake.as_ref().unwrap().sent_count(),
        1,
        "nothing refused was sent"
    );
}

async fn a_retry_keeps_its_pictures(app: TestApp) {
    let (alice, conversation, picture) = alice_with_a_picture(&app).await;
    let fake = app.fake.as_ref().unwrap();
    fake.script(Script::Error {
        status: 400,
        code: 21614,
        message: "not a mobile number",
    });
    let (status, sent) = app
        .send_pictures(&alice, &conversation, "hi", &[&picture], "c-1")
        .await;
    assert_eq!(status, 202, "{sent}");
    let id = sent["message"]["id"].as_str().unwrap();
    app.wait_status(&alice, id, "failed").await;
    let first = media_urls_of_create(&app, 0).await;

    let (status, retried) = app
        .post_json(
            &format!("/api/crm/sms/messages/{id}/retry"),
            Some(&alice),
            json!({"clientId": "c-2"}),
        )
        .await;
    assert_eq!(status, 202, "{retried}");
    let retry = &retried["message"];
    let retry_id = retry["id"].as_str().unwrap();
    assert_eq!(retry["body"], "hi");
    assert_eq!(
        retry["media"],
        json!([{"url": format!("/api/crm/sms/messages/{retry_id}/media/0"), "contentType": "image/png"}])
    );
    let second = media_urls_of_create(&app, 1).await;
    assert_eq!(second.len(), 1);
    assert_ne!(second, first, "a new send, a new link");
    let (status, _, body) = fetch(&app, &second[0]).await;
    assert_eq!((status, body.as_slice()), (200, PNG));
}

async fn a_local_public_url_refuses_pictures(app: TestApp) {
    let (alice, conversation, picture) = alice_with_a_picture(&app).await;
    let (status, refused) = app
        .send_pictures(&alice, &conversation, "", &[&picture], "c-1")
        .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["code"], "media_needs_public_url");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("PUBLIC_URL"),
        "{refused}"
    );
    let (status, sent) = app
        .send_pictures(&alice, &conversation, "text only", &[], "c-2")
        .await;
    assert_eq!(status, 202, "{sent}");
}

async fn the_simulator_fetches_the_pictures_and_delivers(app: TestApp) {
    let (alice, conversation, picture) = alice_with_a_picture(&app).await;
    let (status, sent) = app
        .send_pictures(&alice, &conversation, "", &[&picture], "c-1")
        .await;
    assert_eq!(status, 202, "{sent}");
    let id = sent["message"]["id"].as_str().unwrap();
    let delivered = app.wait_status(&alice, id, "delivered").await;
    assert_eq!(delivered.media.len(), 1);
    assert!(delivered.twilio_sid.unwrap().starts_with("MM"));
}

/// Posts a create to the simulator as the Twilio client does, with a `MediaUrl` nothing
/// answers, and reads the status callbacks it posts.
async fn the_simulator_fails_a_picture_it_cannot_fetch_with_12300(app: TestApp) {
    let (tx, mut callbacks) = mpsc::unbounded_channel::<Vec<(String, String)>>();
    let receiver = Router::new()
        .route(
            "/status",
            post(
                async |State(tx): State<Arc<mpsc::UnboundedSender<_>>>,
                       Form(p): Form<Vec<(String, String)>>| {
                    let _ = tx.send(p);
                },
            ),
        )
        .with_state(Arc::new(tx));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let callback = format!("http://{}/status", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await });
    let nothing_there = {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/media/out/x.png", closed.local_addr().unwrap())
    };

    let sim = app.simulator.as_ref().unwrap();
    let r = app
        .http
        .post(app.url(&format!(
            "/dev/twilio/2010-04-01/Accounts/{}/Messages.json",
            sim.account_sid
        )))
        .basic_auth(&sim.account_sid, Some(&sim.auth_token))
        .form(&[
            ("To", CONTACT),
            ("From", ALICES),
            ("MediaUrl", nothing_there.as_str()),
            ("StatusCallback", callback.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let (status, created) = read(r).await;
    assert_eq!(status, 201, "Twilio takes it, then fetches: {created}");
    assert_eq!(created["num_media"], "1");

    let posted = tokio::time::timeout(crate::helpers::WAIT, callbacks.recv())
        .await
        .expect("a status callback")
        .unwrap();
    let param = |name: &str| {
        posted
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(param("MessageStatus"), Some("failed"), "{posted:?}");
    assert_eq!(param("ErrorCode"), Some("12300"), "{posted:?}");
    assert_eq!(param("MessageSid"), created["sid"].as_str());
}
