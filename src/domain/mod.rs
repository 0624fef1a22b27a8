//! Values from outside, parsed once where they come in: a [`PhoneNumber`] is E.164, a
//! [`ClientId`] is safe to echo, a [`MessageBody`] is sendable, an [`Email`] is normalised.
//! Handlers and the CLI alike parse into these, so each rule is written once and code past
//! the edge cannot hold an unchecked value. The character rules they apply live in
//! [`crate::text`].

mod client_id;
mod email;
mod message_body;
mod names;
mod new_agent;
mod phone_number;
mod search_text;

pub use client_id::ClientId;
pub use email::Email;
pub use message_body::MessageBody;
pub use names::{AgentName, ContactName};
pub use new_agent::NewAgent;
pub use phone_number::PhoneNumber;
pub use search_text::{SearchText, like_literal};

/// A field that is present but invalid; the message names the field (a `422` over HTTP).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidField(String);

impl InvalidField {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}
