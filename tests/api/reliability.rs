//! Twilio retries, races and half-answers: nothing lost, nothing sent or stored twice.

use std::time::Duration;

use smsdesk::model::Status;
use smsdesk::send_queue::SLOT_TOLERANCE;

use crate::helpers::{
    Backend, Mode, Script, TestApp, new_sid, wait_until, wait_until_within, with_database,
};
use crate::on_both_backends;

on_both_backends! {
    identical_webhooks_at_the_same_instant_are_one_row_and_one_event: Simulator,
    a_lost_answer_is_reconciled_not_resent: FakeTwilio,
    rate_limited_sends_are_retried_after_retry_after: FakeTwilio,
    a_burst_from_one_number_is_paced_and_others_are_not_held_up: FakeTwilio.env("SEND_RATE_PER_NUMBER", "5"),
    sends_wait_out_an_unreachable_twilio_and_go_once: TwilioDown,
    the_same_text_again_is_sent_not_matched_to_the_first: FakeTwilio,
    a_lookup_adopts_only_a_message_that_can_be_ours: FakeTwilio,
    a_lookup_and_create_slower_than_the_old_lease_send_once: FakeTwilio,
    a_send_unconfirmed_for_ten_minutes_fails_at_its_next_claim: FakeTwilio,
    a_created_answer_with_a_sid_another_message_holds_is_not_posted_again: FakeTwilio,
    a_created_answer_s_status_passes_the_callback_rules: FakeTwilio,
}

/// Twilio answered 500 and did not create the message.
fn server_error() -> Script {
    Script::Error {
        status: 500,
        code: 20500,
        message: "Internal Server Error",
    }
}

async fn the_same_text_again_is_sent_not_matched_to_the_first(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let fake = app.fake.as_ref().unwrap();
    let conversation = app.conversation(&alice, "+14155550123").await;
    let (_, body) = app.send(&alice, &conversation, "ok", "c-1").await;
    let first = body["message"]["id"].as_str().unwrap().to_owned();
    let first_sid = app.wait_status(&alice, &first, "queued").await.twilio_sid;

    // Minutes later the same text again; Twilio's create fails without creating it.
    fake.script(server_error());
    let (_, body) = app.send(&alice, &conversation, "ok", "c-2").await;
    let second = body["message"]["id"].as_str().unwrap().to_owned();
    let m = app.wait_status(&alice, &second, "queued").await;
    assert!(m.twilio_sid.is_some());
    assert_ne!(
        m.twilio_sid, first_sid,
        "the first message's sid is not adopted"
    );
    assert_eq!(fake.sent_count(), 3, "created, failed, created");
    assert_eq!(fake.accepted_count(), 2, "the contact gets both messages");
    assert_eq!(app.message(&alice, &first).await.twilio_sid, first_sid);
    app.wait_queue_empty().await;
}

async fn a_lookup_adopts_only_a_message_that_can_be_ours(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let fake = app.fake.as_ref().unwrap();
    let now = chrono::Utc::now();
    let look_alike = |to: &str, from: &str, ago: chrono::Duration| {
        serde_json::json!({
            "sid": new_sid(), "status": "delivered", "to": to, "from": from, "body": "on my way",
            "date_created": (now - ago).to_rfc2822(),
        })
    };
    let strangers = vec![
        // The same text sent from the console a few minutes before.
        look_alike("+14155550123", "+15550001000", chrono::Duration::minutes(3)),
        // To someone else, or from another number: a Messages list is not always filtered.
        look_alike("+14155550999", "+15550001000", chrono::Duration::zero()),
        look_alike("+14155550123", "+15550009999", chrono::Duration::zero()),
        // Not dated: it cannot be placed after our first attempt.
        serde_json::json!({"sid": new_sid(), "status": "sent", "to": "+14155550123", "from": "+15550001000", "body": "on my way"}),
    ];
    let stranger_sids: Vec<String> = strangers
        .iter()
        .map(|m| m["sid"].as_str().unwrap().to_owned())
        .collect();
    *fake.state.listed.lock().unwrap() = strangers;
    fake.script(server_error());
    let conversation = app.conversation(&alice, "+14155550123").await;
    let (_, body) = app.send(&alice, &conversation, "on my way", "c-1").await;
    let id = body["message"]["id"].as_str().unwrap();
    let m = app.wait_status(&alice, id, "queued").await;
    assert!(
        !m.twilio_sid
            .as_ref()
            .is_some_and(|sid| stranger_sids.contains(sid)),
        "adopted a message that was not ours: {m:?}"
    );
    assert_eq!(
        fake.sent_count(),
        2,
        "looked up, found nothing of ours, sent"
    );
    assert_eq!(fake.accepted_count(), 1);
}

async fn a_lookup_and_create_slower_than_the_old_lease_send_once(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let fake = app.fake.as_ref().unwrap();
    // The first create fails without sending, so the next claim looks the message up:
    // 12 s of list and a create that hangs 19.5 s (under the client's 20 s) before Twilio
    // takes it, 31.5 s in all. A 30 s lease ran out in the middle, and a second worker that
    // found nothing in the list sent a second copy.
    fake.script(server_error());
    fake.script(Script::Slow(Duration::from_millis(19_500)));
    *fake.state.list_delay.lock().unwrap() = Duration::from_secs(12);
    let conversation = app.conversation(&alice, "+14155550123").await;
    let (_, body) = app
        .send(&alice, &conversation, "slow but once", "c-1")
        .await;
    let id = body["message"]["id"].as_str().unwrap().to_owned();
    app.wait_status_within(&alice, &id, "queued", Duration::from_secs(60))
        .await;
    // A second copy would go out 12 s after the second worker's claim; nothing can be
    // awaited for "no second create", so wait past that point.
    tokio::time::sleep(Duration::from_secs(14)).await;
    assert_eq!(fake.sent_count(), 2, "the failed create and one real one");
    assert_eq!(fake.accepted_count(), 1, "Twilio has exactly one copy");
    assert_eq!(*fake.state.lists.lock().unwrap(), 1, "one lookup");
}

async fn a_send_unconfirmed_for_ten_minutes_fails_at_its_next_claim(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let fake = app.fake.as_ref().unwrap();
    fake.script(server_error());
    let conversation = app.conversation(&alice, "+14155550123").await;
    let (_, body) = app.send(&alice, &conversation, "too late", "c-1").await;
    let id = body["message"]["id"].as_str().unwrap().to_owned();
    wait_until("a first try", async || fake.sent_count() > 0).await;
    // The retry is at least 250 ms away: move its first attempt 11 minutes back, as if
    // every claim since had ended without recording anything.
    backdate_first_try(&app, &id, chrono::Duration::minutes(11)).await;
    let m = app.wait_status(&alice, &id, "failed").await;
    assert!(
        m.error_message.as_deref().unwrap().contains("10 minutes"),
        "{m:?}"
    );
    assert_eq!(fake.sent_count(), 1, "nothing is sent after the deadline");
    app.wait_queue_empty().await;
}

async fn a_created_answer_with_a_sid_another_message_holds_is_not_posted_again(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let fake = app.fake.as_ref().unwrap();
    let conversation = app.conversation(&alice, "+14155550123").await;
    let (_, body) = app.send(&alice, &conversation, "first", "c-1").await;
    let first = body["message"]["id"].as_str().unwrap().to_owned();
    let held = app
        .wait_status(&alice, &first, "queued")
        .await
        .twilio_sid
        .unwrap();

    // Twilio answers 201 to the next create, with the sid the first message holds. It has
    // the message: whatever its sid, it is never posted again.
    fake.script(Script::Answer {
        sid: Some(held.clone()),
        status: "queued",
    });
    let (_, body) = app.send(&alice, &conversation, "second", "c-2").await;
    let second = body["message"]["id"].as_str().unwrap().to_owned();
    let m = app.wait_status(&alice, &second, "queued").await;
    assert_eq!(m.twilio_sid, None, "the sid stays the first message's");
    app.wait_queue_empty().await;
    assert_eq!(fake.sent_count(), 2, "one create per message");

    // Its own status callbacks (our id in the URL) still reach it; the first is untouched.
    let callback = fake.state.sent.lock().unwrap()[1]["StatusCallback"].clone();
    let path = callback
        .trim_start_matches(crate::helpers::PUBLIC_URL)
        .to_owned();
    let params = [
        ("MessageSid", held.as_str()),
        ("MessageStatus", "delivered"),
        ("AccountSid", crate::helpers::FAKE_ACCOUNT),
    ];
    let r = app.post_webhook(&path, &params).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(app.message(&alice, &second).await.status, Status::Delivered);
    let first = app.message(&alice, &first).await;
    assert_eq!(first.status, Status::Queued);
    assert_eq!(first.twilio_sid.as_deref(), Some(held.as_str()));
    assert_eq!(fake.sent_count(), 2);
}

async fn a_created_answer_s_status_passes_the_callback_rules(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let fake = app.fake.as_ref().unwrap();
    let conversation = app.conversation(&alice, "+14155550123").await;
    // An inbound status, and one we do not know, in a create's answer: it was accepted, no more.
    for (i, answered) in ["received", "pending", "warming-up"]
        .into_iter()
        .enumerate()
    {
        fake.script(Script::Answer {
            sid: None,
            status: answered,
        });
        let (_, body) = app
            .send(
                &alice,
                &conversation,
                &format!("answer {i}"),
                &format!("a-{i}"),
            )
            .await;
        let id = body["message"]["id"].as_str().unwrap().to_owned();
        app.wait_queue_empty().await;
        let m = app.message(&alice, &id).await;
        assert_eq!(m.status, Status::Queued, "answered {answered}: {m:?}");
        assert!(m.twilio_sid.is_some());
    }
    // A callback that came before the answer is not taken back by it.
    fake.script(Script::CallbackFirst("delivered"));
    let (_, body) = app.send(&alice, &conversation, "fast", "f-1").await;
    let id = body["message"]["id"].as_str().unwrap().to_owned();
    app.wait_queue_empty().await;
    assert_eq!(app.message(&alice, &id).await.status, Status::Delivered);
    assert_eq!(fake.sent_count(), 4);
}

async fn backdate_first_try(app: &TestApp, id: &str, by: chrono::Duration) {
    use sqlx::Connection;
    let id: i64 = id.parse().unwrap();
    let at = chrono::Utc::now() - by;
    let sql = "UPDATE send_jobs SET first_tried_at = $1 WHERE message_id = $2";
    let updated = if app.database_url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(&app.database_url)
            .await
            .unwrap();
        sqlx::query(sql)
            .bind(at)
            .bind(id)
            .execute(&mut conn)
            .await
            .map(|r| r.rows_affected())
    } else {
        let mut conn = sqlx::PgConnection::connect(&app.database_url)
            .await
            .unwrap();
        sqlx::query(sql)
            .bind(at)
            .bind(id)
            .execute(&mut conn)
            .await
            .map(|r| r.rows_affected())
    };
    assert_eq!(updated.unwrap(), 1, "the job is queued");
}

async fn sends_wait_out_an_unreachable_twilio_and_go_once(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let fake = app.fake.as_ref().unwrap();
    let conversation = app.conversation(&alice, "+14155550123").await;
    let (status, body) = app.send(&alice, &conversation, "when you can", "c-1").await;
    assert_eq!(status, 202, "accepted while Twilio is unreachable");
    let id = body["message"]["id"].as_str().unwrap().to_owned();
    // A few attempts fail to connect; the message stays pending meanwhile.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(app.message(&alice, &id).await.status, Status::Pending);
    fake.come_up().await;
    let m = app.wait_status(&alice, &id, "queued").await;
    assert!(m.twilio_sid.is_some());
    assert_eq!(
        fake.sent_count(),
        1,
        "nothing reached Twilio before, once after"
    );
}

async fn a_burst_from_one_number_is_paced_and_others_are_not_held_up(app: TestApp) {
    let alice = app
        .agent("alice@example.com", &["+15550001000", "+15550002000"])
        .await;
    let busy = app.conversation(&alice, "+14155550123").await;
    for i in 0..8 {
        let (status, _) = app
            .send(&alice, &busy, &format!("burst {i}"), &format!("b-{i}"))
            .await;
        assert_eq!(status, 202);
    }
    let (status, body) = app
        .post_json(
            "/api/crm/sms/send",
            Some(&alice),
            serde_json::json!({"to": "+14155550123", "from": "+15550002000", "body": "other number", "clientId": "o-1"}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    app.wait_queue_empty().await;

    let fake = app.fake.as_ref().unwrap();
    let sent = fake.state.sent.lock().unwrap().clone();
    let at = fake.state.sent_at.lock().unwrap().clone();
    assert_eq!(sent.len(), 9, "each message once");
    let burst: Vec<_> = (0..9)
        .filter(|i| sent[*i]["From"] == "+15550001000")
        .map(|i| at[i])
        .collect();
    let other = (0..9).find(|i| sent[*i]["From"] == "+15550002000").unwrap();
    // 5 segments a second: 8 messages span at least 7 intervals of 200 ms.
    let span = *burst.last().unwrap() - burst[0];
    assert!(span >= std::time::Duration::from_millis(1300), "{span:?}");
    assert!(
        at[other] < *burst.last().unwrap(),
        "the other number did not wait behind the burst"
    );
}

/// A backlog paced at two a second whose slots all passed while no instance ran: the
/// instance that takes it up still sends it two a second, not all at once.
mod a_paced_backlog_keeps_its_pace_when_taken_up_late {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        with_database(Backend::Sqlite, super::paced_backlog_taken_up_late).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        with_database(Backend::Postgres, super::paced_backlog_taken_up_late).await
    }
}

async fn paced_backlog_taken_up_late(url: String) {
    const BACKLOG: usize = 6;
    let interval = Duration::from_millis(500);
    // As far as a send may reach the fake ahead of its turn: the store's tolerance, and the
    // way from the database's clock to the fake's, which varies from one send to the next.
    let margin = SLOT_TOLERANCE + Duration::from_millis(80);
    let paced = |mode| {
        TestApp::builder()
            .mode(mode)
            .env("SEND_RATE_PER_NUMBER", "2")
    };
    // Twilio cannot be reached: each message of the backlog takes its slot and waits.
    let mut a = paced(Mode::TwilioDown).spawn(&url).await;
    let alice = a.agent("alice@example.com", &["+15550001000"]).await;
    let conversation = a.conversation(&alice, "+14155550123").await;
    for i in 0..BACKLOG {
        let (status, body) = a
            .send(
                &alice,
                &conversation,
                &format!("backlog {i}"),
                &format!("b-{i}"),
            )
            .await;
        assert_eq!(status, 202, "{body}");
    }
    wait_until("every message to hold a slot", async || {
        a.scalar("SELECT COUNT(*) FROM send_jobs WHERE slot_us IS NOT NULL")
            .await
            == BACKLOG as i64
    })
    .await;
    a.stop().await;
    wait_until("the slots to pass", async || {
        a.scalar("SELECT COUNT(*) FROM send_jobs WHERE slot_us > (SELECT now_us FROM db_clock)")
            .await
            == 0
    })
    .await;

    let b = paced(Mode::FakeTwilio).spawn(&url).await;
    let fake = b.fake.as_ref().unwrap();
    wait_until_within(
        "the backlog to go out",
        Duration::from_secs(20),
        async || fake.sent_count() >= BACKLOG,
    )
    .await;
    b.wait_queue_empty().await;
    assert_eq!(fake.sent_count(), BACKLOG);
    let mut at = fake.state.sent_at.lock().unwrap().clone();
    at.sort();
    for pair in at.windows(2) {
        assert!(
            pair[1] - pair[0] + margin >= interval,
            "two sends from one number {:?} apart",
            pair[1] - pair[0]
        );
    }
}

async fn identical_webhooks_at_the_same_instant_are_one_row_and_one_event(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let mut socket = app.socket(&alice).await;
    let sid = new_sid();
    let params = [
        ("MessageSid", sid.as_str()),
        ("From", "+14155550123"),
        ("To", "+15550001000"),
        ("Body", "at once"),
    ];
    let posts = (0..10).map(|_| app.post_webhook("/api/crm/sms/webhook", &params));
    for r in futures_util::future::join_all(posts).await {
        assert_eq!(r.status(), 200);
    }
    app.inbound("+14155550123", "+15550001000", "after").await;
    assert_eq!(socket.next("message:new").await["body"], "at once");
    assert_eq!(
        socket.next("message:new").await["body"],
        "after",
        "one event only"
    );
    let (_, list) = app.get("/api/crm/sms/conversations", Some(&alice)).await;
    assert_eq!(list["conversations"][0]["unreadCount"], 2);
}

async fn a_lost_answer_is_reconciled_not_resent(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let fake = app.fake.as_ref().unwrap();
    fake.script(Script::LostAnswer);
    let conversation = app.conversation(&alice, "+14155550123").await;
    let (_, body) = app.send(&alice, &conversation, "exactly once", "c-1").await;
    let id = body["message"]["id"].as_str().unwrap();
    let m = app.wait_status(&alice, id, "sent").await;
    assert!(m.twilio_sid.as_deref().unwrap().starts_with("SM"));
    assert_eq!(
        fake.sent_count(),
        1,
        "found in Twilio's list, not sent again"
    );
    assert_eq!(fake.accepted_count(), 1);
}

async fn rate_limited_sends_are_retried_after_retry_after(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let fake = app.fake.as_ref().unwrap();
    fake.script(Script::RateLimited);
    let conversation = app.conversation(&alice, "+14155550123").await;
    let started = std::time::Instant::now();
    let (_, body) = app.send(&alice, &conversation, "patience", "c-1").await;
    let id = body["message"]["id"].as_str().unwrap();
    app.wait_status(&alice, id, "queued").await;
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "Retry-After was honoured"
    );
    assert_eq!(fake.sent_count(), 2);
    assert_eq!(fake.accepted_count(), 1);
}
