//! Ids of what the database keeps: a `BIGINT` there (bound and read as the id type itself),
//! a string of digits to clients, and a type per kind of record, so that a message's id
//! cannot be passed where a conversation's is meant.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What every id type is.
pub trait EntityId: Copy + FromStr {
    /// What the id names, as "… not found" says it.
    const ENTITY: &'static str;
}

/// Declares the id type `$name` of `$entity`s.
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $entity:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, sqlx::Type)]
        #[sqlx(transparent)]
        pub struct $name(i64);

        impl $name {
            /// The number the database gave it (a page cursor is made of it).
            pub const fn get(self) -> i64 {
                self.0
            }
        }

        impl EntityId for $name {
            const ENTITY: &'static str = $entity;
        }

        impl FromStr for $name {
            type Err = ();
            fn from_str(s: &str) -> Result<Self, ()> {
                parse(s).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                deserialize(d).map(Self)
            }
        }
    };
}

id_type!(
    /// An agent's id.
    AgentId,
    "agent"
);
id_type!(
    /// A conversation's id.
    ConversationId,
    "conversation"
);
id_type!(
    /// A message's id.
    MessageId,
    "message"
);
id_type!(
    /// A canned reply's id.
    ReplyId,
    "reply"
);
id_type!(
    /// An uploaded picture's id.
    UploadId,
    "upload"
);

/// An id as text: 1 to 18 digits (anything longer could overflow a `BIGINT`).
fn parse(s: &str) -> Result<i64, ()> {
    if s.is_empty() || s.len() > 18 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(());
    }
    s.parse().map_err(|_| ())
}

/// An id from JSON: the string ids go out as, or a number.
fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Number(i64),
    }
    match Raw::deserialize(d)? {
        Raw::Number(n) => Ok(n),
        Raw::Text(t) => {
            parse(&t).map_err(|()| serde::de::Error::custom("an id is a string of digits"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_strings_outside() {
        let id: MessageId = "42".parse().unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"42\"");
        assert_eq!(serde_json::from_str::<MessageId>("\"42\"").unwrap(), id);
        assert_eq!(serde_json::from_str::<MessageId>("42").unwrap(), id);
        assert!(serde_json::from_str::<MessageId>("\"4x\"").is_err());
        for bad in ["", "-1", "+1", " 1", "4x", "9999999999999999999"] {
            assert!(bad.parse::<ConversationId>().is_err(), "{bad:?}");
        }
        assert_eq!(id.get(), 42);
        assert_eq!(AgentId::ENTITY, "agent");
    }
}
