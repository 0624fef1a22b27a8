//! Naming a contact (docs/api.md, "Conversations"): `PATCH /api/crm/sms/conversations/:id {contactName}`,
//! cleared by `null` or `""`, at most 100 characters, another agent's conversation not found,
//! and the change pushed as `conversation:updated` to every agent of the number, and to no one
//! else. And what no name may hold, a contact's or an agent's, wherever it comes in.

use serde_json::{Value, json};

use crate::helpers::{Agent, TestApp, read};
use crate::on_both_backends;

on_both_backends! {
    a_name_is_set_changed_and_cleared: Simulator,
    invalid_names_and_other_agents_conversations_are_refused: Simulator,
    every_agent_of_the_number_hears_of_the_new_name: Simulator,
    no_name_holds_a_bidirectional_control: Simulator,
}

const SHARED: &str = "+15550007001";
const OTHER: &str = "+15550007002";

async fn rename(app: &TestApp, agent: &Agent, id: &str, body: Value) -> (u16, Value) {
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

/// The contact's name as the list shows it to `agent`.
async fn listed_name(app: &TestApp, agent: &Agent, id: &str) -> Value {
    let (_, page) = app.get("/api/crm/sms/conversations", Some(agent)).await;
    page["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .expect("listed")["contact"]["name"]
        .clone()
}

async fn a_name_is_set_changed_and_cleared(app: TestApp) {
    let alice = app.agent("alice@example.com", &[SHARED]).await;
    app.inbound("+14155550701", SHARED, "hi").await;
    let id = app.conversation(&alice, "+14155550701").await;
    let (_, before) = app.get("/api/crm/sms/conversations", Some(&alice)).await;

    let (status, c) = rename(&app, &alice, &id, json!({"contactName": "  Ana Lima "})).await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["id"], id);
    assert_eq!(c["contact"]["name"], "Ana Lima", "trimmed");
    assert_eq!(c["contact"]["phone"], "+14155550701");
    assert_eq!(c["lastMessage"]["body"], "hi", "the whole conversation");
    assert_eq!(listed_name(&app, &alice, &id).await, "Ana Lima");
    let (_, after) = app.get("/api/crm/sms/conversations", Some(&alice)).await;
    assert_eq!(
        after["conversations"][0]["id"], before["conversations"][0]["id"],
        "renaming does not move a conversation in the list"
    );

    let (status, c) = rename(&app, &alice, &id, json!({"contactName": "Ána 😀"})).await;
    assert_eq!((status, &c["contact"]["name"]), (200, &json!("Ána 😀")));
    for clear in [json!(null), json!(""), json!("   ")] {
        rename(&app, &alice, &id, json!({"contactName": "x"})).await;
        let (status, c) = rename(&app, &alice, &id, json!({"contactName": clear})).await;
        assert_eq!(status, 200);
        assert_eq!(c["contact"]["name"], Value::Null, "{clear} clears the name");
        assert_eq!(listed_name(&app, &alice, &id).await, Value::Null);
    }
    // A name at the limit is kept whole.
    let hundred = "é".repeat(100);
    let (status, c) = rename(&app, &alice, &id, json!({"contactName": hundred})).await;
    assert_eq!(
        (status, c["contact"]["name"].as_str()),
        (200, Some(hundred.as_str()))
    );
}

async fn invalid_names_and_other_agents_conversations_are_refused(app: TestApp) {
    let alice = app.agent("alice@example.com", &[SHARED]).await;
    let bob = app.agent("bob@example.com", &[OTHER]).await;
    let id = app.conversation(&alice, "+14155550702").await;
    rename(&app, &alice, &id, json!({"contactName": "Kept"})).await;

    let (status, body) = rename(&app, &alice, &id, json!({"contactName": "x".repeat(101)})).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("contactName"),
        "{body}"
    );
    for bad in [json!("a\nb"), json!("a\u{0}b"), json!(42), json!(["x"])] {
        let (status, body) = rename(&app, &alice, &id, json!({"contactName": bad})).await;
        assert!(status == 422 || status == 400, "{bad}: {status} {body}");
    }
    let (status, _) = rename(&app, &alice, &id, json!({})).await;
    assert!(status == 422 || status == 400, "contactName is required");

    let (status, body) = rename(&app, &bob, &id, json!({"contactName": "Mine now"})).await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = rename(&app, &alice, "999999", json!({"contactName": "Nobody"})).await;
    assert_eq!(status, 404);
    let (status, _) = rename(&app, &alice, "not-an-id", json!({"contactName": "Nobody"})).await;
    assert_eq!(status, 404);
    assert_eq!(
        listed_name(&app, &alice, &id).await,
        "Kept",
        "nothing changed"
    );

    // Without a session, or a cookie from another origin: refused.
    let r = app
        .http
        .patch(app.url(&format!("/api/crm/sms/conversations/{id}")))
        .json(&json!({"contactName": "Anon"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .http
        .patch(app.url(&format!("/api/crm/sms/conversations/{id}")))
        .header("Cookie", format!("smsdesk_session={}", alice.token))
        .header("Origin", "https://evil.example")
        .json(&json!({"contactName": "Forged"}))
        .send()
        .await
        .unwrap();
    assert!(r.status() == 403 || r.status() == 401, "{}", r.status());
    assert_eq!(listed_name(&app, &alice, &id).await, "Kept");
}

async fn every_agent_of_the_number_hears_of_the_new_name(app: TestApp) {
    let alice = app.agent("alice@example.com", &[SHARED]).await;
    let bob = app.agent("bob@example.com", &[SHARED, OTHER]).await;
    let carol = app.agent("carol@example.com", &[OTHER]).await;
    let id = app.conversation(&alice, "+14155550703").await;
    let mut bobs = app.socket(&bob).await;
    let mut carols = app.socket(&carol).await;
    let mut alices_other_tab = app.socket(&alice).await;

    let (status, _) = rename(&app, &alice, &id, json!({"contactName": "Renée"})).await;
    assert_eq!(status, 200);
    for socket in [&mut bobs, &mut alices_other_tab] {
        let update = socket
            .next_where("conversation:updated", |c| c["id"] == id)
            .await;
        assert_eq!(update["contact"]["name"], "Renée");
        assert_eq!(update["contact"]["phone"], "+14155550703");
    }
    rename(&app, &bob, &id, json!({"contactName": null})).await;
    let cleared = alices_other_tab
        .next_where("conversation:updated", |c| c["id"] == id)
        .await;
    assert_eq!(cleared["contact"]["name"], Value::Null);

    // Carol does not hold the number: nothing reaches her (a message to her number does,
    // after the renames, so hers would have come first).
    app.inbound("+14155550704", OTHER, "for carol").await;
    carols.next("message:new").await;
    let heard = carols.received("conversation:updated");
    assert!(
        heard.iter().all(|c| c["id"] != id),
        "carol heard of a conversation she cannot see: {heard:?}"
    );
}

/// Names with a bidirectional control, as an attacker would write them: an override that
/// reverses the rest (`Ann`, U+202E, `gpj.exe` shows as `Annexe.jpg`), one left open at the end (it
/// reorders what the page shows after the name), an isolate, a mark, and nothing else.
const BIDI_NAMES: [&str; 8] = [
    "Ann\u{202E}gpj.exe",
    "Ann \u{202E}",
    "\u{202B}Ann",
    "\u{2067}Ann\u{2069}",
    "Ann\u{2066}",
    "Ann\u{200F}",
    "Ann\u{061C}",
    "\u{202D}",
];

async fn no_name_holds_a_bidirectional_control(app: TestApp) {
    let refused = |(status, body): (u16, Value), field: &str, name: &str| {
        assert_eq!(status, 422, "{name:?}: {body}");
        assert_eq!(body["error"]["code"], "invalid_field", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert_eq!(
            message,
            format!("{field} must not contain bidirectional control characters"),
            "{name:?}"
        );
    };
    // Setup, before any agent exists.
    let token = app
        .setup_url
        .as_deref()
        .and_then(|u| u.split("token=").nth(1))
        .unwrap()
        .to_owned();
    for name in BIDI_NAMES {
        let setup = json!({"token": token, "email": "a@x.io", "name": name,
            "password": "password123", "numbers": [SHARED]});
        refused(app.post_json("/api/setup", None, setup).await, "name", name);
    }

    let admin = app.agent("admin@example.com", &[SHARED]).await;
    let id = app.conversation(&admin, "+14155550705").await;
    rename(&app, &admin, &id, json!({"contactName": "Kept"})).await;
    let patch_agent = async |name: &str| {
        let r = app
            .http
            .patch(app.url(&format!("/api/admin/agents/{}", admin.id)))
            .bearer_auth(&admin.token)
            .json(&json!({"name": name}))
            .send()
            .await
            .unwrap();
        read(r).await
    };
    for name in BIDI_NAMES {
        refused(
            rename(&app, &admin, &id, json!({"contactName": name})).await,
            "contactName",
            name,
        );
        let open = json!({"phone": "+14155550706", "name": name});
        refused(
            app.post_json("/api/crm/sms/conversations", Some(&admin), open)
                .await,
            "name",
            name,
        );
        let invite = json!({"email": "new@example.com", "name": name, "numbers": [SHARED]});
        refused(
            app.post_json("/api/admin/agents", Some(&admin), invite)
                .await,
            "name",
            name,
        );
        refused(patch_agent(name).await, "name", name);
    }
    assert_eq!(listed_name(&app, &admin, &id).await, "Kept");
    let (_, listed) = app.get("/api/admin/agents", Some(&admin)).await;
    let agents = listed["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 1, "{listed}");
    assert_eq!(agents[0]["name"], "admin@example.com");

    // Right-to-left names are names like any other.
    for name in ["שרה כהן", "محمد علي (2)"] {
        let (status, c) = rename(&app, &admin, &id, json!({"contactName": name})).await;
        assert_eq!((status, &c["contact"]["name"]), (200, &json!(name)));
        let (status, agent) = patch_agent(name).await;
        assert_eq!((status, &agent["name"]), (200, &json!(name)));
    }
}
