//! Property tests of everything that reads input from outside and needs no server: phone
//! numbers, message bodies and their segments, names, search text, shortcuts, client ids,
//! e-mails, passwords, config values, Twilio's signature and the bytes of an uploaded picture. Whatever comes in, each parser
//! answers a value or an error, never panics, and what it accepts keeps its promises.
//!
//! `cargo test` runs a short round (proptest's 256 cases per property). A long run uses the
//! `fuzz` profile (optimised, with overflow checks) and more cases, and prints the slowest
//! input of each property:
//! `PROPTEST_CASES=50000 cargo test --profile fuzz --test fuzz -- --nocapture`
//! (docs/reliability.md, "Bad input"). The webhook form, socket payloads and search text
//! against both databases are fuzzed where they are parsed (`src/webhooks.rs`) and through a
//! running server (`tests/api/search_input.rs`, `tests/api/socket_input.rs`), as are multipart
//! uploads (`tests/api/upload_input.rs`).

use std::cell::Cell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};
use smsdesk::config::Settings;
use smsdesk::domain::{
    AgentName, ClientId, ContactName, Email, MessageBody, NewAgent, PhoneNumber, Picture,
    SearchText, Shortcut,
};
use smsdesk::sms::{self, Encoding};
use smsdesk::text;
use smsdesk::twilio::signature;

/// Runs `test` on the cases of `strategy` (proptest's default count, or `PROPTEST_CASES`),
/// shrinking a failure to its smallest input, and prints the slowest input, so that a long run
/// shows one that takes more than a few milliseconds (timing is reported, never asserted).
fn fuzz<S: Strategy>(
    name: &str,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let mut runner = TestRunner::new(ProptestConfig::default());
    let slowest = Cell::new((Duration::ZERO, String::new()));
    let outcome = runner.run(&strategy, |value| {
        let shown = format!("{value:?}");
        let start = Instant::now();
        let result = test(value);
        let took = start.elapsed();
        let worst = slowest.take();
        slowest.set(if took > worst.0 { (took, shown) } else { worst });
        result
    });
    let (took, input) = slowest.take();
    let input: String = input.chars().take(120).collect();
    eprintln!("{name}: slowest input took {took:?}: {input}");
    if let Err(e) = outcome {
        panic!("{name}: {e}");
    }
}

/// Any text, weighted towards what breaks parsers: controls, bidi marks, surrogate-pair
/// characters, combining marks, digits and phone punctuation.
fn nasty_text(max: usize) -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => any::<char>(),
        2 => prop::sample::select(vec![
            '\u{0}', '\n', '\r', '\t', '\u{1b}', '\u{7f}', '\u{85}', '\u{200b}', '\u{200e}',
            '\u{202a}', '\u{202e}', '\u{2066}', '\u{2069}', '\u{feff}', '\u{301}', '€', '😀',
            '𝄞', 'ß', 'İ', '+', '(', ')', '-', '.', ' ', '%', '_', '\\', '\'', '"', '{', '}',
        ]),
        2 => prop::char::range('0', '9'),
        2 => prop::char::range('a', 'z'),
    ];
    proptest::collection::vec(piece, 0..max).prop_map(|cs| cs.into_iter().collect())
}

/// Strings shaped like phone numbers as people write them.
fn phone_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\+?[0-9 ().-]{0,24}",
        "\\+[1-9][0-9]{3,16}",
        "(00|011)?[0-9]{6,15}",
        "\\+?1? ?\\(?[2-9][0-9]{2}\\)?[ .-]?[0-9]{3}[ .-]?[0-9]{4}( ?(x|ext\\.?) ?[0-9]{1,5})?",
        nasty_text(45),
    ]
}

/// Every variable the server reads.
const SETTINGS: [&str; 15] = [
    "PORT",
    "HOST",
    "DATABASE_URL",
    "REDIS_URL",
    "PUBLIC_URL",
    "LOG_FORMAT",
    "MAX_SOCKETS_PER_AGENT",
    "METRICS_TOKEN",
    "SEND_LEASE_SECONDS",
    "SEND_RATE_PER_NUMBER",
    "TRUSTED_PROXIES",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_API_BASE",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_MESSAGING_SERVICE_SID",
];

fn is_e164(s: &str) -> bool {
    let digits = s.strip_prefix('+').unwrap_or("");
    (5..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// A number is read as E.164 or refused; what is read reads back to itself, so the same
/// contact never gets two conversations for two spellings of one normalised number.
#[test]
fn phone_numbers_normalise_to_e164_and_stay() {
    // libphonenumber reads its metadata on first use: not an input's time.
    sms::normalize_phone("+1 415 555 0100");
    fuzz("phone numbers", phone_like(), |raw| {
        match sms::normalize_phone(&raw) {
            Some(e164) => {
                prop_assert!(is_e164(&e164), "{raw:?} became {e164:?}");
                prop_assert_eq!(sms::normalize_phone(&e164), Some(e164.clone()));
                let number = PhoneNumber::parse("to", &raw).unwrap();
                prop_assert_eq!(number.as_str(), e164.as_str());
            }
            None => prop_assert!(PhoneNumber::parse("to", &raw).is_err()),
        }
        Ok(())
    });
}

/// A body is split into parts no carrier would refuse, and the parts hold all of it.
#[test]
fn bodies_split_into_parts_carriers_accept() {
    fuzz("segments", nasty_text(700), |body| {
        let split = sms::split(&body);
        let units: usize = match split.encoding {
            Encoding::Gsm7 => body
                .chars()
                .map(|c| {
                    if "^{}\\[~]|€\u{0c}".contains(c) {
                        2
                    } else {
                        1
                    }
                })
                .sum(),
            Encoding::Ucs2 => body.encode_utf16().count(),
        };
        prop_assert_eq!(split.parts.iter().sum::<usize>(), units);
        let (single, per_part) = match split.encoding {
            Encoding::Gsm7 => (160, 153),
            Encoding::Ucs2 => (70, 67),
        };
        match split.parts.len() {
            0 => prop_assert!(body.is_empty()),
            1 => prop_assert!(split.parts[0] <= single),
            _ => prop_assert!(units > single && split.parts.iter().all(|p| *p <= per_part)),
        }
        prop_assert_eq!(sms::segments(&body), split.parts.len() as i64);
        if let Ok(checked) = MessageBody::try_from(body.clone()) {
            prop_assert_eq!(checked.as_str(), body.as_str());
        }
        Ok(())
    });
}

/// Names keep no control or bidirectional control character, whatever was typed.
#[test]
fn names_hold_no_controls() {
    fuzz("names", nasty_text(130), |raw| {
        let clean = |s: &str| {
            s.chars()
                .all(|c| !c.is_control() && !text::is_bidi_control(c))
        };
        if let Ok(name) = AgentName::try_from(raw.as_str()) {
            prop_assert!(
                clean(name.as_str()) && !name.as_str().trim().is_empty(),
                "{name:?}"
            );
        }
        if let Ok(Some(name)) = ContactName::parse(&raw) {
            prop_assert!(
                clean(name.as_str()) && name.as_str().chars().count() <= 100,
                "{name:?}"
            );
        }
        Ok(())
    });
}

/// Search text of any Unicode is parsed into data or refused with a field error.
#[test]
fn search_text_is_parsed_or_refused() {
    fuzz("search text", nasty_text(300), |raw| {
        if let Ok(Some(q)) = SearchText::parse(&raw) {
            prop_assert!(!q.text().is_empty());
            if let Some(digits) = q.digits() {
                prop_assert!(!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()));
            }
            prop_assert!(smsdesk::domain::like_literal(q.text()).len() >= q.text().len());
        }
        Ok(())
    });
}

/// Shortcuts, client ids, e-mails and passwords: accepted only in their documented shape.
#[test]
fn small_fields_accept_only_their_shape() {
    let raw = prop_oneof![
        nasty_text(80),
        "[a-z0-9][a-z0-9_-]{0,40}",
        "[ -~]{0,20}@[a-z.]{0,20}",
    ];
    fuzz("fields", raw, |raw| {
        if let Ok(s) = Shortcut::try_from(raw.clone()) {
            let s = s.as_str();
            prop_assert!((1..=32).contains(&s.len()) && s.as_bytes()[0].is_ascii_alphanumeric());
            prop_assert!(
                s.bytes().all(|b| b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || b == b'_'
                    || b == b'-')
            );
        }
        if let Ok(id) = ClientId::try_from(raw.clone()) {
            prop_assert!((1..=100).contains(&id.as_str().len()));
            prop_assert!(
                id.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
            );
        }
        if let Ok(email) = Email::try_from(raw.as_str()) {
            let email = email.as_str();
            prop_assert!(email.contains('@') && email.chars().all(|c| !c.is_control()));
        }
        prop_assert!(NewAgent::check_password(&raw).is_err() || NewAgent::password_fits(&raw));
        Ok(())
    });
}

/// Any value of any setting starts the server or names the setting that is wrong.
#[test]
fn config_values_are_read_or_refused() {
    let value = prop_oneof![
        nasty_text(60),
        "[0-9]{1,25}",
        "-?[0-9]{1,6}(\\.[0-9]{1,4})?",
        "(postgres|sqlite|redis|rediss|http|https|ftp)://[a-z0-9.:@/_-]{0,30}",
        "(AC|MG)[0-9a-fA-F]{30,34}",
        "([0-9]{1,3}\\.){3}[0-9]{1,3}(/[0-9]{1,2})?(, ?[0-9a-f:]{2,20}(/[0-9]{1,3})?)?",
    ];
    let settings =
        proptest::collection::hash_map(prop::sample::select(SETTINGS.to_vec()), value, 0..8);
    fuzz("config", settings, |values: HashMap<&str, String>| {
        if let Err(e) = Settings::from_lookup(|k| values.get(k).cloned()) {
            prop_assert!(SETTINGS.contains(&e.var) && !e.message.is_empty(), "{e}");
        }
        Ok(())
    });
}

/// Verifying a signature answers yes or no for any URL, parameters and header.
#[test]
fn signatures_verify_or_not() {
    let input = (
        prop_oneof![nasty_text(80), "https://[a-z.]{1,20}/[a-z/?=&%0-9]{0,30}"],
        proptest::collection::vec((nasty_text(12), nasty_text(20)), 0..8),
        prop_oneof![nasty_text(40), "[A-Za-z0-9+/]{27}=", Just(String::new())],
    );
    fuzz("signatures", input, |(url, params, header)| {
        let token = "0123456789abcdef0123456789abcdef";
        let right = signature::sign(token, &url, &params);
        prop_assert!(signature::verify(token, &url, &params, &right));
        prop_assert_eq!(
            signature::verify(token, &url, &params, &header),
            header == right
        );
        Ok(())
    });
}

/// A whole 1×1 PNG and GIF, and the smallest whole baseline JPEG: what damage is done to.
const PICTURES: [&[u8]; 3] = [
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\0\x05\0\x01\xff\x89\x99=\x1d\0\0\0\0IEND\xaeB`\x82",
    b"GIF89a\x01\0\x01\0\x80\0\0\0\0\0\xff\xff\xff!\xf9\x04\x01\0\0\0\0,\0\0\0\0\x01\0\x01\0\0\x02\x02D\x01\0;",
    b"\xff\xd8\xff\xc0\0\x0b\x08\0\x01\0\x01\x01\x01\x11\0\xff\xda\0\x08\x01\x01\0\0?\0\x12\xff\0\x34\xff\xd9",
];

/// Any bytes are told as a picture or refused, and no picture cut short is taken: what is
/// taken is sent to the contact's phone as it is.
#[test]
fn pictures_are_told_by_their_bytes_or_refused() {
    for whole in PICTURES {
        assert!(Picture::sniff(whole).is_ok(), "{whole:?}");
        for end in 0..whole.len() {
            assert!(
                Picture::sniff(&whole[..end]).is_err(),
                "{whole:?} cut at {end}"
            );
        }
    }
    let bytes = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..600),
        (
            prop::sample::select(PICTURES.to_vec()),
            any::<prop::sample::Index>(),
            any::<u8>()
        )
            .prop_map(|(p, at, b)| {
                let mut p = p.to_vec();
                let i = at.index(p.len());
                p[i] = b;
                p
            }),
    ];
    fuzz("pictures", bytes, |bytes| {
        if let Ok(picture) = Picture::sniff(&bytes) {
            prop_assert!(picture.content_type().starts_with("image/"));
        }
        Ok(())
    });
}
