//! Which message in Twilio's list an earlier attempt may have sent: the same text, to the
//! same number, from the same sender, within the attempt's time window.

use chrono::{DateTime, Utc};

use crate::model::Message;
use crate::twilio::client::MessageResource;

/// Whether `m`, from Twilio's list, can be what an attempt at `message` sent: the same
/// text, to the same number, from the same number (or Messaging Service), created within
/// `window` (from our first attempt, less clock skew, to now).
pub(super) fn is_our_send(
    m: &MessageResource,
    message: &Message,
    service: Option<&str>,
    window: (DateTime<Utc>, DateTime<Utc>),
) -> bool {
    let sender = match service {
        Some(service) => m.messaging_service_sid.as_deref() == Some(service),
        None => m.from.as_deref() == Some(message.from.as_str()),
    };
    sender
        && m.to.as_deref() == Some(message.to.as_str())
        && m.body.as_deref() == Some(message.body.as_str())
        && m.created().is_some_and(|c| window.0 <= c && c <= window.1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;

    fn outbound(body: &str) -> Message {
        let t = Utc::now();
        Message {
            id: "1".parse().unwrap(),
            conversation_id: "1".parse().unwrap(),
            direction: crate::model::Direction::Outbound,
            from: "+15550001000".into(),
            to: "+14155550123".into(),
            body: body.into(),
            media: Vec::new(),
            status: Status::Pending,
            error_code: None,
            error_message: None,
            twilio_sid: None,
            client_id: Some("c-1".into()),
            agent_id: "1".parse().ok(),
            segments: 1,
            created_at: t,
            updated_at: t,
            seq: 1,
        }
    }

    fn listed(
        to: &str,
        from: &str,
        service: Option<&str>,
        body: &str,
        at: DateTime<Utc>,
    ) -> MessageResource {
        MessageResource {
            sid: "SM0123456789abcdef0123456789abcdef".into(),
            status: "sent".into(),
            body: Some(body.into()),
            to: Some(to.into()),
            from: Some(from.into()),
            messaging_service_sid: service.map(Into::into),
            error_code: None,
            date_created: Some(at.to_rfc2822()),
        }
    }

    #[test]
    fn a_lookup_matches_text_recipient_sender_and_time() {
        let msg = outbound("ok");
        let now = Utc::now();
        let window = (
            now - chrono::Duration::minutes(2),
            now + chrono::Duration::minutes(1),
        );
        let (to, from) = ("+14155550123", "+15550001000");
        assert!(is_our_send(
            &listed(to, from, None, "ok", now),
            &msg,
            None,
            window
        ));
        assert!(!is_our_send(
            &listed(to, from, None, "ok!", now),
            &msg,
            None,
            window
        ));
        assert!(!is_our_send(
            &listed("+14155550999", from, None, "ok", now),
            &msg,
            None,
            window
        ));
        assert!(!is_our_send(
            &listed(to, "+15550009999", None, "ok", now),
            &msg,
            None,
            window
        ));
        let before = now - chrono::Duration::minutes(3);
        assert!(!is_our_send(
            &listed(to, from, None, "ok", before),
            &msg,
            None,
            window
        ));
        let after = now + chrono::Duration::minutes(2);
        assert!(!is_our_send(
            &listed(to, from, None, "ok", after),
            &msg,
            None,
            window
        ));
        let mut undated = listed(to, from, None, "ok", now);
        undated.date_created = None;
        assert!(!is_our_send(&undated, &msg, None, window));
        // Through a Messaging Service, Twilio picks the sender: the service must match.
        let service = Some("MG0123456789abcdef0123456789abcdef");
        let pooled = listed(to, "+15550007777", service, "ok", now);
        assert!(is_our_send(&pooled, &msg, service, window));
        let other_service = Some("MGffffffffffffffffffffffffffffffff");
        assert!(!is_our_send(&pooled, &msg, other_service, window));
        assert!(!is_our_send(
            &listed(to, from, None, "ok", now),
            &msg,
            service,
            window
        ));
    }
}
