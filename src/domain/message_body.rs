//! The text of a message an agent sends.

use std::fmt;

use serde::Serialize;

use super::{InvalidField, check_body, check_clean};
use crate::text;

/// 1 to [`MessageBody::MAX_CHARS`] characters, at least one of them visible, no control
/// character but newlines and tabs ([`check_body`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct MessageBody(String);

impl MessageBody {
    /// Twilio's limit for one message.
    pub const MAX_CHARS: usize = 1600;

    /// A body the store holds: it was parsed on its way in.
    pub(crate) fn from_store(body: String) -> Self {
        Self(body)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text of a message with media (an MMS), held to [`MessageBody::check_caption`].
    pub fn caption(raw: String, has_media: bool) -> Result<Self, InvalidField> {
        Self::check_caption(&raw, has_media)?;
        Ok(Self(raw))
    }

    /// Checks the text beside media (an MMS): it may be empty or invisible when there is
    /// media, and is otherwise held to the rule for a body.
    pub fn check_caption(raw: &str, has_media: bool) -> Result<(), InvalidField> {
        check_clean("body", raw, text::Lines::Many)?;
        if has_media && raw.chars().count() <= Self::MAX_CHARS {
            return Ok(());
        }
        check_body("body", raw, Self::MAX_CHARS)
    }
}

impl TryFrom<String> for MessageBody {
    type Error = InvalidField;

    fn try_from(raw: String) -> Result<Self, InvalidField> {
        check_body("body", &raw, Self::MAX_CHARS)?;
        Ok(Self(raw))
    }
}

impl fmt::Display for MessageBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The text of a note between agents: as a [`MessageBody`], up to
/// [`NoteBody::MAX_CHARS`] characters (it is never sent as an SMS).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct NoteBody(String);

impl NoteBody {
    pub const MAX_CHARS: usize = 4000;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for NoteBody {
    type Error = InvalidField;

    fn try_from(raw: String) -> Result<Self, InvalidField> {
        check_body("body", &raw, Self::MAX_CHARS)?;
        Ok(Self(raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_holds_one_to_4000_characters() {
        assert!(NoteBody::try_from("é".repeat(4000)).is_ok());
        for bad in ["", " ", "x\0", &"x".repeat(4001)] {
            assert!(NoteBody::try_from(bad.to_owned()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn one_to_1600_characters_something_visible() {
        for good in ["ok", "line\n\tnext ☺", &"é".repeat(1600)] {
            assert!(MessageBody::try_from(good.to_owned()).is_ok(), "{good:?}");
        }
        for bad in [
            "",
            " \n\t ",
            "\u{200B}",
            "hi\0",
            "x\u{9b}",
            &"x".repeat(1601),
        ] {
            let err = MessageBody::try_from(bad.to_owned()).unwrap_err();
            assert!(err.to_string().starts_with("body "), "{bad:?}: {err}");
        }
    }

    #[test]
    fn a_caption_may_be_empty_beside_media() {
        assert!(MessageBody::check_caption("", true).is_ok());
        assert!(MessageBody::check_caption("", false).is_err());
        assert!(MessageBody::check_caption("hi\0", true).is_err());
        assert!(MessageBody::check_caption(&"x".repeat(1601), true).is_err());
    }
}
