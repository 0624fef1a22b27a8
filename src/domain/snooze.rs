//! When a snooze ends: a time in the future, at most [`MAX_SNOOZE`] ahead.

use chrono::{DateTime, Duration, Utc};

use super::InvalidField;

/// The longest a conversation may be snoozed.
pub const MAX_SNOOZE: Duration = Duration::days(90);

/// `raw` (RFC 3339) as the end of a snooze that starts at `now`, to the millisecond as every
/// stored time is.
pub fn snooze_end(raw: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, InvalidField> {
    let end = DateTime::parse_from_rfc3339(raw.trim())
        .map_err(|_| InvalidField::new("snoozedUntil must be a time in RFC 3339"))?
        .with_timezone(&Utc);
    let end = DateTime::from_timestamp_millis(end.timestamp_millis()).unwrap_or(end);
    if end <= now {
        return Err(InvalidField::new("snoozedUntil must be in the future"));
    }
    if end > now + MAX_SNOOZE {
        return Err(InvalidField::new(
            "snoozedUntil must be at most 90 days ahead",
        ));
    }
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snooze_ends_in_the_future_within_90_days() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert!(
            snooze_end("2026-01-01T10:00:00+01:00", now).is_err(),
            "now is not ahead"
        );
        assert_eq!(
            snooze_end("2026-01-01T11:00:00.5+01:00", now).unwrap(),
            now + Duration::milliseconds(3_600_500)
        );
        assert!(snooze_end("2026-04-01T09:00:00Z", now).is_ok(), "90 days");
        for bad in [
            "2026-01-01T09:00:00Z",
            "2025-12-31T09:00:00Z",
            "2026-04-01T09:00:00.001Z",
            "tomorrow",
            "",
        ] {
            assert!(snooze_end(bad, now).is_err(), "{bad:?}");
        }
    }
}
