//! Searching the conversation list (docs/api.md, "Search"): names whatever their case and accents,
//! phones in any written form, messages holding all the words (the last as a prefix), only
//! the agent's own conversations, newest activity first, page by page, and any text as data.

use futures_util::{StreamExt, stream};
use serde_json::json;
use smsdesk::api::conversations::ConversationPage;
use smsdesk::model::Conversation;

use crate::helpers::{Agent, TestApp};
use crate::on_both_backends;

on_both_backends! {
    names_are_found_whatever_their_case_and_accents: Simulator,
    phones_are_found_in_any_written_form: Simulator,
    messages_hold_all_the_words_the_last_as_a_prefix: Simulator,
    another_agents_conversations_are_never_found: Simulator,
    results_come_newest_first_page_by_page: Simulator,
    any_text_is_data: Simulator,
    a_renamed_contact_is_found_by_the_new_name: Simulator,
    common_words_page_like_the_list: Simulator,
}

const OURS: &str = "+15550006001";
const THEIRS: &str = "+15550006002";

/// Opens a conversation with `phone`, named `name`; returns its id.
async fn named(app: &TestApp, agent: &Agent, phone: &str, name: &str) -> i64 {
    let (status, c) = app
        .post_json_as::<Conversation>(
            "/api/crm/sms/conversations",
            Some(agent),
            json!({"phone": phone, "name": name}),
        )
        .await;
    assert_eq!(status, 200, "{c:?}");
    c.id.get()
}

/// The conversation of an inbound message from `from` to `to`, as `agent` sees it.
async fn inbound(app: &TestApp, agent: &Agent, from: &str, to: &str, body: &str) -> i64 {
    app.inbound(from, to, body).await;
    let (status, c) = app
        .post_json_as::<Conversation>(
            "/api/crm/sms/conversations",
            Some(agent),
            json!({"phone": from, "from": to}),
        )
        .await;
    assert_eq!(status, 200, "{c:?}");
    c.id.get()
}

/// Names the contact of conversation `id` through `PATCH`.
async fn rename(app: &TestApp, agent: &Agent, id: i64, name: &str) {
    let r = app
        .http
        .patch(app.url(&format!("/api/crm/sms/conversations/{id}")))
        .bearer_auth(&agent.token)
        .json(&json!({"contactName": name}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// One page of `?q=`: ids and the next cursor.
async fn search_page(
    app: &TestApp,
    agent: &Agent,
    q: &str,
    limit: usize,
    cursor: Option<&str>,
) -> (Vec<i64>, Option<String>) {
    let mut url = reqwest::Url::parse(&app.url("/api/crm/sms/conversations")).unwrap();
    url.query_pairs_mut()
        .append_pair("q", q)
        .append_pair("limit", &limit.to_string());
    if let Some(c) = cursor {
        url.query_pairs_mut().append_pair("cursor", c);
    }
    let path = &url.as_str()[app.addr.len()..];
    let (status, page) = app.get_as::<ConversationPage>(path, Some(agent)).await;
    assert_eq!(status, 200, "q={q:?}");
    (
        page.conversations.iter().map(|c| c.id.get()).collect(),
        page.next_cursor.map(|c| c.0.to_string()),
    )
}

/// Every result of `q`, in order (one page of 200).
async fn search(app: &TestApp, agent: &Agent, q: &str) -> Vec<i64> {
    let (ids, next) = search_page(app, agent, q, 200, None).await;
    assert_eq!(next, None);
    ids
}

/// `ids` sorted, to compare sets.
fn set(mut ids: Vec<i64>) -> Vec<i64> {
    ids.sort();
    ids
}

async fn names_are_found_whatever_their_case_and_accents(app: TestApp) {
    let alice = app.agent("alice@example.com", &[OURS]).await;
    let jose = named(&app, &alice, "+14155550101", "José Álvarez").await;
    let zoe = named(&app, &alice, "+14155550102", "Zoë Ångström").await;
    let bob = named(&app, &alice, "+14155550103", "Bob Marley").await;
    assert_eq!(search(&app, &alice, "jose").await, [jose]);
    assert_eq!(search(&app, &alice, "ALVAREZ").await, [jose]);
    assert_eq!(search(&app, &alice, "sé Álv").await, [jose], "across words");
    assert_eq!(search(&app, &alice, "zoe angstrom").await, [zoe]);
    assert_eq!(search(&app, &alice, "ARLE").await, [bob], "inside a word");
    assert_eq!(
        search(&app, &alice, "bo").await,
        [bob],
        "shorter than a trigram"
    );
    assert_eq!(set(search(&app, &alice, "ar").await), set(vec![jose, bob]));
    assert!(search(&app, &alice, "alvarezz").await.is_empty());
}

async fn phones_are_found_in_any_written_form(app: TestApp) {
    let alice = app.agent("alice@example.com", &[OURS]).await;
    let target = app.conversation(&alice, "+15551234567").await;
    let target: i64 = target.parse().unwrap();
    let other: i64 = app
        .conversation(&alice, "+14155559876")
        .await
        .parse()
        .unwrap();
    for q in [
        "(555) 123-4567",
        "555-123-4567",
        "555.123.4567",
        "+1 555 123 4567",
        "+15551234567",
        "5551234567",
        "1234567",
        "234",
    ] {
        assert_eq!(search(&app, &alice, q).await, [target], "{q}");
    }
    assert_eq!(
        set(search(&app, &alice, "+1").await),
        Vec::<i64>::new(),
        "fewer than three digits is no phone"
    );
    assert_eq!(search(&app, &alice, "9876").await, [other]);
}

async fn messages_hold_all_the_words_the_last_as_a_prefix(app: TestApp) {
    let alice = app.agent("alice@example.com", &[OURS]).await;
    let tuesday = inbound(
        &app,
        &alice,
        "+14155550201",
        OURS,
        "The delivery is set for Tuesday",
    )
    .await;
    let cancelled = inbound(
        &app,
        &alice,
        "+14155550202",
        OURS,
        "Delivery CANCELLED, sorry",
    )
    .await;
    let dessert = inbound(&app, &alice, "+14155550203", OURS, "Crème brûlée tonight?").await;
    // The two words, but in two different messages.
    let split = inbound(&app, &alice, "+14155550204", OURS, "the delivery").await;
    inbound(&app, &alice, "+14155550204", OURS, "is on tuesday").await;

    assert_eq!(search(&app, &alice, "delivery tues").await, [tuesday]);
    assert_eq!(search(&app, &alice, "TUESDAY delivery").await, [tuesday]);
    assert!(
        search(&app, &alice, "tues delivery").await.is_empty(),
        "only the last word is a prefix"
    );
    assert_eq!(
        set(search(&app, &alice, "deliv").await),
        set(vec![tuesday, cancelled, split])
    );
    assert_eq!(search(&app, &alice, "delivery cancel").await, [cancelled]);
    assert_eq!(
        search(&app, &alice, "creme brul").await,
        [dessert],
        "accents"
    );
    assert_eq!(search(&app, &alice, "BRÛLÉE").await, [dessert]);
    // An outbound message counts too.
    let sent = app.conversation(&alice, "+14155550205").await;
    app.send(&alice, &sent, "your parcel left the warehouse", "c-1")
        .await;
    assert_eq!(
        search(&app, &alice, "parcel warehouse").await,
        [sent.parse::<i64>().unwrap()]
    );
}

async fn another_agents_conversations_are_never_found(app: TestApp) {
    let alice = app.agent("alice@example.com", &[OURS]).await;
    let bob = app.agent("bob@example.com", &[THEIRS]).await;
    let carol = app.agent("carol@example.com", &[OURS, THEIRS]).await;
    let secret = inbound(&app, &bob, "+14155550301", THEIRS, "the secret plan").await;
    named(&app, &bob, "+14155550302", "Secret Sam").await;
    let mine = inbound(&app, &alice, "+14155550303", OURS, "no secrets here").await;
    for q in ["secret", "Sam", "4155550301", "plan"] {
        let found = search(&app, &alice, q).await;
        assert!(found.iter().all(|id| *id == mine), "{q}: {found:?}");
    }
    assert_eq!(
        search(&app, &alice, "secret").await,
        [mine],
        "secrets: prefix"
    );
    // The same conversations are found by an agent who shares the number.
    assert!(search(&app, &carol, "secret plan").await.contains(&secret));
    assert_eq!(search(&app, &bob, "no secrets").await, Vec::<i64>::new());
}

async fn results_come_newest_first_page_by_page(app: TestApp) {
    let alice = app.agent("alice@example.com", &[OURS, THEIRS]).await;
    // Twenty conversations, alternating numbers, newest last; a few mention apples, most of
    // them far below the newest ones (past the window a small page reads first).
    let mut apples = Vec::new();
    for i in 0..20 {
        let number = if i % 2 == 0 { OURS } else { THEIRS };
        let body = if [0, 1, 2, 3, 10, 19].contains(&i) {
            format!("apple pie number {i}")
        } else {
            format!("pear tart number {i}")
        };
        let id = inbound(
            &app,
            &alice,
            &format!("+1415555{:04}", 400 + i),
            number,
            &body,
        )
        .await;
        if body.starts_with("apple") {
            apples.push(id);
        }
    }
    apples.reverse();
    assert_eq!(
        search(&app, &alice, "apple").await,
        apples,
        "newest activity first"
    );
    for limit in [1, 2, 3] {
        let mut walked = Vec::new();
        let mut cursor = None;
        loop {
            let (ids, next) = search_page(&app, &alice, "apple", limit, cursor.as_deref()).await;
            assert!(ids.len() <= limit);
            walked.extend(ids);
            match next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
        assert_eq!(walked, apples, "pages of {limit}");
    }
    // A conversation that moves to the top moves in the results too.
    let oldest = *apples.last().unwrap();
    app.inbound("+14155550400", OURS, "one more").await;
    assert_eq!(search(&app, &alice, "apple").await[0], oldest);
}

async fn any_text_is_data(app: TestApp) {
    let alice = app.agent("alice@example.com", &[OURS]).await;
    let percent = named(&app, &alice, "+14155550501", "100% Real").await;
    let underscore = named(&app, &alice, "+14155550502", "snake_case").await;
    let quote = inbound(
        &app,
        &alice,
        "+14155550503",
        OURS,
        r#"she said "hi" * NEAR(x, y)"#,
    )
    .await;
    assert_eq!(
        search(&app, &alice, "%").await,
        [percent],
        "% is a percent sign"
    );
    assert_eq!(
        search(&app, &alice, "_").await,
        [underscore],
        "_ is an underscore"
    );
    assert_eq!(search(&app, &alice, "0% r").await, [percent]);
    for q in [
        "\"",
        "*",
        "NEAR(",
        "near(x",
        "'",
        "\\",
        "a OR b",
        "x AND",
        "NOT",
        "\") OR 1=1 --",
        "'; DROP TABLE messages; --",
        ":*",
        "&|!<->",
        "{name}: x",
        "^hi",
        "hi\"",
        "😀",
        "ß",
    ] {
        let (ids, _) = search_page(&app, &alice, q, 50, None).await;
        assert!(ids.len() <= 3, "{q}: {ids:?}");
    }
    assert_eq!(search(&app, &alice, "said hi near").await, [quote]);
    assert_eq!(search(&app, &alice, "\"hi\" NEAR").await, [quote]);
    // A conversation's id is not a word of its messages (SQLite indexes it beside them).
    let id_as_word = format!("{quote} {quote}");
    assert!(search(&app, &alice, &id_as_word).await.is_empty());

    // Too long: refused, naming q; at the limit: answered.
    let (status, body) = app
        .get(
            &format!("/api/crm/sms/conversations?q={}", "a".repeat(1000)),
            Some(&alice),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().starts_with("q "),
        "{body}"
    );
    search(&app, &alice, &"é".repeat(200)).await;
    let (status, _) = app
        .get("/api/crm/sms/conversations?q=a%00b", Some(&alice))
        .await;
    assert_eq!(status, 422, "control characters");

    // An empty or blank q is the plain list.
    let (_, plain) = app
        .get_as::<ConversationPage>("/api/crm/sms/conversations", Some(&alice))
        .await;
    let plain: Vec<i64> = plain.conversations.iter().map(|c| c.id.get()).collect();
    assert_eq!(plain.len(), 3);
    for q in ["", "%20%20"] {
        let (status, page) = app
            .get_as::<ConversationPage>(&format!("/api/crm/sms/conversations?q={q}"), Some(&alice))
            .await;
        assert_eq!(status, 200);
        let ids: Vec<i64> = page.conversations.iter().map(|c| c.id.get()).collect();
        assert_eq!(ids, plain, "q={q:?}");
    }
}

async fn a_renamed_contact_is_found_by_the_new_name(app: TestApp) {
    let alice = app.agent("alice@example.com", &[OURS]).await;
    let id = named(&app, &alice, "+14155550601", "Old Name").await;
    rename(&app, &alice, id, "Émilie Brontë").await;
    assert_eq!(search(&app, &alice, "emilie bronte").await, [id]);
    assert!(search(&app, &alice, "old name").await.is_empty());
}

/// Every conversation of the plain list, newest activity first, with its last message's text.
async fn whole_list(app: &TestApp, agent: &Agent) -> Vec<(i64, String)> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/api/crm/sms/conversations?limit=200".to_owned();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = app.get_as::<ConversationPage>(&path, Some(agent)).await;
        assert_eq!(status, 200);
        all.extend(page.conversations.iter().map(|c| {
            let text = c.last_message.as_ref().map(|m| m.body.clone());
            (c.id.get(), text.unwrap_or_default())
        }));
        match page.next_cursor {
            Some(c) => cursor = Some(c.0.to_string()),
            None => return all,
        }
    }
}

/// Every result of `q`, page by page of `limit`.
async fn search_all(app: &TestApp, agent: &Agent, q: &str, limit: usize) -> Vec<i64> {
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let (ids, next) = search_page(app, agent, q, limit, cursor.as_deref()).await;
        assert!(ids.len() <= limit, "{q}: a page of {}", ids.len());
        all.extend(ids);
        match next {
            Some(c) => cursor = Some(c),
            None => return all,
        }
    }
}

/// Words found in more messages than the indexes are read whole for: the newest
/// conversations are checked first, and what they lack is found below them, page by page
/// in the list's order, with the database's statistics up to date as a live one keeps them.
async fn common_words_page_like_the_list(app: TestApp) {
    let alice = app.agent("alice@example.com", &[OURS]).await;
    const OLDER: usize = 2_060;
    const NEWER: usize = 45;
    let post = |i: usize, body: String| {
        let app = &app;
        async move {
            app.inbound(&format!("+1415{:07}", 1_000_000 + i), OURS, &body)
                .await;
        }
    };
    stream::iter((0..OLDER).map(|i| post(i, format!("common early note {i}"))))
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    stream::iter((OLDER..OLDER + NEWER).map(|i| post(i, format!("common late note {i}"))))
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    // An old conversation whose contact's name holds the word too.
    let old: i64 = app
        .conversation(&alice, "+14151000007")
        .await
        .parse()
        .unwrap();
    rename(&app, &alice, old, "Commonwealth Bank").await;
    if app.database_url.starts_with("postgres") {
        let mut db = <sqlx::PgConnection as sqlx::Connection>::connect(&app.database_url)
            .await
            .unwrap();
        sqlx::query("ANALYZE messages, conversations")
            .execute(&mut db)
            .await
            .unwrap();
    }

    let list = whole_list(&app, &alice).await;
    assert_eq!(list.len(), OLDER + NEWER);
    // What `q` finds: a word of the message starting with it, or the contact's name.
    let expected = |q: &str| -> Vec<i64> {
        list.iter()
            .filter(|(id, text)| {
                text.split(' ').any(|w| w.starts_with(q))
                    || (*id == old && "commonwealth bank".contains(q))
            })
            .map(|(id, _)| *id)
            .collect()
    };
    for (q, limit) in [("common", 200), ("common", 50), ("comm", 50), ("early", 10)] {
        let found = search_all(&app, &alice, q, limit).await;
        let expected = expected(q);
        assert_eq!(found.len(), expected.len(), "{q} by {limit}");
        assert!(found == expected, "{q} by {limit}: not in the list's order");
    }
    let late = search_all(&app, &alice, "late", 50).await;
    assert_eq!(late, expected("late"), "a word of the newest only");
    assert_eq!(late.len(), NEWER);

    // Digits that every contact's phone holds (an area code), and one contact's name.
    let office = named(&app, &alice, "+14255550100", "Office 14151").await;
    let all: Vec<i64> = whole_list(&app, &alice)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(all.len(), OLDER + NEWER + 1);
    assert_eq!(search_all(&app, &alice, "14151", 50).await, all, "14151");
    let phones: Vec<i64> = all.iter().copied().filter(|id| *id != office).collect();
    assert_eq!(
        search_all(&app, &alice, "1 415 1", 50).await,
        phones,
        "the phones hold 1 415 1's digits, the name does not hold its text"
    );
}
