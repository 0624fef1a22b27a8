//! The client's key for an idempotent send.

use std::fmt;

use serde::Serialize;

use super::InvalidField;

/// 1 to 100 letters, digits or `- _ . :` (a UUID is ideal): safe to store, log and echo.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ClientId(String);

impl ClientId {
    const MAX_LEN: usize = 100;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ClientId {
    type Error = InvalidField;

    fn try_from(raw: String) -> Result<Self, InvalidField> {
        let ok = !raw.is_empty()
            && raw.len() <= Self::MAX_LEN
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
        if ok {
            Ok(Self(raw))
        } else {
            Err(InvalidField::new(
                "clientId must be 1 to 100 letters, digits or - _ . : (a UUID is ideal)",
            ))
        }
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_digits_and_a_few_marks() {
        for good in [
            "c-1",
            "0b5e6f1c-9d2a-4c1e-8f00-000000000000",
            "a.b:c_d",
            &"x".repeat(100),
        ] {
            assert_eq!(ClientId::try_from(good.to_owned()).unwrap().as_str(), good);
        }
        for bad in ["", "<script>", "a b", "é", "c\0", &"x".repeat(101)] {
            let err = ClientId::try_from(bad.to_owned()).unwrap_err();
            assert!(err.to_string().starts_with("clientId "), "{bad:?}");
        }
    }
}
