//! `/metrics` (contract §13): the token rule, the content type, and every named family
//! after the action it counts. The recorder is global to this test process and shared by
//! the servers of tests running at once, so counters are compared before and after (they
//! may have grown by more), never read as absolute values.

use crate::helpers::{FAKE_ACCOUNT, TestApp, new_sid, read, wait_until};
use crate::on_both_backends;

on_both_backends! {
    metrics_are_open_without_a_token: Simulator,
    metrics_need_the_token_when_one_is_set: Simulator.env("METRICS_TOKEN", "s3cret-metrics"),
    every_family_counts_what_happened: FakeTwilio,
}

const NUMBER: &str = "+15550001000";
const CONTACT: &str = "+14155550123";

async fn scrape(app: &TestApp) -> String {
    let r = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/plain; version=0.0.4");
    r.text().await.unwrap()
}

/// The value of the sample `name` carrying every one of `labels`; 0 when there is none.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
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
        .sum()
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
