//! `sync`: what a disconnected client missed, in change order.

use crate::helpers::TestApp;
use crate::on_both_backends;

on_both_backends! {
    sync_returns_what_a_disconnected_client_missed: FakeTwilio,
    pagination_walks_conversations_and_messages: Simulator,
}

async fn sync_returns_what_a_disconnected_client_missed(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let bob = app.agent("bob@example.com", &["+15550002000"]).await;
    app.inbound("+14155550123", "+15550001000", "before").await;
    let (_, first) = app.get("/api/crm/sms/sync?since=0", Some(&alice)).await;
    let cursor = first["cursor"].as_i64().unwrap();
    assert_eq!(first["messages"].as_array().unwrap().len(), 1);
    assert_eq!(first["hasMore"], false);

    // While "offline": two inbound, one send that goes out, one message for Bob.
    app.inbound("+14155550123", "+15550001000", "missed 1")
        .await;
    app.inbound("+14155550199", "+15550001000", "missed 2")
        .await;
    app.inbound("+14155550123", "+15550002000", "not yours")
        .await;
    let conversation = app.conversation(&alice, "+14155550123").await;
    let (_, sent) = app.send(&alice, &conversation, "reply", "c-1").await;
    app.wait_status(&alice, sent["message"]["id"].as_str().unwrap(), "queued")
        .await;

    let (_, missed) = app
        .get(&format!("/api/crm/sms/sync?since={cursor}"), Some(&alice))
        .await;
    let messages = missed["messages"].as_array().unwrap();
    let bodies: Vec<&str> = messages
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["missed 1", "missed 2", "reply"]);
    assert_eq!(
        messages[2]["status"], "queued",
        "the latest state of each message"
    );
    let seqs: Vec<i64> = messages
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(missed["cursor"], seqs[2]);

    // Nothing new: the cursor stays.
    let next = missed["cursor"].as_i64().unwrap();
    let (_, none) = app
        .get(&format!("/api/crm/sms/sync?since={next}"), Some(&alice))
        .await;
    assert_eq!(none["messages"], serde_json::json!([]));
    assert_eq!(none["cursor"], next);

    // Paged.
    let (_, page) = app
        .get("/api/crm/sms/sync?since=0&limit=2", Some(&alice))
        .await;
    assert_eq!(page["messages"].as_array().unwrap().len(), 2);
    assert_eq!(page["hasMore"], true);

    let (_, bobs) = app.get("/api/crm/sms/sync?since=0", Some(&bob)).await;
    let bodies: Vec<&str> = bobs["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["not yours"]);
}

async fn pagination_walks_conversations_and_messages(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    for i in 0..5 {
        app.inbound(
            &format!("+1415555010{i}"),
            "+15550001000",
            &format!("from {i}"),
        )
        .await;
    }
    for i in 0..5 {
        app.inbound("+14155550100", "+15550001000", &format!("more {i}"))
            .await;
    }
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = app
            .get(
                &format!("/api/crm/sms/conversations?limit=2&cursor={cursor}"),
                Some(&alice),
            )
            .await;
        assert_eq!(status, 200);
        for c in page["conversations"].as_array().unwrap() {
            seen.push(c["contact"]["phone"].as_str().unwrap().to_owned());
        }
        match page["nextCursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen[0], "+14155550100", "newest activity first");
    assert_eq!(seen.len(), 5);
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 5, "no conversation twice");

    let (_, list) = app
        .get("/api/crm/sms/conversations?limit=1", Some(&alice))
        .await;
    let id = list["conversations"][0]["id"].as_str().unwrap().to_owned();
    let (_, page1) = app
        .get(
            &format!("/api/crm/sms/conversations/{id}/messages?limit=4"),
            Some(&alice),
        )
        .await;
    let bodies: Vec<&str> = page1["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(
        bodies,
        ["more 4", "more 3", "more 2", "more 1"],
        "newest first"
    );
    let next = page1["nextCursor"].as_str().unwrap();
    let (_, page2) = app
        .get(
            &format!("/api/crm/sms/conversations/{id}/messages?limit=4&cursor={next}"),
            Some(&alice),
        )
        .await;
    let bodies: Vec<&str> = page2["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["more 0", "from 0"]);
    assert_eq!(page2["nextCursor"], serde_json::Value::Null);

    let (status, _) = app
        .post_json(
            &format!("/api/crm/sms/conversations/{id}/read"),
            Some(&alice),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 204);
    let (_, list) = app
        .get("/api/crm/sms/conversations?limit=1", Some(&alice))
        .await;
    assert_eq!(list["conversations"][0]["unreadCount"], 0);
}
