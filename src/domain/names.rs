//! The names people are shown by: an agent's, a contact's.

use std::fmt;

use serde::Serialize;

use super::{InvalidField, check_clean};
use crate::text::{self, Lines};

/// At most this many characters in a name.
const MAX_CHARS: usize = 100;

/// Refuses a name (in `field`) with a control character or a bidirectional control: a name
/// is shown beside other text, which an override or isolate left open in it would reorder.
fn check_name(field: &str, raw: &str) -> Result<(), InvalidField> {
    check_clean(field, raw, Lines::One)?;
    if raw.chars().any(text::is_bidi_control) {
        return Err(InvalidField::new(format!(
            "{field} must not contain bidirectional control characters"
        )));
    }
    Ok(())
}

/// An agent's name: 1 to 100 characters on one line, trimmed, something visible, no
/// bidirectional control.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct AgentName(String);

impl AgentName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for AgentName {
    type Error = InvalidField;

    fn try_from(raw: &str) -> Result<Self, InvalidField> {
        check_name("name", raw)?;
        let name = raw.trim();
        if !text::is_visible(name) || name.chars().count() > MAX_CHARS {
            return Err(InvalidField::new("name must be 1 to 100 characters"));
        }
        Ok(Self(name.to_owned()))
    }
}

impl fmt::Display for AgentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A name an agent gives a contact: at most 100 characters on one line, trimmed, no
/// bidirectional control. One that shows nothing is no name, so it parses to `None`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ContactName(String);

impl ContactName {
    pub fn parse(raw: &str) -> Result<Option<Self>, InvalidField> {
        check_name("name", raw)?;
        let name = raw.trim();
        if !text::is_visible(name) {
            return Ok(None);
        }
        if name.chars().count() > MAX_CHARS {
            return Err(InvalidField::new("name must be at most 100 characters"));
        }
        Ok(Some(Self(name.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_needs_a_visible_name() {
        assert_eq!(AgentName::try_from("  Ana ").unwrap().as_str(), "Ana");
        for bad in ["", "\u{200B}", "Ann\u{1b}[2J", "a\nb", &"x".repeat(101)] {
            let err = AgentName::try_from(bad).unwrap_err();
            assert!(err.to_string().starts_with("name "), "{bad:?}: {err}");
        }
    }

    /// What an attacker tries: each control alone, at either end (trimming keeps them), in
    /// the middle, paired with its closing control, and as the whole name.
    fn with_bidi_controls() -> Vec<String> {
        let controls = [
            '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}',
            '\u{2068}', '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}',
        ];
        controls
            .iter()
            .flat_map(|c| {
                [
                    format!("{c}gpj.exe"),
                    format!("Ana {c}"),
                    format!("An{c}a"),
                    format!("\u{2067}Ana{c}"),
                    format!(" {c} "),
                    c.to_string(),
                ]
            })
            .collect()
    }

    #[test]
    fn names_refuse_bidirectional_controls() {
        for bad in with_bidi_controls() {
            let err = AgentName::try_from(bad.as_str()).unwrap_err().to_string();
            assert_eq!(
                err,
                "name must not contain bidirectional control characters"
            );
            let err = ContactName::parse(&bad).unwrap_err().to_string();
            assert_eq!(
                err,
                "name must not contain bidirectional control characters"
            );
        }
        for rtl in ["שרה כהן", "محمد علي", "Ana (אנה) 2", "Zoë 😀"] {
            assert_eq!(AgentName::try_from(rtl).unwrap().as_str(), rtl);
            assert_eq!(ContactName::parse(rtl).unwrap().unwrap().as_str(), rtl);
        }
    }

    #[test]
    fn an_invisible_contact_name_is_no_name() {
        assert_eq!(
            ContactName::parse(" Bob ").unwrap().unwrap().as_str(),
            "Bob"
        );
        assert_eq!(ContactName::parse("\u{200B} ").unwrap(), None);
        for bad in ["Bob\0", "a\tb", &"x".repeat(101)] {
            let err = ContactName::parse(bad).unwrap_err();
            assert!(err.to_string().starts_with("name "), "{bad:?}: {err}");
        }
    }
}
