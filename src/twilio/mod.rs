//! Everything Twilio: the Messages API client, webhook signatures, error codes, and the
//! in-process simulator used when no credentials are configured.

pub mod client;
pub mod errors;
pub mod media;
pub mod signature;
pub mod simulator;

pub use client::{Outgoing, TwilioClient, TwilioError};

/// A new random Twilio-style sid: two letters and 32 hex digits.
pub fn new_sid(prefix: &str) -> String {
    format!("{prefix}{:032x}", rand::random::<u128>())
}
