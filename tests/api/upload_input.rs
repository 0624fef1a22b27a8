//! Any multipart body is answered (docs/api.md, "Sending pictures"): a well-formed upload gets
//! exactly what its parts call for (`201` for one whole picture in the part `file`, `415` for
//! other bytes, `422` for no `file`, an empty one or two of them), and a body cut short,
//! damaged, or framed by another boundary gets our error JSON with a `4xx`; never a `500`.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::Value;
use smsdesk::domain::Picture;

use crate::helpers::{Agent, GIF, PNG, Part, TestApp, jpeg, multipart, read};
use crate::on_both_backends;

on_both_backends! {
    well_formed_uploads_get_what_their_parts_call_for: Simulator,
    damaged_multipart_bodies_get_a_4xx: Simulator,
}

const OURS: &str = "+15550009001";

/// Bodies posted per backend and property.
const CASES: usize = 64;

/// The bytes of a part: whole pictures, pictures cut short or with a byte changed, and
/// anything else.
fn part_bytes() -> impl Strategy<Value = Vec<u8>> {
    let pictures = prop::sample::select(vec![PNG.to_vec(), GIF.to_vec(), jpeg(600)]);
    prop_oneof![
        3 => pictures.clone(),
        2 => (pictures.clone(), any::<prop::sample::Index>())
            .prop_map(|(p, at)| p[..at.index(p.len())].to_vec()),
        2 => (pictures, any::<prop::sample::Index>(), any::<u8>()).prop_map(|(mut p, at, b)| {
            let i = at.index(p.len());
            p[i] = b;
            p
        }),
        2 => prop::collection::vec(any::<u8>(), 0..300),
        1 => Just(Vec::new()),
    ]
}

/// A part as a browser or a script would frame it: named `file` or something else, with or
/// without a filename and a declared type, which the server never believes.
#[derive(Debug, Clone)]
struct Framed {
    name: String,
    filename: Option<String>,
    content_type: Option<String>,
    bytes: Vec<u8>,
}

fn framed() -> impl Strategy<Value = Framed> {
    let name = prop_oneof![4 => Just("file".to_owned()), 1 => "[a-z]{1,8}"];
    let filename = prop::option::of("[a-zA-Z0-9 ._-]{0,20}");
    let content_type = prop::option::of(prop::sample::select(vec![
        "image/png".to_owned(),
        "image/jpeg".to_owned(),
        "application/octet-stream".to_owned(),
        "text/html".to_owned(),
    ]));
    (name, filename, content_type, part_bytes()).prop_map(
        |(name, filename, content_type, bytes)| Framed {
            name,
            filename,
            content_type,
            bytes,
        },
    )
}

fn body_of(parts: &[Framed]) -> (String, Vec<u8>) {
    let parts: Vec<Part> = parts
        .iter()
        .map(|p| Part {
            name: &p.name,
            filename: p.filename.as_deref(),
            content_type: p.content_type.as_deref(),
            bytes: &p.bytes,
        })
        .collect();
    multipart(&parts)
}

async fn post(app: &TestApp, agent: &Agent, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    let r = app
        .http
        .post(app.url("/api/crm/sms/uploads"))
        .bearer_auth(&agent.token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    read(r).await
}

fn assert_our_error(status: u16, body: &Value, what: &str) {
    assert!(
        [400, 413, 415, 422].contains(&status),
        "{what}: {status} {body}"
    );
    assert!(
        body["error"]["code"]
            .as_str()
            .is_some_and(|c| !c.is_empty())
            && body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
        "{what}: {body}"
    );
}

async fn well_formed_uploads_get_what_their_parts_call_for(app: TestApp) {
    let alice = app.agent("alice@example.com", &[OURS]).await;
    let mut runner = TestRunner::default();
    let strategy = prop::collection::vec(framed(), 0..4);
    let mut taken = std::collections::HashSet::new();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..CASES {
        let parts = strategy.new_tree(&mut runner).unwrap().current();
        let files: Vec<&Framed> = parts.iter().filter(|p| p.name == "file").collect();
        let (content_type, body) = body_of(&parts);
        let (status, answer) = post(&app, &alice, &content_type, body).await;
        let what = format!("{parts:?}");
        seen.insert(status);
        match files.as_slice() {
            [one] if !one.bytes.is_empty() => match Picture::sniff(&one.bytes) {
                Ok(kind) => {
                    assert_eq!(status, 201, "{what}: {answer}");
                    assert_eq!(answer["contentType"], kind.content_type(), "{what}");
                    assert_eq!(answer["size"], one.bytes.len(), "{what}");
                    let id = answer["id"].as_str().expect("an id").to_owned();
                    assert!(taken.insert(id), "{what}: an id given twice");
                }
                Err(_) => {
                    assert_our_error(status, &answer, &what);
                    assert_eq!(answer["error"]["code"], "unsupported_media_type", "{what}");
                }
            },
            _ => {
                assert_our_error(status, &answer, &what);
                assert_eq!(status, 422, "{what}: {answer}");
            }
        }
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        [201, 415, 422],
        "the cases reached every answer"
    );
}

/// What may happen to a body between a client and the server.
#[derive(Debug, Clone)]
enum Damage {
    CutAt(prop::sample::Index),
    ByteAt(prop::sample::Index, u8),
    OtherBoundary(String),
    NoBoundary,
    Garbage(Vec<u8>),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        3 => any::<prop::sample::Index>().prop_map(Damage::CutAt),
        3 => (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Damage::ByteAt(i, b)),
        1 => "[ -~]{0,80}".prop_map(Damage::OtherBoundary),
        1 => Just(Damage::NoBoundary),
        2 => prop::collection::vec(any::<u8>(), 0..400).prop_map(Damage::Garbage),
    ]
}

async fn damaged_multipart_bodies_get_a_4xx(app: TestApp) {
    let alice = app.agent("alice@example.com", &[OURS]).await;
    let mut runner = TestRunner::default();
    let strategy = (prop::collection::vec(framed(), 1..3), damage());
    for _ in 0..CASES {
        let (parts, damage) = strategy.new_tree(&mut runner).unwrap().current();
        let (mut content_type, mut body) = body_of(&parts);
        match &damage {
            Damage::CutAt(at) => body.truncate(at.index(body.len())),
            Damage::ByteAt(at, b) => {
                let i = at.index(body.len());
                body[i] = *b;
            }
            Damage::OtherBoundary(b) => content_type = format!("multipart/form-data; boundary={b}"),
            Damage::NoBoundary => content_type = "multipart/form-data".to_owned(),
            Damage::Garbage(bytes) => body = bytes.clone(),
        }
        let (status, answer) = post(&app, &alice, &content_type, body).await;
        let what = format!("{parts:?} {damage:?}");
        // A changed byte may fall in a picture or in a part the server skips, and the body
        // stays an upload it takes.
        if status == 201 {
            assert!(
                answer["contentType"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("image/")),
                "{what}: {answer}"
            );
        } else {
            assert_our_error(status, &answer, &what);
        }
    }
}
