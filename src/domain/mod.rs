//! Values from outside, parsed once where they come in: a [`PhoneNumber`] is E.164, a
//! [`ClientId`] is safe to echo, a [`MessageBody`] is sendable, an [`Email`] is normalised, a
//! [`Shortcut`] names a canned reply, a [`Picture`] is a whole JPEG, PNG or GIF.
//! Handlers and the CLI alike parse into these, so each rule is written once and code past
//! the edge cannot hold an unchecked value. The character rules they apply live in
//! [`crate::text`]; a field that breaks one is an [`InvalidField`] that names it.

mod client_id;
mod email;
mod message_body;
mod names;
mod new_agent;
mod phone_number;
mod picture;
mod search_text;
mod shortcut;
mod snooze;

pub use client_id::ClientId;
pub use email::Email;
pub use message_body::{MessageBody, NoteBody};
pub use names::{AgentName, ContactName};
pub use new_agent::NewAgent;
pub use phone_number::PhoneNumber;
pub use picture::{NotAPicture, Picture};
pub use search_text::{SearchText, like_literal};
pub use shortcut::Shortcut;
pub use snooze::snooze_end;

use crate::text::{self, Lines};

/// A field that is present but invalid; the message names the field (a `422` over HTTP).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidField(String);

impl InvalidField {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// Refuses a field with a control character, naming the field.
fn check_clean(field: &str, value: &str, lines: Lines) -> Result<(), InvalidField> {
    if text::is_clean(value, lines) {
        Ok(())
    } else {
        Err(InvalidField::new(format!(
            "{field} must not contain control characters"
        )))
    }
}

/// A message body a client sends: 1 to `max` characters, at least one of them visible, no
/// control character but newlines and tabs.
fn check_body(field: &str, value: &str, max: usize) -> Result<(), InvalidField> {
    check_clean(field, value, Lines::Many)?;
    if !text::is_visible(value) || value.chars().count() > max {
        return Err(InvalidField::new(format!(
            "{field} must be 1 to {max} characters, at least one of them visible"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_checked_whole() {
        assert!(check_body("body", "hello\nthere", 10).is_err());
        assert!(check_body("body", "hello\nyou", 10).is_ok());
        for bad in ["\u{200B}", "hi\0", "", "  "] {
            let err = check_body("body", bad, 1600).unwrap_err().to_string();
            assert!(err.starts_with("body "), "{err}");
        }
    }
}
