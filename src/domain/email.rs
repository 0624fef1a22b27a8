//! An agent's email address: their sign-in name.

use std::fmt;

use serde::Serialize;

use super::{InvalidField, check_clean};
use crate::text::Lines;

/// Trimmed and lower-cased, at most 254 bytes, with a local part and a domain around an `@`,
/// and no control character.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = 254;

    /// How an email is compared and stored: trimmed, lower case. Also for what may not be
    /// an email at all (a sign-in attempt is counted by it either way).
    pub fn normalize(raw: &str) -> String {
        raw.trim().to_lowercase()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for Email {
    type Error = InvalidField;

    fn try_from(raw: &str) -> Result<Self, InvalidField> {
        check_clean("email", raw, Lines::One)?;
        let email = Self::normalize(raw);
        if email.len() > Self::MAX_LEN
            || !email.contains('@')
            || email.starts_with('@')
            || email.ends_with('@')
        {
            return Err(InvalidField::new("email is not an email address"));
        }
        Ok(Self(email))
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trimmed_and_lower_cased() {
        assert_eq!(
            Email::try_from(" Ana@Example.COM ").unwrap().as_str(),
            "ana@example.com"
        );
    }

    #[test]
    fn the_error_names_the_field() {
        let too_long = format!("{}@x.io", "a".repeat(250));
        for bad in [
            "",
            "ana",
            "@x.io",
            "ana@",
            "a\0@x.io",
            "a\u{7}@x.io",
            &too_long,
        ] {
            let err = Email::try_from(bad).unwrap_err();
            assert!(err.to_string().starts_with("email "), "{bad:?}: {err}");
        }
    }
}
