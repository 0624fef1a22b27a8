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
    // A number written with its country code is parsed without a default country:
    // libphonenumber, given the US, strips a `1` after any country code as if it were the
    // US trunk prefix (+49 151… became +49 51…).
    let default_country = (!trimmed.starts_with('+')).then_some(country::Id::US);
    let parsed = phonenumber::parse(default_country, trimmed).ok()?;
    if !phonenumber::is_valid(&parsed) && !is_possible(&parsed) {
        return None;
    }
    Some(parsed.format().mode(Mode::E164).to_string())
}

/// Fictional and test numbers (555-01xx, Twilio's +1500555xxxx) are not "valid" in
/// libphonenumber's sense but are real destinations for us; accept any number of a
/// plausible length for its country.
fn is_possible(n: &phonenumber::PhoneNumber) -> bool {
    let national = n.national().value().to_string();
    match n.code().value() {
        1 => national.len() == 10 && !national.starts_with(['0', '1']),
        _ => (4..=14).contains(&national.len()),
    }
}

/// GSM 03.38 basic character set.
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u{1b}ÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// Characters that take an escape plus one septet.
const GSM_EXTENDED: &str = "^{}\\[~]|€\u{0c}";

/// The number of SMS segments `body` takes: GSM-7 (160, or 153 per part) unless any
/// character is outside it, then UCS-2 (70, or 67 per part, counted in UTF-16 units).
pub fn segments(body: &str) -> i64 {
    let mut septets = 0usize;
    let mut gsm = true;
    for c in body.chars() {
        if GSM_BASIC.contains(c) {
            septets += 1;
        } else if GSM_EXTENDED.contains(c) {
            septets += 2;
        } else {
            gsm = false;
            break;
        }
    }
    let (units, single, multi) = if gsm {
        (septets, 160, 153)
    } else {
        (body.encode_utf16().count(), 70, 67)
    };
    let n = match units {
        0 => 0,
        u if u <= single => 1,
        u => u.div_ceil(multi),
    };
    n as i64
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
            "+1415\u{1b}8675309",
        ] {
            assert_eq!(normalize_phone(bad), None, "{bad}");
        }
    }

    #[test]
    fn segments_follow_gsm_and_ucs2_limits() {
        assert_eq!(segments(""), 0);
        assert_eq!(segments(&"a".repeat(160)), 1);
        assert_eq!(segments(&"a".repeat(161)), 2);
        assert_eq!(segments(&"a".repeat(306)), 2);
        assert_eq!(segments(&"a".repeat(307)), 3);
        assert_eq!(segments(&"€".repeat(80)), 1);
        assert_eq!(segments(&"€".repeat(81)), 2);
        assert_eq!(segments(&"a".repeat(70)), 1);
        let ucs = format!("{}😀", "a".repeat(68));
        assert_eq!(segments(&ucs), 1);
        let ucs = format!("{}😀", "a".repeat(69));
        assert_eq!(segments(&ucs), 2);
        assert_eq!(segments(&"é".repeat(160)), 1);
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
