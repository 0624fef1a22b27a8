//! `/metrics` (docs/operations.md, "Monitoring"): the token rule, the content type, every named family
//! after the action it counts, and every family from a server's first scrape. The recorder
//! is global to this test process and shared by the servers of tests running at once, so
//! counters are compared before and after (they may have grown by more), never read as
//! absolute values; a first scrape is a server's process of its own.

use serde_json::json;
use smsdesk::api::health::{Readiness, Ready};

use crate::helpers::{
    Backend, FAKE_ACCOUNT, ServerProcess, TestApp, new_sid, read, read_as, wait_until,
    with_database,
};
use crate::on_both_backends;

on_both_backends! {
    metrics_are_open_without_a_token: Simulator,
    metrics_need_the_token_when_one_is_set: Simulator.env("METRICS_TOKEN", "s3cret-metrics"),
    every_family_counts_what_happened: FakeTwilio,
    readiness_detail_is_open_without_a_token: Simulator,
    readiness_detail_needs_the_token_when_one_is_set: Simulator.env("METRICS_TOKEN", "s3cret-metrics"),
}

const NUMBER: &str = "+15550001000";
const CONTACT: &str = "+14155550123";

async fn scrape(app: &TestApp) -> String {
    scrape_at(&app.http, &app.addr).await
}

async fn scrape_at(http: &reqwest::Client, addr: &str) -> String {
    let r = http.get(format!("{addr}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/plain; version=0.0.4");
    r.text().await.unwrap()
}

/// The sum of the samples `name` carrying every one of `labels`; `None` when there is none.
fn samples(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(series, _)| {
            series.split('{').next() == Some(name)
                && labels
                    .iter()
                    .all(|(k, v)| series.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|(_, value)| value.parse::<f64>().unwrap())
        .reduce(|a, b| a + b)
}

/// The value of the sample `name` carrying every one of `labels`; 0 when there is none.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    samples(text, name, labels).unwrap_or(0.0)
}

async fn metrics_are_open_without_a_token(app: TestApp) {
    let text = scrape(&app).await;
    assert!(text.contains("process_resident_memory_bytes"), "{text}");
}

async fn metrics_need_the_token_when_one_is_set(app: TestApp) {
    let get = |auth: Option<&'static str>| {
        let mut req = app.http.get(app.url("/metrics"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        async move { read(req.send().await.unwrap()).await }
    };
    for wrong in [
        None,
        Some("Bearer wrong"),
        Some("Bearer s3cret-metric"),
        Some("Bearer s3cret-metricss"),
        Some("s3cret-metrics"),
        Some("Basic czNjcmV0LW1ldHJpY3M="),
    ] {
        let (status, body) = get(wrong).await;
        assert_eq!(status, 401, "{wrong:?}");
        assert_eq!(body["error"]["code"], "unauthorized");
    }
    let (status, body) = get(Some("Bearer s3cret-metrics")).await;
    assert_eq!(status, 200);
    assert!(body.as_str().unwrap().contains("# TYPE"), "{body}");
}

/// `/readyz` with `authorization` (a whole header value), as `T`.
async fn readyz_as<T: serde::de::DeserializeOwned>(
    app: &TestApp,
    authorization: Option<&str>,
) -> (u16, T) {
    let mut req = app.http.get(app.url("/readyz"));
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    read_as(req.send().await.unwrap()).await
}

async fn readiness_detail_is_open_without_a_token(app: TestApp) {
    let alice = app.agent("alice@example.com", &[NUMBER]).await;
    let _socket = app.socket(&alice).await;
    let (status, ready) = readyz_as::<Readiness>(&app, None).await;
    assert_eq!(status, 200);
    assert_eq!(ready.status, "ready");
    assert_eq!(ready.queue.unwrap().depth, 0);
    assert_eq!(ready.sockets, 1);
}

async fn readiness_detail_needs_the_token_when_one_is_set(app: TestApp) {
    let alice = app.agent("alice@example.com", &[NUMBER]).await;
    let _socket = app.socket(&alice).await;
    let agents_token = format!("Bearer {}", alice.token);
    for wrong in [
        None,
        Some("Bearer wrong"),
        Some("Bearer s3cret-metricss"),
        Some("s3cret-metrics"),
        Some(agents_token.as_str()),
    ] {
        // Up, as a balancer needs to know, and nothing else.
        let (status, body) = readyz_as::<serde_json::Value>(&app, wrong).await;
        assert_eq!(
            (status, &body),
            (200, &json!({"status": "ready"})),
            "{wrong:?}"
        );
        let (_, ready) = readyz_as::<Ready>(&app, wrong).await;
        assert_eq!(ready.status, "ready");
    }
    let (status, ready) = readyz_as::<Readiness>(&app, Some("Bearer s3cret-metrics")).await;
    assert_eq!(status, 200);
    assert_eq!(ready.queue.unwrap().depth, 0);
    assert_eq!(ready.sockets, 1);
    assert!(["sqlite", "postgres"].contains(&ready.database.as_str()));
}

async fn every_family_counts_what_happened(app: TestApp) {
    let before = scrape(&app).await;
    let webhooks = |text: &str, kind: &str, outcome: &str| {
        sample(
            text,
            "smsdesk_webhooks_total",
            &[("kind", kind), ("outcome", outcome)],
        )
    };
    let alice = app.agent("alice@example.com", &[NUMBER]).await;
    let mut socket = app.socket(&alice).await;

    // Inbound: stored, then the same sid again, then unsigned, then without a sid.
    let sid = new_sid();
    let params = [
        ("MessageSid", sid.as_str()),
        ("AccountSid", FAKE_ACCOUNT),
        ("From", CONTACT),
        ("To", NUMBER),
        ("Body", "hello"),
        ("NumMedia", "0"),
    ];
    for _ in 0..2 {
        let r = app.post_webhook("/api/crm/sms/webhook", &params).await;
        assert_eq!(r.status(), 200);
    }
    socket.next("message:new").await;
    let r = app
        .http
        .post(app.url("/api/crm/sms/webhook"))
        .form(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = app.post_webhook("/api/crm/sms/webhook", &params[1..]).await;
    assert_eq!(r.status(), 400);

    // Sent through the fake Twilio; its status reported twice.
    let conversation = app.conversation(&alice, CONTACT).await;
    let (status, queued) = app.send(&alice, &conversation, "hi", "metrics-1").await;
    assert_eq!(status, 202, "{queued}");
    let id = queued["message"]["id"].as_str().unwrap().to_owned();
    let sent = app.wait_status(&alice, &id, "queued").await;
    let sent_sid = sent.twilio_sid.unwrap();
    for _ in 0..2 {
        let r = app
            .post_webhook(
                "/api/crm/sms/status-webhook",
                &[("MessageSid", &sent_sid), ("MessageStatus", "sent")],
            )
            .await;
        assert_eq!(r.status(), 200);
    }
    let (status, _) = app.get("/api/crm/sms/sync?since=0", Some(&alice)).await;
    assert_eq!(status, 200);

    let after = wait_until("the status callbacks counted", async || {
        let text = scrape(&app).await;
        (webhooks(&text, "status", "duplicate") > webhooks(&before, "status", "duplicate"))
            .then_some(text)
    })
    .await;
    for (kind, outcome) in [
        ("inbound", "ok"),
        ("inbound", "duplicate"),
        ("inbound", "forbidden"),
        ("inbound", "bad_request"),
        ("status", "ok"),
        ("status", "duplicate"),
    ] {
        assert!(
            webhooks(&after, kind, outcome) >= webhooks(&before, kind, outcome) + 1.0,
            "{kind} {outcome}:\n{after}"
        );
    }
    let grew = |name: &str, labels: &[(&str, &str)]| {
        assert!(
            sample(&after, name, labels) > sample(&before, name, labels),
            "{name} {labels:?}:\n{after}"
        );
    };
    grew(
        "smsdesk_webhook_duration_seconds_count",
        &[("kind", "inbound")],
    );
    grew(
        "smsdesk_webhook_duration_seconds_count",
        &[("kind", "status")],
    );
    grew("smsdesk_events_emitted_total", &[("event", "message:new")]);
    grew(
        "smsdesk_events_emitted_total",
        &[("event", "message:status")],
    );
    grew("smsdesk_twilio_requests_total", &[("outcome", "created")]);
    grew("smsdesk_twilio_request_duration_seconds_count", &[]);
    grew("smsdesk_sync_requests_total", &[]);
    for histogram in [
        "smsdesk_webhook_duration_seconds",
        "smsdesk_twilio_request_duration_seconds",
    ] {
        assert!(
            after.contains(&format!("# TYPE {histogram} histogram")),
            "{histogram} is a histogram:\n{after}"
        );
        assert!(after.contains(&format!("{histogram}_bucket{{")), "{after}");
    }
    // Gauges are this server's own, read at the scrape.
    assert_eq!(sample(&after, "smsdesk_socket_connections", &[]), 1.0);
    assert!(after.contains("smsdesk_send_queue_depth "), "{after}");
    assert!(sample(&after, "smsdesk_db_pool_connections", &[]) >= 1.0);
    for state in ["idle", "busy"] {
        assert!(
            after.contains(&format!("smsdesk_db_pool_connections{{state=\"{state}\"}}")),
            "{after}"
        );
    }
    for process in ["process_cpu_seconds_total", "process_resident_memory_bytes"] {
        assert!(after.contains(process), "{process}:\n{after}");
    }

    // A closed socket leaves the gauge.
    socket.disconnect().await;
    wait_until("the socket gauge to drop", async || {
        sample(&scrape(&app).await, "smsdesk_socket_connections", &[]) == 0.0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_family_is_in_the_first_scrape_sqlite() {
    with_database(Backend::Sqlite, every_family_is_in_the_first_scrape).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_family_is_in_the_first_scrape_postgres() {
    with_database(Backend::Postgres, every_family_is_in_the_first_scrape).await
}

/// A server in a process of its own, scraped before it did anything: every family that
/// docs/operations.md lists is there, each counter with all its known labels, at 0.
async fn every_family_is_in_the_first_scrape(database_url: String) {
    let mut server = ServerProcess::new(vec![("DATABASE_URL", database_url)]);
    server.start().await;
    let text = scrape_at(&reqwest::Client::new(), &server.addr).await;
    let zero = |name: &str, labels: &[(&str, &str)]| {
        assert_eq!(
            samples(&text, name, labels),
            Some(0.0),
            "{name} {labels:?}:\n{text}"
        );
    };
    for kind in ["inbound", "status"] {
        for outcome in ["ok", "duplicate", "forbidden", "bad_request", "unavailable"] {
            zero(
                "smsdesk_webhooks_total",
                &[("kind", kind), ("outcome", outcome)],
            );
        }
        zero("smsdesk_webhook_duration_seconds_count", &[("kind", kind)]);
    }
    for event in [
        "message:new",
        "message:status",
        "conversation:updated",
        "typing",
    ] {
        zero("smsdesk_events_emitted_total", &[("event", event)]);
    }
    for outcome in [
        "created",
        "client_error",
        "rate_limited",
        "server_error",
        "timeout",
        "connect_error",
    ] {
        zero("smsdesk_twilio_requests_total", &[("outcome", outcome)]);
    }
    zero("smsdesk_twilio_request_duration_seconds_count", &[]);
    zero("smsdesk_sync_requests_total", &[]);
    zero("smsdesk_socket_connections", &[]);
    zero("smsdesk_send_queue_depth", &[]);
    for (family, kind) in [
        ("smsdesk_webhooks_total", "counter"),
        ("smsdesk_webhook_duration_seconds", "histogram"),
        ("smsdesk_socket_connections", "gauge"),
        ("smsdesk_events_emitted_total", "counter"),
        ("smsdesk_send_queue_depth", "gauge"),
        ("smsdesk_twilio_requests_total", "counter"),
        ("smsdesk_twilio_request_duration_seconds", "histogram"),
        ("smsdesk_sync_requests_total", "counter"),
        ("smsdesk_db_pool_connections", "gauge"),
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} {kind}\n")),
            "{family} {kind}:\n{text}"
        );
    }
    for state in ["idle", "busy"] {
        assert!(
            samples(&text, "smsdesk_db_pool_connections", &[("state", state)]).is_some(),
            "{state}:\n{text}"
        );
    }
    assert!(text.contains("process_resident_memory_bytes"), "{text}");
}

/// The gauges are the process's, and the servers of one process are scraped at once: each
/// scrape shows its own server's figures, never the other's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_scrapes_show_each_server_its_own_gauges() {
    with_database(Backend::Sqlite, async |one| {
        with_database(Backend::Sqlite, async |other| {
            let busy = TestApp::builder().spawn(&one).await;
            let quiet = TestApp::builder().spawn(&other).await;
            let alice = busy.agent("alice@example.com", &[NUMBER]).await;
            let _socket = busy.socket(&alice).await;
            for round in 0..100 {
                let (busy_text, quiet_text) = tokio::join!(scrape(&busy), scrape(&quiet));
                let sockets = |text: &str| sample(text, "smsdesk_socket_connections", &[]);
                assert_eq!(sockets(&busy_text), 1.0, "round {round}");
                assert_eq!(sockets(&quiet_text), 0.0, "round {round}");
            }
        })
        .await
    })
    .await
}
