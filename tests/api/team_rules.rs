//! The team inbox's rules that change a conversation by themselves (docs/api.md, "The team
//! inbox"): an inbound message reopens it, a snooze runs out, sending assigns it to the
//! sender, an assignee who loses the number or is disabled lets go of it; `sync` returns
//! conversations changed after its cursor; and under concurrent writers the events agree
//! with the database, and the counts with the lists.

use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use smsdesk::api::sync::Changes;
use smsdesk::domain::PhoneNumber;
use smsdesk::model::{AgentId, ConversationId, ConversationStatus, InboxCounts};
use smsdesk::store::{ConversationEdit, StatusEdit};

use crate::helpers::{Agent, TestApp};
use crate::on_both_backends;
use crate::team_inbox::{OTHER, SHARED, counts, listed, patch, view};

on_both_backends! {
    an_inbound_message_reopens_the_conversation: Simulator,
    a_snooze_that_runs_out_reopens_once: Simulator.settings(|s| s.snooze_check_period = StdDuration::from_millis(200)),
    sending_assigns_an_unassigned_conversation: Simulator,
    losing_the_number_or_being_disabled_unassigns: Simulator,
    sync_returns_the_conversations_that_changed: Simulator,
    concurrent_changes_end_where_the_events_say: Simulator,
    the_counters_match_the_conversations_after_concurrent_writes: Simulator,
    moves_of_many_conversations_and_of_one_never_deadlock: Simulator,
    writers_of_every_kind_leave_the_counts_right: FakeTwilio.settings(|s| s.snooze_check_period = StdDuration::from_millis(100)),
}

const CONTACT: &str = "+14155550901";

fn snooze_for(d: Duration) -> Value {
    json!({"status": "snoozed", "snoozedUntil": (Utc::now() + d).to_rfc3339()})
}

/// The conversation the contact opened with an inbound `body` to the shared number, as
/// `agent` finds it.
async fn opened(app: &TestApp, agent: &Agent, contact: &str, body: &str) -> String {
    app.inbound(contact, SHARED, body).await;
    app.conversation(agent, contact).await
}

/// The id of the conversation's assignee, as `agent`'s list shows it: there must be one.
async fn assignee_id(app: &TestApp, agent: &Agent, id: &str) -> String {
    listed(app, agent, id)
        .await
        .assignee
        .expect("an assignee")
        .id
        .to_string()
}

async fn an_inbound_message_reopens_the_conversation(app: TestApp) {
    let alice = app.agent("alice@example.com", &[SHARED]).await;
    let id = opened(&app, &alice, CONTACT, "first").await;
    let mut socket = app.socket(&alice).await;
    for leave in [json!({"status": "closed"}), snooze_for(Duration::days(3))] {
        let (status, _) = patch(&app, &alice, &id, leave).await;
        assert_eq!(status, 200);
        socket.next("conversation:updated").await;
        app.inbound(CONTACT, SHARED, "again").await;
        let pushed = socket
            .next_where("conversation:updated", |c| {
                c["lastMessage"]["body"] == "again"
            })
            .await;
        assert_eq!(
            (&pushed["status"], &pushed["snoozedUntil"]),
            (&json!("open"), &Value::Null)
        );
        let c = listed(&app, &alice, &id).await;
        assert_eq!(
            (c.status, c.snoozed_until),
            (ConversationStatus::Open, None)
        );
    }
}

async fn a_snooze_that_runs_out_reopens_once(app: TestApp) {
    let alice = app.agent("alice@example.com", &[SHARED]).await;
    let id = opened(&app, &alice, CONTACT, "hi").await;
    let mut socket = app.socket(&alice).await;
    let (status, c) = patch(&app, &alice, &id, snooze_for(Duration::milliseconds(1500))).await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(
        socket.next("conversation:updated").await["status"],
        "snoozed"
    );
    assert_eq!(counts(&app, &alice).await.snoozed, 1);

    let woken = socket.next("conversation:updated").await;
    assert_eq!(
        (&woken["id"], &woken["status"]),
        (&json!(id), &json!("open"))
    );
    assert_eq!(woken["snoozedUntil"], Value::Null);
    assert_eq!(
        listed(&app, &alice, &id).await.status,
        ConversationStatus::Open
    );
    // Events reach a socket in order: a second reopening would come before this one.
    patch(&app, &alice, &id, json!({"contactName": "after"})).await;
    let next = socket.next("conversation:updated").await;
    assert_eq!(next["contact"]["name"], "after", "reopened twice: {next}");
}

async fn sending_assigns_an_unassigned_conversation(app: TestApp) {
    let alice = app.agent("alice@example.com", &[SHARED]).await;
    let bob = app.agent("bob@example.com", &[SHARED]).await;
    let id = opened(&app, &alice, CONTACT, "hi").await;
    let mut bobs = app.socket(&bob).await;

    let (status, _) = app.send(&alice, &id, "on it", "s-1").await;
    assert_eq!(status, 202);
    let pushed = bobs.next("conversation:updated").await;
    assert_eq!(pushed["assignee"]["id"], alice.id.as_str());
    assert_eq!(
        listed(&app, &bob, &id).await.assignee.unwrap().name,
        "alice@example.com"
    );

    // Never a change of an existing assignee.
    let (status, _) = app.send(&bob, &id, "me too", "s-2").await;
    assert_eq!(status, 202);
    assert_eq!(assignee_id(&app, &bob, &id).await, alice.id);
    patch(&app, &alice, &id, json!({"assigneeId": bob.id})).await;
    let (status, _) = app.send(&alice, &id, "over to bob", "s-3").await;
    assert_eq!(status, 202);
    assert_eq!(assignee_id(&app, &bob, &id).await, bob.id);

    // A conversation opened by sending to a number is the sender's.
    let (status, sent) = app
        .post_json(
            "/api/crm/sms/send",
            Some(&bob),
            json!({"to": "+14155550902", "body": "hello", "clientId": "s-4"}),
        )
        .await;
    assert_eq!(status, 202, "{sent}");
    let other = sent["message"]["conversationId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(assignee_id(&app, &alice, &other).await, bob.id);
}

async fn losing_the_number_or_being_disabled_unassigns(app: TestApp) {
    let alice = app.agent("alice@example.com", &[SHARED, OTHER]).await;
    let bob = app.agent("bob@example.com", &[SHARED, OTHER]).await;
    app.inbound(CONTACT, SHARED, "on shared").await;
    app.inbound(CONTACT, OTHER, "on other").await;
    let (mut shared, mut other) = (String::new(), String::new());
    for c in app
        .get_as::<smsdesk::api::conversations::ConversationPage>(
            "/api/crm/sms/conversations",
            Some(&alice),
        )
        .await
        .1
        .conversations
    {
        match c.our_number.as_str() {
            SHARED => shared = c.id.to_string(),
            _ => other = c.id.to_string(),
        }
    }
    for id in [&shared, &other] {
        let (status, _) = patch(&app, &alice, id, json!({"assigneeId": bob.id})).await;
        assert_eq!(status, 200);
    }
    let mut socket = app.socket(&alice).await;

    app.admin_patch(&alice, &bob, json!({"numbers": [OTHER]}))
        .await;
    let pushed = socket.next("conversation:updated").await;
    assert_eq!(
        (&pushed["id"], &pushed["assignee"]),
        (&json!(shared), &Value::Null)
    );
    assert!(listed(&app, &alice, &shared).await.assignee.is_none());
    assert_eq!(assignee_id(&app, &alice, &other).await, bob.id);

    app.admin_patch(&alice, &bob, json!({"disabled": true}))
        .await;
    let pushed = socket.next("conversation:updated").await;
    assert_eq!(
        (&pushed["id"], &pushed["assignee"]),
        (&json!(other), &Value::Null)
    );
    assert!(listed(&app, &alice, &other).await.assignee.is_none());
    assert!(socket.received("conversation:updated").is_empty());
}

async fn sync_from(app: &TestApp, agent: &Agent, since: i64, limit: i64) -> Changes {
    let (status, changes) = app
        .get_as::<Changes>(
            &format!("/api/crm/sms/sync?since={since}&limit={limit}"),
            Some(agent),
        )
        .await;
    assert_eq!(status, 200);
    changes
}

async fn sync_returns_the_conversations_that_changed(app: TestApp) {
    let alice = app.agent("alice@example.com", &[SHARED]).await;
    let bob = app.agent("bob@example.com", &[SHARED]).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let contact = format!("+141555509{:02}", 10 + i);
        ids.push(opened(&app, &alice, &contact, "hi").await);
    }
    let start = sync_from(&app, &alice, 0, 1000).await.cursor;

    patch(&app, &alice, &ids[0], json!({"contactName": "Renamed"})).await;
    patch(&app, &alice, &ids[1], json!({"status": "closed"})).await;
    let changes = sync_from(&app, &alice, start, 1000).await;
    assert!(changes.messages.is_empty(), "no message changed");
    let seen: Vec<(String, Option<String>, ConversationStatus)> = changes
        .conversations
        .iter()
        .map(|c| (c.id.to_string(), c.contact.name.clone(), c.status))
        .collect();
    assert_eq!(
        seen,
        [
            (
                ids[0].clone(),
                Some("Renamed".into()),
                ConversationStatus::Open
            ),
            (ids[1].clone(), None, ConversationStatus::Closed)
        ]
    );
    assert!(changes.cursor > start);
    assert!(
        sync_from(&app, &alice, changes.cursor, 1000)
            .await
            .conversations
            .is_empty()
    );

    // One change of many conversations (bob disabled lets go of all of them) comes whole,
    // whatever the limit; page by page, every change comes once.
    for id in &ids {
        patch(&app, &alice, id, json!({"assigneeId": bob.id})).await;
    }
    let before = sync_from(&app, &alice, changes.cursor, 1000).await.cursor;
    app.admin_patch(&alice, &bob, json!({"disabled": true}))
        .await;
    let mut since = changes.cursor;
    let mut seen = Vec::new();
    loop {
        let page = sync_from(&app, &alice, since, 2).await;
        seen.extend(
            page.conversations
                .iter()
                .map(|c| (c.id.to_string(), c.assignee.is_some())),
        );
        assert!(page.cursor >= since);
        since = page.cursor;
        if !page.has_more {
            break;
        }
    }
    let unassigned: Vec<&(String, bool)> = seen.iter().filter(|(_, a)| !a).collect();
    assert_eq!(unassigned.len(), 5, "{seen:?}");
    assert!(since > before);
}

async fn concurrent_changes_end_where_the_events_say(app: TestApp) {
    let alice = app.agent("alice@example.com", &[SHARED]).await;
    let bob = app.agent("bob@example.com", &[SHARED]).await;
    let id = opened(&app, &alice, CONTACT, "hi").await;
    let marker = opened(&app, &alice, "+14155550999", "marker").await;
    let mut socket = app.socket(&alice).await;

    for round in 0..8 {
        let edits = [
            json!({"assigneeId": bob.id}),
            json!({"status": "closed"}),
            json!({"assigneeId": null}),
            json!({"status": "open"}),
        ];
        let patches = edits.into_iter().map(|e| {
            let (app, alice) = (&app, &alice);
            let id = id.clone();
            async move { patch(app, alice, &id, e).await.0 }
        });
        let client_id = format!("c-{round}");
        let send = app.send(&bob, &id, "reply", &client_id);
        let inbound = app.inbound(CONTACT, SHARED, "more");
        let (codes, (sent, _), _) =
            tokio::join!(futures_util::future::join_all(patches), send, inbound);
        assert!(codes.iter().all(|c| *c == 200) && sent == 202);
    }
    // Events reach a socket in the order they went out: once the marker's has come, every
    // event about the conversation that went out before it has too.
    patch(&app, &alice, &marker, json!({"status": "closed"})).await;
    let mut last = Value::Null;
    loop {
        let event = socket.next("conversation:updated").await;
        if event["id"] == marker {
            break;
        }
        assert_eq!(event["id"], id.as_str());
        last = event;
    }
    let now = serde_json::to_value(listed(&app, &alice, &id).await).unwrap();
    for field in [
        "status",
        "snoozedUntil",
        "assignee",
        "unreadCount",
        "contact",
    ] {
        assert_eq!(
            last[field], now[field],
            "{field}: the last event {last} against {now}"
        );
    }
    let counts = counts(&app, &alice).await;
    assert_eq!(
        counts,
        counted(&app, &alice).await,
        "the counts are what the lists hold"
    );
}

/// Rows on which the trigger-kept counters (with their changes not folded yet) and a fresh
/// count of the conversations disagree.
pub const COUNTERS_OFF: &str = "WITH kept AS (SELECT our_number, status, assignee_key, \
       CAST(SUM(n) AS BIGINT) AS n FROM (SELECT our_number, status, assignee_key, n \
         FROM conversation_counts UNION ALL SELECT our_number, status, assignee_key, n \
         FROM conversation_count_changes) AS both_kinds \
       GROUP BY our_number, status, assignee_key), \
     fresh AS (SELECT our_number, status, COALESCE(assignee_id, 0) AS assignee_key, \
       COUNT(*) AS n FROM conversations GROUP BY our_number, status, COALESCE(assignee_id, 0)) \
    SELECT (SELECT COUNT(*) FROM (SELECT * FROM kept WHERE n <> 0 EXCEPT SELECT * FROM fresh) \
      AS extra) + (SELECT COUNT(*) FROM (SELECT * FROM fresh EXCEPT SELECT * FROM kept) AS missing)";

async fn the_counters_match_the_conversations_after_concurrent_writes(app: TestApp) {
    let alice = app.agent("alice@example.com", &[SHARED, OTHER]).await;
    let bob = app.agent("bob@example.com", &[SHARED]).await;
    let contacts: Vec<String> = (0..4).map(|i| format!("+1415555071{i}")).collect();
    let mut ids = Vec::new();
    for contact in &contacts {
        ids.push(opened(&app, &alice, contact, "hi").await);
    }
    for round in 0..6 {
        let edits = ids.iter().enumerate().map(|(i, id)| {
            let edit = match (i + round) % 4 {
                0 => json!({"assigneeId": bob.id}),
                1 => json!({"status": "closed"}),
                2 => snooze_for(Duration::days(1)),
                _ => json!({"assigneeId": null, "status": "open"}),
            };
            let (app, alice) = (&app, &alice);
            async move { patch(app, alice, id, edit).await.0 }
        });
        let client_id = format!("c-{round}");
        let send = app.send(&bob, &ids[round % ids.len()], "reply", &client_id);
        let fresh = format!("+1415555072{round}");
        let inbound = futures_util::future::join3(
            app.inbound(&contacts[round % contacts.len()], SHARED, "again"),
            app.inbound(&fresh, SHARED, "new"),
            app.inbound(&fresh, OTHER, "new elsewhere"),
        );
        let (codes, (sent, _), _) =
            tokio::join!(futures_util::future::join_all(edits), send, inbound);
        assert!(
            codes.iter().all(|c| *c == 200) && sent == 202,
            "{codes:?} {sent}"
        );
    }
    assert_eq!(app.scalar(COUNTERS_OFF).await, 0, "the counters drifted");
    assert_eq!(
        counts(&app, &alice).await,
        counted(&app, &alice).await,
        "the counts are what the lists hold"
    );
}

/// Sets a conversation's status and assignee through the store, as a `PATCH` does.
async fn edit(app: &TestApp, id: ConversationId, status: StatusEdit, assignee: Option<AgentId>) {
    let edit = ConversationEdit {
        status: Some(status),
        assignee: Some(assignee),
        ..ConversationEdit::default()
    };
    app.store
        .edit_conversation(id, &edit)
        .await
        .expect("an edit is never aborted");
}

/// Writes that move many conversations at once (a snooze running out, an agent losing their
/// numbers), in opposite orders of their numbers from round to round, race single moves and
/// inbound batches over the same conversations: PostgreSQL would abort one of two writers
/// that each hold a row the other waits for (docs/reliability.md, "Team inbox").
async fn moves_of_many_conversations_and_of_one_never_deadlock(app: TestApp) {
    let numbers = [
        "+15550008011",
        "+15550008012",
        "+15550008013",
        "+15550008014",
    ];
    let alice = app.agent("alice@example.com", &numbers).await;
    let bob = app.agent("bob@example.com", &numbers).await;
    let alice_id: AgentId = alice.id.parse().unwrap();
    let bob_id: AgentId = bob.id.parse().unwrap();
    let phones: Vec<PhoneNumber> = numbers
        .iter()
        .map(|n| PhoneNumber::parse("number", n).unwrap())
        .collect();
    let mut conversations = Vec::new();
    for (n, number) in numbers.iter().enumerate() {
        for i in 0..6 {
            let contact = format!("+1415555{n}3{i:02}");
            app.inbound(&contact, number, "hi").await;
            let id = app.conversation_from(&alice, &contact, Some(number)).await;
            conversations.push((contact, *number, id.parse::<ConversationId>().unwrap()));
        }
    }
    let due = Utc::now() - Duration::hours(1);
    for round in 0..16 {
        // Bob holds them all, every other one snoozed and due: the snoozes run out in the
        // order of the numbers in even rounds, in the reverse order in odd ones.
        for (i, (_, _, id)) in conversations.iter().enumerate() {
            let status = if i % 2 == 1 {
                StatusEdit::Open
            } else if round % 2 == 0 {
                StatusEdit::Snoozed(due + Duration::seconds(i as i64))
            } else {
                StatusEdit::Snoozed(due - Duration::seconds(i as i64))
            };
            edit(&app, *id, status, Some(bob_id)).await;
        }
        let wake = app.store.wake_snoozed(200);
        let unassign = app.store.change_numbers(bob_id, &[], &phones);
        let singles = conversations
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 3 == round % 3);
        let singles = singles.map(|(i, (_, _, id))| {
            let status = match i % 3 {
                0 => StatusEdit::Closed,
                1 => StatusEdit::Open,
                _ => StatusEdit::Snoozed(Utc::now() + Duration::days(1)),
            };
            edit(&app, *id, status, Some(alice_id))
        });
        let inbound = conversations
            .iter()
            .skip(round % 4)
            .step_by(4)
            .map(|(contact, number, _)| app.inbound(contact, number, "again"));
        let (woken, unassigned, _, _) = tokio::join!(
            wake,
            unassign,
            futures_util::future::join_all(singles),
            futures_util::future::join_all(inbound)
        );
        woken.expect("a wake is never aborted");
        unassigned.expect("an unassignment is never aborted");
        app.store
            .change_numbers(bob_id, &phones, &[])
            .await
            .expect("numbers given back");
    }
    assert_eq!(app.scalar(COUNTERS_OFF).await, 0, "the counters drifted");
    for agent in [&alice, &bob] {
        assert_eq!(
            counts(&app, agent).await,
            counted(&app, agent).await,
            "the counts are what the lists hold"
        );
    }
}

/// One instance's part of `team_instances.rs`'s writers of every kind: every writer on it.
async fn writers_of_every_kind_leave_the_counts_right(app: TestApp) {
    crate::team_instances::writers_of_every_kind([&app, &app]).await
}

/// The counts as the lists show them, each view paged to its end.
pub async fn counted(app: &TestApp, agent: &Agent) -> InboxCounts {
    let n = async |query: &str| view(app, agent, query, 7).await.len() as i64;
    InboxCounts {
        mine: n("&assignee=me").await,
        unassigned: n("&assignee=none").await,
        open: n("").await,
        snoozed: n("&status=snoozed").await,
        closed: n("&status=closed").await,
    }
}
