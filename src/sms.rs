//! SMS rules that do not depend on HTTP or storage: phone numbers, segment counting and
//! opt-out keywords.

use phonenumber::{Mode, country};

use crate::text::{self, Lines};

/// Normalises a phone number written in any common format to E.164.
/// Numbers without a country code are read as North American, as Twilio's console does.
pub fn normalize_phone(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() || trimmed.len() > 40 || !text::is_clean(trimmed, Lines::One) {
        return None;
    }
    let e164 = read_phone(trimmed)?;
    // What we answer must read back as itself, or one contact could be two: `011780000`
    // (011 dials out of the US) became `+780000`, which reads as no number at all.
    (e164 == trimmed || read_phone(&e164).as_ref() == Some(&e164)).then_some(e164)
}

/// E.164 for `number`, as libphonenumber reads it, of at most 15 digits.
fn read_phone(number: &str) -> Option<String> {
    // A number written with its country code is parsed without a default country:
    // libphonenumber, given the US, strips a `1` after any country code as if it were the
    // US trunk prefix (+49 151… became +49 51…).
    let default_country = (!number.starts_with('+')).then_some(country::Id::US);
    let parsed = phonenumber::parse(default_country, number).ok()?;
    if !phonenumber::is_valid(&parsed) && !is_possible(&parsed) {
        return None;
    }
    let e164 = parsed.format().mode(Mode::E164).to_string();
    (e164.len() <= 16).then_some(e164)
}

/// Fictional and test numbers (555-01xx, Twilio's +1500555xxxx) are not "valid" in
/// libphonenumber's sense but are real destinations for us; accept any number of a
/// plausible length for its country, within E.164's 15 digits.
fn is_possible(n: &phonenumber::PhoneNumber) -> bool {
    let national = n.national().value().to_string();
    let code_digits = n.code().value().to_string().len();
    match n.code().value() {
        1 => national.len() == 10 && !national.starts_with(['0', '1']),
        _ => national.len() >= 4 && code_digits + national.len() <= 15,
    }
}

/// How a body travels: GSM-7 when every character is in the GSM 03.38 alphabet (basic set and
/// extension table), else UCS-2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

/// A body as carriers split it: its encoding and the units each part carries (septets for GSM-7,
/// UTF-16 code units for UCS-2). No parts for an empty body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    pub encoding: Encoding,
    pub parts: Vec<usize>,
}

/// GSM 03.38 basic character set, without its escape (0x1B): that is not text anyone types, so
/// a body holding it goes as UCS-2 (as the page's `static/js/segments.js` decides too).
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// The extension table: each of these is the escape plus one septet.
const GSM_EXTENDED: &str = "^{}\\[~]|€\u{0c}";

fn septets(c: char) -> Option<usize> {
    if GSM_BASIC.contains(c) {
        Some(1)
    } else if GSM_EXTENDED.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// Splits `body` into SMS parts. One SMS carries 160 septets (GSM-7) or 70 UTF-16 units
/// (UCS-2); a longer body goes in parts of 153 or 67, the rest of each part being the header
/// that joins them. A character is never cut in two: an escape pair or a surrogate pair that
/// would straddle two parts starts the next one, leaving its part one unit short.
pub fn split(body: &str) -> Split {
    let gsm: Option<Vec<usize>> = body.chars().map(septets).collect();
    let (encoding, units, single, per_part) = match gsm {
        Some(units) => (Encoding::Gsm7, units, 160, 153),
        None => (
            Encoding::Ucs2,
            body.chars().map(char::len_utf16).collect(),
            70,
            67,
        ),
    };
    let total: usize = units.iter().sum();
    let parts = if total == 0 {
        Vec::new()
    } else if total <= single {
        vec![total]
    } else {
        let mut parts: Vec<usize> = Vec::new();
        for unit in units {
            match parts.last_mut() {
                Some(last) if *last + unit <= per_part => *last += unit,
                _ => parts.push(unit),
            }
        }
        parts
    };
    Split { encoding, parts }
}

/// The number of SMS segments `body` takes (0 for an empty body): a message's `segments`, and
/// what pacing charges for it.
pub fn segments(body: &str) -> i64 {
    split(body).parts.len() as i64
}

/// What an inbound message asks for, as Twilio's default opt-out handling reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptChange {
    OptOut,
    OptIn,
}

/// The whole body (trimmed, any case) must be a keyword: "Stop please" is neither.
pub fn opt_change(body: &str, opt_out_type: Option<&str>) -> Option<OptChange> {
    match opt_out_type.map(str::to_ascii_uppercase).as_deref() {
        Some("STOP") => return Some(OptChange::OptOut),
        Some("START") => return Some(OptChange::OptIn),
        _ => {}
    }
    let word = body.trim().to_ascii_uppercase();
    match word.as_str() {
        "STOP" | "STOPALL" | "UNSUBSCRIBE" | "CANCEL" | "END" | "QUIT" | "OPTOUT" | "REVOKE" => {
            Some(OptChange::OptOut)
        }
        "START" | "YES" | "UNSTOP" => Some(OptChange::OptIn),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_in_common_formats() {
        for raw in [
            "(415) 867-5309",
            "415.867.5309",
            "+1 415 867 5309",
            "14158675309",
            "4158675309",
        ] {
            assert_eq!(
                normalize_phone(raw).as_deref(),
                Some("+14158675309"),
                "{raw}"
            );
        }
        assert_eq!(
            normalize_phone("+44 20 7946 0958").as_deref(),
            Some("+442079460958")
        );
        for (raw, e164) in [
            ("+49 151 23456789", "+4915123456789"),
            ("+49 170 1234567", "+491701234567"),
            ("+86 138 1234 5678", "+8613812345678"),
            ("+33 6 12 34 56 78", "+33612345678"),
        ] {
            assert_eq!(normalize_phone(raw).as_deref(), Some(e164), "{raw}");
        }
        assert_eq!(
            normalize_phone("+15005550006").as_deref(),
            Some("+15005550006")
        );
        assert_eq!(
            normalize_phone("555-123-4567").as_deref(),
            Some("+15551234567")
        );
        for bad in [
            "",
            "hello",
            "123",
            "+1 (000) 000-0000",
            &"9".repeat(60),
            "+14158675309\0",
            "011780000",
            "+2010000000000000",
            "+4940000000000000",
            "+530001000",
            "+1415\u{1b}8675309",
        ] {
            assert_eq!(normalize_phone(bad), None, "{bad}");
        }
    }

    /// The page's copy of the rule (`static/js/segments.js`) is tested against the same file.
    #[test]
    fn segments_match_the_shared_fixture() {
        #[derive(serde::Deserialize)]
        struct Fixture {
            cases: Vec<Case>,
        }
        #[derive(serde::Deserialize)]
        struct Case {
            name: String,
            text: Vec<Piece>,
            encoding: String,
            segments: i64,
            parts: Vec<usize>,
        }
        /// A string, or a string and how many times it repeats.
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Piece {
            Text(String),
            Repeated(String, usize),
        }
        let fixture: Fixture =
            serde_json::from_str(include_str!("../tests/fixtures/segments.json"))
                .expect("the fixture is JSON");
        assert!(!fixture.cases.is_empty());
        for case in fixture.cases {
            let text: String = case
                .text
                .iter()
                .map(|piece| match piece {
                    Piece::Text(s) => s.clone(),
                    Piece::Repeated(s, times) => s.repeat(*times),
                })
                .collect();
            let split = split(&text);
            let encoding = match split.encoding {
                Encoding::Gsm7 => "GSM-7",
                Encoding::Ucs2 => "UCS-2",
            };
            let name = &case.name;
            assert_eq!(encoding, case.encoding, "{name}");
            assert_eq!(split.parts, case.parts, "{name}");
            assert_eq!(segments(&text), case.segments, "{name}");
        }
    }

    #[test]
    fn only_whole_keywords_change_opt_out() {
        assert_eq!(opt_change(" stop ", None), Some(OptChange::OptOut));
        assert_eq!(opt_change("Unsubscribe", None), Some(OptChange::OptOut));
        assert_eq!(opt_change("Stop please", None), None);
        assert_eq!(opt_change("unstop", None), Some(OptChange::OptIn));
        assert_eq!(opt_change("hi", Some("STOP")), Some(OptChange::OptOut));
        assert_eq!(opt_change("hi", Some("START")), Some(OptChange::OptIn));
        assert_eq!(opt_change("yes", None), Some(OptChange::OptIn));
    }
}
