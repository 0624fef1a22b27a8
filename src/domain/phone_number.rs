//! A phone number in E.164, whatever format it was written in.

use std::fmt;

use serde::Serialize;

use super::InvalidField;
use crate::sms::normalize_phone;

/// A phone number in E.164 (`+14158675309`), as [`normalize_phone`] reads it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Reads the number in the field `field`; the error names it.
    pub fn parse(field: &str, raw: &str) -> Result<Self, InvalidField> {
        normalize_phone(raw)
            .map(Self)
            .ok_or_else(|| InvalidField::new(format!("{field} is not a phone number")))
    }

    /// Reads every number of the list in the field `field`; the error names the field and
    /// the first number that is not one.
    pub fn parse_all(field: &str, raw: &[String]) -> Result<Vec<Self>, InvalidField> {
        raw.iter()
            .map(|n| {
                normalize_phone(n).map(Self).ok_or_else(|| {
                    InvalidField::new(format!("{field}: `{n}` is not a phone number"))
                })
            })
            .collect()
    }

    /// A number the store holds: it was parsed on its way in.
    pub(crate) fn from_store(number: String) -> Self {
        Self(number)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_common_format_becomes_e164() {
        for raw in ["(415) 867-5309", "+1 415 867 5309", " 4158675309 "] {
            assert_eq!(
                PhoneNumber::parse("to", raw).unwrap().as_str(),
                "+14158675309"
            );
        }
    }

    #[test]
    fn the_error_names_the_field() {
        for bad in ["", "hello", "+14158675309\0", "+1415\u{1b}8675309"] {
            let err = PhoneNumber::parse("from", bad).unwrap_err();
            assert_eq!(err.to_string(), "from is not a phone number", "{bad:?}");
        }
        let list = ["+14158675309".to_owned(), "123".to_owned()];
        assert_eq!(
            PhoneNumber::parse_all("numbers", &list)
                .unwrap_err()
                .to_string(),
            "numbers: `123` is not a phone number"
        );
        let ok = PhoneNumber::parse_all("numbers", &list[..1]).unwrap();
        assert_eq!(ok[0].as_str(), "+14158675309");
    }
}
