//! When a failed attempt is tried again, and when trying stops.

use std::time::Duration;

use chrono::Utc;
use rand::Rng;

use crate::store::SendJob;

/// After this long of failing to reach Twilio, a message is given up.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(600);
/// The longest pause between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// How long the job has been tried for, from its first attempt.
pub fn tried_for(job: &SendJob) -> Duration {
    (Utc::now() - job.first_tried_at)
        .to_std()
        .unwrap_or_default()
}

/// After [`GIVE_UP_AFTER`] of failing, the reason the message is marked failed. A late
/// status callback can still move it on (a `delivered` replaces `failed`).
pub fn give_up(tried_for: Duration, maybe_sent: bool, last_error: &str) -> Option<String> {
    (tried_for >= GIVE_UP_AFTER).then(|| {
        if maybe_sent {
            format!("Twilio did not confirm the message in 10 minutes (it may have been sent): {last_error}")
        } else {
            format!("Twilio could not be reached for 10 minutes: {last_error}")
        }
    })
}

/// Exponential backoff with full jitter, never shorter than Twilio's `Retry-After`.
pub fn backoff(attempts: i64, retry_after: Option<Duration>) -> Duration {
    let exp = attempts.clamp(1, 16) as u32 - 1;
    let ceiling = Duration::from_millis(500u64.saturating_mul(1 << exp)).min(MAX_BACKOFF);
    let jittered = ceiling.mul_f64(rand::thread_rng().gen_range(0.5..=1.0));
    jittered.max(retry_after.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retrying_is_bounded() {
        assert_eq!(give_up(Duration::from_secs(30), false, "x"), None);
        assert_eq!(give_up(Duration::from_secs(30), true, "x"), None);
        assert!(
            give_up(GIVE_UP_AFTER, false, "refused")
                .unwrap()
                .contains("refused")
        );
        assert!(
            give_up(GIVE_UP_AFTER, true, "timeout")
                .unwrap()
                .contains("may have been sent")
        );
    }

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after() {
        assert!(backoff(1, None) <= Duration::from_millis(500));
        assert!(backoff(4, None) >= Duration::from_secs(2));
        assert!(backoff(40, None) <= MAX_BACKOFF);
        assert!(backoff(1, Some(Duration::from_secs(30))) >= Duration::from_secs(30));
    }
}
