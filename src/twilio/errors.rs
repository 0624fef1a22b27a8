//! Readable sentences for the Twilio error codes an agent is likely to meet.

/// What a Twilio error code means, in words an agent understands.
pub fn describe(code: i64) -> &'static str {
    match code {
        11200 => "Twilio could not fetch the picture from PUBLIC_URL",
        12300 => "Twilio could not fetch the picture as an image from PUBLIC_URL",
        20003 => "Twilio rejected our credentials (check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN)",
        20429 => "Twilio is rate limiting us; the message will be retried",
        21211 => "The 'To' number is not a valid phone number",
        21212 => "The 'From' number is not a valid phone number",
        21408 => "Sending to this region is not enabled on the Twilio account",
        21602 => "The message body is empty",
        21604 => "The 'To' number is missing",
        21606 => "The 'From' number cannot send SMS (not an SMS-capable Twilio number)",
        21608 => "Trial accounts can only send to verified numbers",
        21609 => "Twilio cannot reach our status callback URL (set PUBLIC_URL to a public URL)",
        21610 => "The recipient has opted out (replied STOP)",
        21611 => "The sending number's queue is full (too many messages waiting at Twilio)",
        21612 => "Twilio cannot route a message between these two numbers",
        21614 => "The 'To' number is not a mobile number that can receive SMS",
        21617 => "The message is longer than Twilio allows",
        21659 => "The 'From' number is not a Twilio number on this account",
        30001 => "Twilio's queue overflowed; try again later",
        30002 => "The Twilio account is suspended",
        30003 => "The recipient's phone is unreachable (off or out of coverage)",
        30004 => "The message was blocked by the recipient or their carrier",
        30005 => "The recipient's number is unknown or no longer exists",
        30006 => "The number is a landline or cannot receive SMS",
        30007 => "The carrier filtered the message as spam",
        30008 => "The carrier reported an unknown error",
        30032 => "The toll-free number is not verified for sending",
        30034 => "The sending number is not registered for US A2P 10DLC",
        _ => "Twilio could not deliver the message",
    }
}
