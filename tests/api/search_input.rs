//! Any search text is data (docs/api.md, "Search"): whatever Unicode `q` holds, on either
//! database, the answer is a page (`200`) or, for text no search takes, `422` naming `q`;
//! never a `500`. Full-text query syntax (`' : & | ! ( ) * \ <->`) and the letters the
//! database folds into it (modifier apostrophes become `'`) are looked for as text.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};
use smsdesk::domain::SearchText;

use crate::helpers::{Agent, TestApp, read};
use crate::on_both_backends;

on_both_backends! {
    query_syntax_and_folded_apostrophes_are_text: Simulator,
    any_unicode_search_text_is_answered: Simulator,
}

const OURS: &str = "+15550008001";

/// Random search texts asked per backend, each with a page of one and a page of 50: a page
/// of one checks a window of only a few conversations, so common words are also looked for
/// below it.
const CASES: usize = 96;

/// The conversations searched: contacts and messages that hold what the texts are made of.
const CONTACTS: [(&str, &str, &str); 10] = [
    ("+14155550801", "Kaʻiulani", "aloha from Hawaiʻi"),
    ("+14155550802", "O'Brien", "donʼt stop, it's fine"),
    ("+14155550803", "ʻOla", "the ŉ letter and ˈstress"),
    ("+14155550804", "Ana & Bo", "a|b (c) !d *e \\f <-> g"),
    ("+14155550805", "Zoë", "café crème"),
    ("+14155550806", "Renée", "'quoted' ''twice'' :* &"),
    ("+14155550807", "Ümit", "prime ʹ and reversed ʽ"),
    ("+14155550808", "Straße", "delivery on tuesday"),
    ("+14155550809", "İpek", "one more note"),
    ("+14155550810", "Łukasz", "another note"),
];

async fn seed(app: &TestApp) -> (Agent, Vec<String>) {
    let alice = app.agent("alice@example.com", &[OURS]).await;
    let mut ids = Vec::new();
    for (phone, name, body) in CONTACTS {
        app.inbound(phone, OURS, body).await;
        let (status, c) = app
            .post_json(
                "/api/crm/sms/conversations",
                Some(&alice),
                json!({"phone": phone, "name": name}),
            )
            .await;
        assert_eq!(status, 200, "{c}");
        ids.push(c["id"].as_str().unwrap().to_owned());
    }
    (alice, ids)
}

/// The answer to `?q=` with a page of `limit`.
async fn ask(app: &TestApp, agent: &Agent, q: &str, limit: usize) -> (u16, Value) {
    let mut url = reqwest::Url::parse(&app.url("/api/crm/sms/conversations")).unwrap();
    url.query_pairs_mut()
        .append_pair("q", q)
        .append_pair("limit", &limit.to_string());
    let r = app
        .http
        .get(url)
        .bearer_auth(&agent.token)
        .send()
        .await
        .unwrap();
    read(r).await
}

/// Asks `q` with pages of 1 and 50: answered when the text is one a search takes, else
/// `422` naming `q`. The ids found with the page of 50.
async fn answered(app: &TestApp, agent: &Agent, q: &str) -> Vec<String> {
    let takes = SearchText::parse(q).is_ok();
    let mut found = Vec::new();
    for limit in [1, 50] {
        let (status, body) = ask(app, agent, q, limit).await;
        if takes {
            assert_eq!(status, 200, "q={q:?} limit={limit}: {body}");
            found = body["conversations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_owned())
                .collect();
        } else {
            assert_eq!(status, 422, "q={q:?} limit={limit}: {body}");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.starts_with("q "), "q={q:?}: {message}");
        }
    }
    found
}

async fn query_syntax_and_folded_apostrophes_are_text(app: TestApp) {
    let (alice, ids) = seed(&app).await;
    let marks = [
        "ʻ", "ʼ", "ʹ", "ʽ", "ˈ", "ŉ", "'", ":", "&", "|", "!", "(", ")", "*", "\\", "<->", "''",
    ];
    for mark in marks {
        // Alone, inside a word, starting a word, as the last word (a prefix) and before it.
        for q in [
            mark.to_owned(),
            format!("don{mark}t"),
            format!("{mark}stop"),
            format!("stop {mark}"),
            format!("{mark} stop"),
            format!("aloha{mark}"),
            format!("{mark}{mark}:*"),
            format!("'{mark}' & {mark}|!({mark})"),
        ] {
            answered(&app, &alice, &q).await;
        }
    }
    // Folded apostrophes still find their words.
    let found = answered(&app, &alice, "donʼt stop").await;
    assert!(found.contains(&ids[1]), "donʼt stop: {found:?}");
    let found = answered(&app, &alice, "Hawaiʻi").await;
    assert!(found.contains(&ids[0]), "Hawaiʻi: {found:?}");
    let found = answered(&app, &alice, "kaʻiu").await;
    assert!(found.contains(&ids[0]), "kaʻiu: {found:?}");
    let found = answered(&app, &alice, "it's fi").await;
    assert_eq!(found, [ids[1].clone()], "it's fi");
    // Fullwidth signs fold into LIKE's wildcards and escape, and stay signs.
    for sign in ["％", "＿", "＼", "％＿＼", " ＼ "] {
        let found = answered(&app, &alice, sign).await;
        assert!(found.is_empty(), "{sign}: {found:?}");
    }
}

/// Texts made of any characters, with the ones that mean something to a full-text query or
/// that the database folds into such a character drawn more often.
fn search_text() -> impl Strategy<Value = String> {
    let meaningful = prop::sample::select(vec![
        'ʻ', 'ʼ', 'ʹ', 'ʽ', 'ˈ', 'ŉ', '\'', '"', ':', '&', '|', '!', '(', ')', '*', '\\', '<', '-',
        '>', '%', '_', '^', '{', '}', ' ', 'é', 'ß', 'İ', 'ﬁ', '０', '\u{0301}',
    ]);
    let c = prop_oneof![
        3 => meaningful,
        3 => any::<char>(),
        2 => prop::char::range('a', 'z'),
    ];
    prop::collection::vec(c, 0..32).prop_map(|cs| cs.into_iter().collect())
}

async fn any_unicode_search_text_is_answered(app: TestApp) {
    let (alice, _) = seed(&app).await;
    let mut runner = TestRunner::default();
    let strategy = search_text();
    for _ in 0..CASES {
        let q = strategy.new_tree(&mut runner).unwrap().current();
        answered(&app, &alice, &q).await;
    }
}
