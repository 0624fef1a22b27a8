//! The shortcut an agent types after `/` to insert a canned reply.

use std::fmt;

use serde::Serialize;

use super::InvalidField;

/// 1 to 32 lowercase ASCII letters, digits, `-` and `_`, the first a letter or a digit
/// (`^[a-z0-9][a-z0-9_-]{0,31}$`), taken as given: nothing is trimmed or lowercased, so what
/// an agent typed is what the others type. The page checks the same rule
/// (`static/js/replies.js`); both are tested against `tests/fixtures/shortcuts.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Shortcut(String);

impl Shortcut {
    const MAX_LEN: usize = 32;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Shortcut {
    type Error = InvalidField;

    fn try_from(raw: String) -> Result<Self, InvalidField> {
        let word = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        let ok = raw.len() <= Self::MAX_LEN
            && raw.bytes().next().is_some_and(word)
            && raw.bytes().all(|b| word(b) || b == b'-' || b == b'_');
        if ok {
            Ok(Self(raw))
        } else {
            Err(InvalidField::new(
                "shortcut must be 1 to 32 lowercase letters, digits, - or _, starting with a letter or a digit",
            ))
        }
    }
}

impl fmt::Display for Shortcut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortcuts_follow_the_shared_rule() {
        #[derive(serde::Deserialize)]
        struct Fixture {
            valid: Vec<String>,
            invalid: Vec<String>,
        }
        let fixture: Fixture =
            serde_json::from_str(include_str!("../../tests/fixtures/shortcuts.json"))
                .expect("the fixture is JSON");
        assert!(!fixture.valid.is_empty() && !fixture.invalid.is_empty());
        for good in fixture.valid {
            assert_eq!(Shortcut::try_from(good.clone()).unwrap().as_str(), good);
        }
        for bad in fixture.invalid {
            let err = Shortcut::try_from(bad.clone()).unwrap_err();
            assert!(err.to_string().starts_with("shortcut "), "{bad:?}: {err}");
        }
    }
}
