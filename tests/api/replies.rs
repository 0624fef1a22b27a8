//! Canned replies (docs/api.md, "Canned replies"): one list shared by every agent, sorted by
//! shortcut; any agent adds one, its author or an admin changes or deletes it, a shortcut is
//! unique even when two agents take it at once, and every change is pushed to every agent.

use futures_util::future::join_all;
use serde_json::{Value, json};
use smsdesk::api::replies::Replies;
use smsdesk::model::Reply;

use crate::helpers::{Agent, Socket, TestApp, read};
use crate::on_both_backends;

on_both_backends! {
    any_agent_adds_a_reply_every_agent_lists: Simulator,
    only_its_author_or_an_admin_changes_or_deletes_a_reply: Simulator,
    a_disabled_authors_replies_stay_for_an_admin: Simulator,
    shortcuts_and_bodies_are_checked: Simulator,
    a_shortcut_is_taken_once: Simulator,
    concurrent_adds_of_one_shortcut_make_one_reply: Simulator,
    every_agent_hears_of_every_change: Simulator,
    replies_need_a_session_and_one_of_our_origins: Simulator,
}

// Agents who share no number: replies are everyone's all the same.
const ALICES: &str = "+15550001000";
const BOBS: &str = "+15550002000";
const CAROLS: &str = "+15550003000";

async fn add(app: &TestApp, by: &Agent, shortcut: &str, body: &str) -> (u16, Value) {
    app.post_json(
        "/api/crm/sms/replies",
        Some(by),
        json!({"shortcut": shortcut, "body": body}),
    )
    .await
}

/// Adds a reply that must be added.
async fn added(app: &TestApp, by: &Agent, shortcut: &str, body: &str) -> Reply {
    let (status, reply) = add(app, by, shortcut, body).await;
    assert_eq!(status, 201, "{reply}");
    serde_json::from_value(reply).expect("a reply")
}

async fn change(app: &TestApp, by: &Agent, id: &str, body: Value) -> (u16, Value) {
    let r = app
        .http
        .patch(app.url(&format!("/api/crm/sms/replies/{id}")))
        .bearer_auth(&by.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    read(r).await
}

async fn delete(app: &TestApp, by: &Agent, id: &str) -> (u16, Value) {
    let r = app
        .http
        .delete(app.url(&format!("/api/crm/sms/replies/{id}")))
        .bearer_auth(&by.token)
        .send()
        .await
        .unwrap();
    read(r).await
}

/// The list as `agent` gets it: (shortcut, body) in its order.
async fn listed(app: &TestApp, agent: &Agent) -> Vec<(String, String)> {
    let (status, list) = app
        .get_as::<Replies>("/api/crm/sms/replies", Some(agent))
        .await;
    assert_eq!(status, 200);
    list.replies
        .into_iter()
        .map(|r| (r.shortcut, r.body))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(s, b)| (s.to_string(), b.to_string()))
        .collect()
}

fn code(error: &Value) -> &str {
    error["error"]["code"].as_str().unwrap_or_default()
}

async fn any_agent_adds_a_reply_every_agent_lists(app: TestApp) {
    let alice = app.agent("alice@example.com", &[ALICES]).await;
    let bob = app.agent("bob@example.com", &[BOBS]).await;
    assert_eq!(listed(&app, &bob).await, [], "none to begin with");

    let (status, reply) = add(&app, &bob, "thanks", "Thanks, {{contact.name}}!").await;
    assert_eq!(status, 201, "{reply}");
    let mut keys: Vec<&str> = reply
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["agentId", "body", "id", "shortcut", "updatedAt"]);
    assert_eq!(reply["agentId"], bob.id.as_str());
    assert!(reply["id"].is_string(), "ids are strings: {reply}");
    assert_eq!(reply["shortcut"], "thanks");
    assert_eq!(reply["body"], "Thanks, {{contact.name}}!");

    added(&app, &alice, "hours", "We are open 9 to 5.").await;
    added(&app, &bob, "2fa", "Your code is on its way.").await;
    added(&app, &alice, "thanks-late", "Sorry for the wait!").await;
    added(&app, &alice, "thanks_again", "Thanks again!").await;
    // By shortcut, in the same order on both databases: digits, then letters; `-` before `_`.
    let expected = pairs(&[
        ("2fa", "Your code is on its way."),
        ("hours", "We are open 9 to 5."),
        ("thanks", "Thanks, {{contact.name}}!"),
        ("thanks-late", "Sorry for the wait!"),
        ("thanks_again", "Thanks again!"),
    ]);
    assert_eq!(listed(&app, &alice).await, expected);
    assert_eq!(
        listed(&app, &bob).await,
        expected,
        "the same list for everyone"
    );
}

async fn only_its_author_or_an_admin_changes_or_deletes_a_reply(app: TestApp) {
    let admin = app.agent("admin@example.com", &[ALICES]).await;
    let bob = app.agent("bob@example.com", &[BOBS]).await;
    let carol = app.agent("carol@example.com", &[CAROLS]).await;
    let bobs = added(&app, &bob, "thanks", "Thanks!").await;
    let id = bobs.id.to_string();

    // Another agent may not.
    let (status, error) = change(&app, &carol, &id, json!({"body": "Mine now"})).await;
    assert_eq!((status, code(&error)), (403, "forbidden"), "{error}");
    let (status, error) = delete(&app, &carol, &id).await;
    assert_eq!((status, code(&error)), (403, "forbidden"), "{error}");
    assert_eq!(listed(&app, &bob).await, pairs(&[("thanks", "Thanks!")]));

    // Its author may, one field or both.
    let (status, changed) = change(&app, &bob, &id, json!({"body": "Thank you!"})).await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(
        (&changed["id"], &changed["shortcut"], &changed["body"]),
        (&json!(id), &json!("thanks"), &json!("Thank you!"))
    );
    assert_eq!(changed["agentId"], bob.id.as_str(), "the author stays");
    let changed: Reply = serde_json::from_value(changed).unwrap();
    assert!(changed.updated_at >= bobs.updated_at);
    let (status, changed) = change(
        &app,
        &bob,
        &id,
        json!({"shortcut": "thank-you", "body": "Thank you so much!"}),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(
        listed(&app, &carol).await,
        pairs(&[("thank-you", "Thank you so much!")])
    );

    // An admin may, though it is not theirs.
    let (status, changed) = change(&app, &admin, &id, json!({"shortcut": "ty"})).await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["agentId"], bob.id.as_str(), "the author stays");
    let (status, _) = delete(&app, &admin, &id).await;
    assert_eq!(status, 204);
    assert_eq!(listed(&app, &bob).await, []);

    // Gone: not found, for its author too.
    let (status, error) = change(&app, &bob, &id, json!({"body": "Back?"})).await;
    assert_eq!((status, code(&error)), (404, "not_found"), "{error}");
    let (status, _) = delete(&app, &bob, &id).await;
    assert_eq!(status, 404);

    // And its author deletes their own.
    let own = added(&app, &carol, "bye", "Bye!").await;
    let (status, body) = delete(&app, &carol, &own.id.to_string()).await;
    assert_eq!((status, body), (204, Value::Null));
    assert_eq!(listed(&app, &carol).await, []);
}

async fn a_disabled_authors_replies_stay_for_an_admin(app: TestApp) {
    let admin = app.agent("admin@example.com", &[ALICES]).await;
    let bob = app.agent("bob@example.com", &[BOBS]).await;
    let carol = app.agent("carol@example.com", &[CAROLS]).await;
    let reply = added(&app, &bob, "thanks", "Thanks!").await;
    app.admin_patch(&admin, &bob, json!({"disabled": true}))
        .await;

    assert_eq!(listed(&app, &carol).await, pairs(&[("thanks", "Thanks!")]));
    let id = reply.id.to_string();
    let (status, _) = change(&app, &carol, &id, json!({"body": "Orphan"})).await;
    assert_eq!(status, 403, "an agent still may not");
    let (status, changed) =
        change(&app, &admin, &id, json!({"body": "Thanks, from us all!"})).await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["agentId"], bob.id.as_str());
    let (status, _) = delete(&app, &admin, &id).await;
    assert_eq!(status, 204);
}

async fn shortcuts_and_bodies_are_checked(app: TestApp) {
    let alice = app.agent("alice@example.com", &[ALICES]).await;
    let longest = "x".repeat(32);
    for good in ["a", "0k", "out_of-office", longest.as_str()] {
        let (status, reply) = add(&app, &alice, good, "ok").await;
        assert_eq!(status, 201, "{good:?}: {reply}");
    }
    let too_long = "x".repeat(33);
    for bad in [
        "",
        "Thanks",
        "-thanks",
        "_thanks",
        "thanks late",
        " thanks",
        "thanks!",
        "thänks",
        too_long.as_str(),
    ] {
        let (status, error) = add(&app, &alice, bad, "ok").await;
        assert_eq!((status, code(&error)), (422, "invalid_field"), "{bad:?}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.starts_with("shortcut "), "{bad:?}: {message}");
    }
    // A body as a message's: 1 to 1600 characters (not bytes), something visible, no control
    // characters but newlines and tabs.
    let longest = "é".repeat(1600);
    let (status, reply) = add(&app, &alice, "long", &longest).await;
    assert_eq!(status, 201, "{reply}");
    let (status, reply) = add(&app, &alice, "lines", "Hi,\n\tthanks!").await;
    assert_eq!(status, 201, "{reply}");
    let too_long = "é".repeat(1601);
    for bad in ["", "  \n ", "\u{200B}", "bell\u{7}", too_long.as_str()] {
        let (status, error) = add(&app, &alice, "fine", bad).await;
        assert_eq!((status, code(&error)), (422, "invalid_field"), "{bad:?}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.starts_with("body "), "{bad:?}: {message}");
    }

    // The same rules when changing one, which must change something.
    let id = added(&app, &alice, "fine", "Fine.").await.id.to_string();
    for (body, field) in [
        (json!({"shortcut": "Fine"}), "shortcut"),
        (json!({"body": ""}), "body"),
        (json!({"shortcut": "fine", "body": too_long}), "body"),
        (json!({}), "shortcut"),
        (json!({"shortcut": null, "body": null}), "shortcut"),
    ] {
        let (status, error) = change(&app, &alice, &id, body.clone()).await;
        assert_eq!((status, code(&error)), (422, "invalid_field"), "{body}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "{body}: {message}");
    }
    // Fields of other shapes, or unknown ones, are refused, naming them.
    for (body, named) in [
        (
            json!({"shortcut": "ok2", "body": "ok", "agentId": "1"}),
            "agentId",
        ),
        (json!({"shortcut": 7, "body": "ok"}), "shortcut"),
        (json!({"shortcut": "ok2"}), "body"),
    ] {
        let (status, error) = app
            .post_json("/api/crm/sms/replies", Some(&alice), body.clone())
            .await;
        assert_eq!((status, code(&error)), (422, "invalid_field"), "{body}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(named), "{body}: {message}");
    }
    let (status, error) = change(&app, &alice, &id, json!({"text": "Fine!"})).await;
    assert_eq!((status, code(&error)), (422, "invalid_field"), "{error}");
    let r = app
        .http
        .post(app.url("/api/crm/sms/replies"))
        .bearer_auth(&alice.token)
        .header("Content-Type", "application/json")
        .body("{\"shortcut\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Ids that name nothing.
    for bad in ["999999", "abc", "-1", "99999999999999999999"] {
        let (status, _) = change(&app, &alice, bad, json!({"body": "x"})).await;
        assert_eq!(status, 404, "{bad}");
        let (status, _) = delete(&app, &alice, bad).await;
        assert_eq!(status, 404, "{bad}");
    }
    assert_eq!(
        listed(&app, &alice).await.iter().find(|(s, _)| s == "fine"),
        Some(&("fine".to_owned(), "Fine.".to_owned())),
        "nothing refused changed it"
    );
}

async fn a_shortcut_is_taken_once(app: TestApp) {
    let alice = app.agent("alice@example.com", &[ALICES]).await;
    let bob = app.agent("bob@example.com", &[BOBS]).await;
    added(&app, &alice, "thanks", "Thanks!").await;
    let (status, error) = add(&app, &bob, "thanks", "Cheers!").await;
    assert_eq!((status, code(&error)), (409, "shortcut_taken"), "{error}");
    // Not by a shortcut of another case or spacing either: those are refused outright.
    let (status, _) = add(&app, &bob, "Thanks", "Cheers!").await;
    assert_eq!(status, 422);

    let bobs = added(&app, &bob, "cheers", "Cheers!").await.id.to_string();
    let (status, error) = change(&app, &bob, &bobs, json!({"shortcut": "thanks"})).await;
    assert_eq!((status, code(&error)), (409, "shortcut_taken"), "{error}");
    // Its own shortcut again is no conflict.
    let (status, changed) = change(
        &app,
        &bob,
        &bobs,
        json!({"shortcut": "cheers", "body": "Cheers, mate!"}),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(
        listed(&app, &alice).await,
        pairs(&[("cheers", "Cheers, mate!"), ("thanks", "Thanks!")])
    );
    // A freed shortcut can be taken again.
    let (status, _) = change(&app, &bob, &bobs, json!({"shortcut": "cheers-mate"})).await;
    assert_eq!(status, 200);
    added(&app, &alice, "cheers", "Cheers from Alice").await;
}

/// Agents add the same shortcut at the same moment: the database's unique shortcut lets one
/// through, the others hear it is taken.
async fn concurrent_adds_of_one_shortcut_make_one_reply(app: TestApp) {
    let alice = app.agent("alice@example.com", &[ALICES]).await;
    let bob = app.agent("bob@example.com", &[BOBS]).await;
    for round in 0..3 {
        let shortcut = format!("race-{round}");
        let answers = join_all((0..12).map(|i| {
            let by = if i % 2 == 0 { &alice } else { &bob };
            let (app, shortcut) = (&app, &shortcut);
            async move { add(app, by, shortcut, &format!("take {i}")).await }
        }))
        .await;
        let created: Vec<&Value> = answers
            .iter()
            .filter(|(status, _)| *status == 201)
            .map(|(_, reply)| reply)
            .collect();
        assert_eq!(created.len(), 1, "round {round}: {answers:?}");
        for (status, answer) in &answers {
            assert!(
                *status == 201 || (*status == 409 && code(answer) == "shortcut_taken"),
                "round {round}: {status} {answer}"
            );
        }
        let listed = listed(&app, &bob).await;
        let mine: Vec<_> = listed.iter().filter(|(s, _)| *s == shortcut).collect();
        assert_eq!(mine.len(), 1, "round {round}: {listed:?}");
        assert_eq!(mine[0].1, created[0]["body"].as_str().unwrap());
    }
}

async fn every_agent_hears_of_every_change(app: TestApp) {
    let admin = app.agent("admin@example.com", &[ALICES]).await;
    let bob = app.agent("bob@example.com", &[BOBS]).await;
    let carol = app.agent("carol@example.com", &[CAROLS]).await;
    // Every agent, whatever their numbers, and the author's own other tab.
    let mut sockets: Vec<Socket> = vec![
        app.socket(&admin).await,
        app.socket(&bob).await,
        app.socket(&carol).await,
    ];

    let reply = added(&app, &bob, "thanks", "Thanks!").await;
    let id = reply.id.to_string();
    for s in &mut sockets {
        let pushed = s.next("reply:changed").await;
        assert_eq!(pushed, serde_json::to_value(&reply).unwrap());
    }
    let (_, changed) = change(&app, &bob, &id, json!({"body": "Thank you!"})).await;
    for s in &mut sockets {
        assert_eq!(s.next("reply:changed").await, changed);
    }
    let (status, _) = delete(&app, &admin, &id).await;
    assert_eq!(status, 204);
    for s in &mut sockets {
        assert_eq!(s.next("reply:deleted").await, json!({"id": id}));
    }
    // Refused changes push nothing: a later change would otherwise come second.
    let kept = added(&app, &carol, "kept", "Kept.").await.id.to_string();
    let (status, _) = change(&app, &bob, &kept, json!({"body": "Not yours"})).await;
    assert_eq!(status, 403);
    let (status, _) = add(&app, &bob, "kept", "Taken").await;
    assert_eq!(status, 409);
    let (_, last) = change(&app, &carol, &kept, json!({"body": "Kept!"})).await;
    for s in &mut sockets {
        assert_eq!(s.next("reply:changed").await["body"], "Kept.");
        assert_eq!(s.next("reply:changed").await, last);
        assert!(s.received("reply:changed").is_empty());
        assert!(s.received("reply:deleted").is_empty());
    }
}

async fn replies_need_a_session_and_one_of_our_origins(app: TestApp) {
    let alice = app.agent("alice@example.com", &[ALICES]).await;
    let id = added(&app, &alice, "thanks", "Thanks!")
        .await
        .id
        .to_string();
    let (status, _) = app.get("/api/crm/sms/replies", None).await;
    assert_eq!(status, 401);
    let (status, _) = app
        .post_json(
            "/api/crm/sms/replies",
            None,
            json!({"shortcut": "x", "body": "y"}),
        )
        .await;
    assert_eq!(status, 401);

    // The cookie reads the list from anywhere, but changes only from one of our origins.
    let cookie = format!("smsdesk_session={}", alice.token);
    let r = app
        .http
        .get(app.url("/api/crm/sms/replies"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for origin in [None, Some("https://evil.example")] {
        let requests = [
            app.http
                .post(app.url("/api/crm/sms/replies"))
                .json(&json!({"shortcut": "forged", "body": "Forged"})),
            app.http
                .patch(app.url(&format!("/api/crm/sms/replies/{id}")))
                .json(&json!({"body": "Forged"})),
            app.http
                .delete(app.url(&format!("/api/crm/sms/replies/{id}"))),
        ];
        for request in requests {
            let mut request = request.header("Cookie", &cookie);
            if let Some(origin) = origin {
                request = request.header("Origin", origin);
            }
            let (status, error) = read(request.send().await.unwrap()).await;
            assert_eq!((status, code(&error)), (403, "forbidden"), "{origin:?}");
        }
    }
    let r = app
        .http
        .post(app.url("/api/crm/sms/replies"))
        .header("Cookie", &cookie)
        .header("Origin", app.origin())
        .json(&json!({"shortcut": "ours", "body": "From the page"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        listed(&app, &alice).await,
        pairs(&[("ours", "From the page"), ("thanks", "Thanks!")])
    );
}
