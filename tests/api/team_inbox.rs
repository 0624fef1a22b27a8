//! The team inbox (docs/api.md, "The team inbox"): closing, snoozing and assigning a
//! conversation by `PATCH`, with its rules and `422`s, pushed to every agent of the number;
//! the list's views and their counts; notes; the agents one may assign to.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use smsdesk::api::conversations::{Colleagues, ConversationPage};
use smsdesk::model::{Conversation, ConversationStatus, InboxCounts};

use crate::helpers::{Agent, TestApp, read};
use crate::on_both_backends;

on_both_backends! {
    status_snooze_and_assignee_are_set_and_pushed: Simulator,
    invalid_edits_are_refused_and_change_nothing: Simulator,
    every_view_lists_and_counts_what_it_holds: Simulator,
    notes_stay_between_agents: FakeTwilio,
    the_agents_one_may_assign_to: Simulator,
}

pub const SHARED: &str = "+15550008001";
pub const OTHER: &str = "+15550008002";
const CONTACT: &str = "+14155550801";

pub async fn patch(app: &TestApp, agent: &Agent, id: &str, body: Value) -> (u16, Value) {
    let r = app
        .http
        .patch(app.url(&format!("/api/crm/sms/conversations/{id}")))
        .bearer_auth(&agent.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    read(r).await
}

/// The conversation as the list of every status shows it to `agent`.
pub async fn listed(app: &TestApp, agent: &Agent, id: &str) -> Conversation {
    let (status, page) = app
        .get_as::<ConversationPage>("/api/crm/sms/conversations?status=all", Some(agent))
        .await;
    assert_eq!(status, 200);
    page.conversations
        .into_iter()
        .find(|c| c.id.to_string() == id)
        .expect("listed")
}

pub async fn counts(app: &TestApp, agent: &Agent) -> InboxCounts {
    let (status, counts) = app
        .get_as::<InboxCounts>("/api/crm/sms/conversations/counts", Some(agent))
        .await;
    assert_eq!(status, 200);
    counts
}

fn time(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().expect("a time"))
        .unwrap()
        .with_timezone(&Utc)
}

async fn status_snooze_and_assignee_are_set_and_pushed(app: TestApp) {
    let alice = app.agent("alice@example.com", &[SHARED]).await;
    let bob = app.agent("bob@example.com", &[SHARED]).await;
    let carol = app.agent("carol@example.com", &[OTHER]).await;
    app.inbound(CONTACT, SHARED, "hi").await;
    let id = app.conversation(&alice, CONTACT).await;
    let before = listed(&app, &alice, &id).await;
    assert_eq!(before.status, ConversationStatus::Open, "new: open");
    assert_eq!((before.snoozed_until, before.assignee), (None, None));
    let mut bobs = app.socket(&bob).await;
    let mut carols = app.socket(&carol).await;

    let (status, c) = patch(&app, &alice, &id, json!({"status": "closed"})).await;
    assert_eq!((status, &c["status"]), (200, &json!("closed")), "{c}");
    assert_eq!(c["lastMessage"]["body"], "hi", "the whole conversation");
    let pushed = bobs.next("conversation:updated").await;
    assert_eq!(
        (&pushed["id"], &pushed["status"]),
        (&json!(id), &json!("closed"))
    );

    let until = Utc::now() + Duration::hours(1);
    let (status, c) = patch(
        &app,
        &alice,
        &id,
        json!({"status": "snoozed", "snoozedUntil": until.to_rfc3339()}),
    )
    .await;
    assert_eq!((status, &c["status"]), (200, &json!("snoozed")), "{c}");
    assert_eq!(
        time(&c["snoozedUntil"]).timestamp_millis(),
        until.timestamp_millis()
    );
    let pushed = bobs.next("conversation:updated").await;
    assert_eq!(pushed["snoozedUntil"], c["snoozedUntil"]);

    // Leaving snoozed clears the time, whichever way.
    for leave in ["open", "closed"] {
        patch(
            &app,
            &alice,
            &id,
            json!({"status": "snoozed", "snoozedUntil": until.to_rfc3339()}),
        )
        .await;
        let (status, c) = patch(&app, &alice, &id, json!({"status": leave})).await;
        assert_eq!(
            (status, &c["status"], &c["snoozedUntil"]),
            (200, &json!(leave), &Value::Null)
        );
    }

    let (status, c) = patch(&app, &alice, &id, json!({"assigneeId": bob.id})).await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(
        c["assignee"],
        json!({"id": bob.id, "name": "bob@example.com"})
    );
    let pushed = bobs
        .next_where("conversation:updated", |c| c["assignee"] != Value::Null)
        .await;
    assert_eq!(pushed["assignee"]["id"], bob.id.as_str());
    assert_eq!(
        listed(&app, &bob, &id).await.assignee.unwrap().name,
        "bob@example.com"
    );

    // Together with a name, and unassigning.
    let (status, c) = patch(
        &app,
        &bob,
        &id,
        json!({"contactName": "Ana", "status": "open", "assigneeId": null}),
    )
    .await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(
        (&c["contact"]["name"], &c["status"], &c["assignee"]),
        (&json!("Ana"), &json!("open"), &Value::Null)
    );
    let last = bobs
        .next_where("conversation:updated", |c| c["contact"]["name"] == "Ana")
        .await;
    assert_eq!(last["assignee"], Value::Null);
    assert!(
        carols.received("conversation:updated").is_empty(),
        "not carol's number"
    );
}

async fn invalid_edits_are_refused_and_change_nothing(app: TestApp) {
    let alice = app.agent("alice@example.com", &[SHARED]).await;
    let bob = app.agent("bob@example.com", &[SHARED]).await;
    let carol = app.agent("carol@example.com", &[OTHER]).await;
    app.inbound(CONTACT, SHARED, "hi").await;
    let id = app.conversation(&alice, CONTACT).await;
    let now = Utc::now();
    let later = |d: Duration| (now + d).to_rfc3339();
    let refused = [
        json!({}),
        json!({"status": "archived"}),
        json!({"status": null}),
        json!({"status": "snoozed"}),
        json!({"status": "snoozed", "snoozedUntil": null}),
        json!({"status": "snoozed", "snoozedUntil": later(-Duration::minutes(1))}),
        json!({"status": "snoozed", "snoozedUntil": later(Duration::days(91))}),
        json!({"status": "snoozed", "snoozedUntil": "tomorrow"}),
        json!({"status": "closed", "snoozedUntil": later(Duration::hours(1))}),
        json!({"snoozedUntil": later(Duration::hours(1))}),
        json!({"contactName": "x".repeat(101), "status": "closed"}),
    ];
    for body in refused {
        let (status, e) = patch(&app, &alice, &id, body.clone()).await;
        assert_eq!(
            (status, &e["error"]["code"]),
            (422, &json!("invalid_field")),
            "{body}: {e}"
        );
    }
    let invalid_assignees = [json!(carol.id), json!("x"), json!("999999"), json!(true)];
    for assignee in invalid_assignees {
        let (status, e) = patch(&app, &alice, &id, json!({"assigneeId": assignee})).await;
        assert_eq!(
            (status, &e["error"]["code"]),
            (422, &json!("assignee_invalid")),
            "{assignee}: {e}"
        );
    }
    // A disabled agent is no assignee, even on the number (alice, the oldest, is the admin).
    app.admin_patch(&alice, &bob, json!({"disabled": true}))
        .await;
    let (status, e) = patch(&app, &alice, &id, json!({"assigneeId": bob.id})).await;
    assert_eq!(
        (status, &e["error"]["code"]),
        (422, &json!("assignee_invalid"))
    );
    // Nothing was half-written, and another agent's conversation is not found.
    let c = listed(&app, &alice, &id).await;
    assert_eq!(
        (c.status, c.snoozed_until, c.assignee, c.contact.name),
        (ConversationStatus::Open, None, None, None)
    );
    let (status, _) = patch(&app, &carol, &id, json!({"status": "closed"})).await;
    assert_eq!(status, 404);
    assert_eq!(
        listed(&app, &alice, &id).await.status,
        ConversationStatus::Open
    );
}

/// Whose conversations a view holds: `None` anyone's, `Some(None)` no one's.
type Whose<'a> = Option<Option<&'a Agent>>;

/// The ids a view lists to `agent`, page after page of `limit`.
pub async fn view(app: &TestApp, agent: &Agent, query: &str, limit: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/crm/sms/conversations?limit={limit}{query}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = app.get_as::<ConversationPage>(&path, Some(agent)).await;
        assert_eq!(status, 200, "{path}");
        assert!(page.conversations.len() <= limit);
        ids.extend(page.conversations.iter().map(|c| c.id.to_string()));
        match page.next_cursor {
            Some(next) => {
                cursor = Some(
                    serde_json::to_value(next)
                        .unwrap()
                        .as_str()
                        .unwrap()
                        .to_owned(),
                )
            }
            None => return ids,
        }
    }
}

async fn every_view_lists_and_counts_what_it_holds(app: TestApp) {
    let alice = app.agent("alice@example.com", &[SHARED, OTHER]).await;
    let bob = app.agent("bob@example.com", &[SHARED]).await;
    // Twelve conversations, the newest first in every list; a status and an assignee each.
    let mut all = Vec::new();
    for i in 0..12 {
        let (number, word) = if i % 3 == 0 {
            (OTHER, "apple")
        } else {
            (SHARED, "pear")
        };
        let contact = format!("+1415555{:04}", 900 + i);
        app.inbound(&contact, number, &format!("{word} {i}")).await;
        let (_, c) = app
            .post_json_as::<Conversation>(
                "/api/crm/sms/conversations",
                Some(&alice),
                json!({"phone": contact, "from": number}),
            )
            .await;
        all.insert(0, (c.id.to_string(), number));
    }
    let mut state: HashMap<String, (&str, Option<&Agent>)> = HashMap::new();
    for (i, (id, number)) in all.iter().enumerate() {
        let status = ["open", "open", "closed", "snoozed"][i % 4];
        let assignee = match i % 3 {
            0 => Some(&alice),
            1 if *number == SHARED => Some(&bob),
            _ => None,
        };
        let mut body = json!({"status": status, "assigneeId": assignee.map(|a| a.id.clone())});
        if status == "snoozed" {
            body["snoozedUntil"] = json!((Utc::now() + Duration::days(1)).to_rfc3339());
        }
        let (code, c) = patch(&app, &alice, id, body).await;
        assert_eq!(code, 200, "{c}");
        state.insert(id.clone(), (status, assignee));
    }
    let expect = |who: &Agent, status: Option<&str>, assignee: Whose| {
        all.iter()
            .filter(|(_, number)| *number == SHARED || who.id == alice.id)
            .map(|(id, _)| id.clone())
            .filter(|id| {
                let (s, a) = state[id];
                status.is_none_or(|want| want == s)
                    && assignee.is_none_or(|want| want.map(|w| &w.id) == a.map(|a| &a.id))
            })
            .collect::<Vec<_>>()
    };
    for who in [&alice, &bob] {
        let views: Vec<(String, Option<&str>, Whose)> = vec![
            (String::new(), Some("open"), None),
            ("&status=all".into(), None, None),
            ("&status=closed".into(), Some("closed"), None),
            ("&status=snoozed".into(), Some("snoozed"), None),
            ("&assignee=me".into(), Some("open"), Some(Some(who))),
            ("&assignee=none".into(), Some("open"), Some(None)),
            ("&status=all&assignee=none".into(), None, Some(None)),
            (
                format!("&status=all&assignee={}", bob.id),
                None,
                Some(Some(&bob)),
            ),
            (
                format!("&status=closed&assignee={}", alice.id),
                Some("closed"),
                Some(Some(&alice)),
            ),
        ];
        for (query, status, assignee) in views {
            let wanted = expect(who, status, assignee);
            for limit in [2, 50] {
                assert_eq!(
                    view(&app, who, &query, limit).await,
                    wanted,
                    "{query} by {limit}"
                );
            }
        }
        let counts = counts(&app, who).await;
        assert_eq!(
            counts,
            InboxCounts {
                mine: expect(who, Some("open"), Some(Some(who))).len() as i64,
                unassigned: expect(who, Some("open"), Some(None)).len() as i64,
                open: expect(who, Some("open"), None).len() as i64,
                snoozed: expect(who, Some("snoozed"), None).len() as i64,
                closed: expect(who, Some("closed"), None).len() as i64,
            }
        );
    }
    // A search keeps to the view.
    let apples: Vec<String> = expect(&alice, Some("closed"), None)
        .into_iter()
        .filter(|id| all.iter().any(|(c, n)| c == id && *n == OTHER))
        .collect();
    assert_eq!(
        view(&app, &alice, "&status=closed&q=apple", 50).await,
        apples
    );
    for bad in ["&status=archived", "&assignee=someone", "&status=OPEN"] {
        let (status, e) = app
            .get(&format!("/api/crm/sms/conversations?{bad}"), Some(&alice))
            .await;
        assert_eq!(status, 422, "{bad}: {e}");
    }
}

async fn notes_stay_between_agents(app: TestApp) {
    let alice = app.agent("alice@example.com", &[SHARED]).await;
    let bob = app.agent("bob@example.com", &[SHARED]).await;
    app.inbound(CONTACT, SHARED, "hello there").await;
    let id = app.conversation(&alice, CONTACT).await;
    let mut bobs = app.socket(&bob).await;
    let path = format!("/api/crm/sms/conversations/{id}/notes");
    let body = json!({"body": "Call her back about the zucchini order", "clientId": "n-1"});

    let (status, created) = app.post_json(&path, Some(&alice), body.clone()).await;
    assert_eq!(status, 201, "{created}");
    let note = &created["message"];
    assert_eq!(
        (&note["direction"], &note["status"], &note["agentId"]),
        (&json!("note"), &json!("note"), &json!(alice.id))
    );
    assert_eq!(
        (&note["from"], &note["to"]),
        (&json!(SHARED), &json!(CONTACT))
    );
    assert_eq!(
        (&note["twilioSid"], &note["segments"]),
        (&Value::Null, &json!(0))
    );
    let pushed = bobs.next("message:new").await;
    assert_eq!(
        (&pushed["id"], &pushed["direction"]),
        (&note["id"], &json!("note"))
    );

    let (status, again) = app.post_json(&path, Some(&alice), body).await;
    assert_eq!(
        (status, &again["message"]["id"]),
        (200, &note["id"]),
        "same clientId"
    );
    let (status, e) = app
        .post_json(
            &path,
            Some(&alice),
            json!({"body": "other", "clientId": "n-1"}),
        )
        .await;
    assert_eq!(
        (status, &e["error"]["code"]),
        (409, &json!("client_id_reused"))
    );
    // A send is not the note of the same text: it would reach the contact.
    let (status, e) = app
        .post_json(
            "/api/crm/sms/send",
            Some(&alice),
            json!({"conversationId": id, "body": "Call her back about the zucchini order", "clientId": "n-1"}),
        )
        .await;
    assert_eq!(
        (status, &e["error"]["code"]),
        (409, &json!("client_id_reused")),
        "a send with a note's clientId, text and conversation: {e}"
    );
    for bad in [json!(""), json!("x".repeat(4001)), json!(" ")] {
        let (status, _) = app
            .post_json(&path, Some(&alice), json!({"body": bad, "clientId": "n-2"}))
            .await;
        assert_eq!(status, 422);
    }
    let (status, _) = app
        .post_json(
            &path,
            Some(&alice),
            json!({"body": "x".repeat(4000), "clientId": "n-3"}),
        )
        .await;
    assert_eq!(status, 201, "4000 characters");

    // In the thread, in sync and in search; the unread count and the assignee as before.
    let (_, thread) = app
        .get(
            &format!("/api/crm/sms/conversations/{id}/messages"),
            Some(&bob),
        )
        .await;
    assert!(
        thread["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == note["id"])
    );
    let synced = app.message(&bob, note["id"].as_str().unwrap()).await;
    assert_eq!(synced.direction.as_str(), "note");
    assert_eq!(view(&app, &bob, "&q=zucchini", 50).await, vec![id.clone()]);
    let c = listed(&app, &bob, &id).await;
    assert_eq!((c.unread_count, c.assignee), (1, None));
    assert_eq!(
        c.last_message.unwrap().body,
        "hello there",
        "the contact's last message"
    );
    // Never sent: no job, and Twilio heard of nothing.
    assert_eq!(app.scalar("SELECT COUNT(*) FROM send_jobs").await, 0);
    assert_eq!(app.fake.as_ref().unwrap().sent_count(), 0);
    // Another agent's conversation is not found.
    let carol = app.agent("carol@example.com", &[OTHER]).await;
    let (status, _) = app
        .post_json(
            &path,
            Some(&carol),
            json!({"body": "hi", "clientId": "n-9"}),
        )
        .await;
    assert_eq!(status, 404);
}

async fn the_agents_one_may_assign_to(app: TestApp) {
    let alice = app.agent("alice@example.com", &[SHARED, OTHER]).await;
    let bob = app
        .agent("bob@example.com", &[SHARED, "+15550008004"])
        .await;
    let carol = app.agent("carol@example.com", &["+15550008003"]).await;
    let dave = app.agent("dave@example.com", &[OTHER]).await;
    let listed = async |agent: &Agent| {
        let (status, list) = app
            .get_as::<Colleagues>("/api/crm/sms/agents", Some(agent))
            .await;
        assert_eq!(status, 200);
        list.agents
            .into_iter()
            .map(|a| (a.name, a.numbers))
            .collect::<Vec<_>>()
    };
    let of = |name: &str, numbers: &[&str]| {
        (
            name.to_owned(),
            numbers.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        )
    };
    assert_eq!(
        listed(&alice).await,
        [
            of("alice@example.com", &[SHARED, OTHER]),
            of("bob@example.com", &[SHARED]),
            of("dave@example.com", &[OTHER]),
        ],
        "each with the numbers shared with the caller, never their others"
    );
    assert_eq!(
        listed(&bob).await,
        [
            of("alice@example.com", &[SHARED]),
            of("bob@example.com", &[SHARED, "+15550008004"]),
        ]
    );
    assert_eq!(
        listed(&carol).await,
        [of("carol@example.com", &["+15550008003"])]
    );
    // The numbers say whom a conversation may go to: Dave, who lacks its number, may not.
    app.inbound("+14155550931", SHARED, "hi").await;
    let id = app.conversation(&alice, "+14155550931").await;
    let (status, body) = patch(&app, &alice, &id, json!({"assigneeId": dave.id})).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (422, &json!("assignee_invalid"))
    );
    let (status, _) = patch(&app, &alice, &id, json!({"assigneeId": bob.id})).await;
    assert_eq!(status, 200);

    app.admin_patch(&alice, &dave, json!({"disabled": true}))
        .await;
    assert_eq!(
        listed(&alice).await,
        [
            of("alice@example.com", &[SHARED, OTHER]),
            of("bob@example.com", &[SHARED]),
        ],
        "enabled only"
    );
    let (status, _) = app.get("/api/crm/sms/agents", None).await;
    assert_eq!(status, 401);
}
