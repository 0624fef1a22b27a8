//! Pacing of sends per sending number, when `SEND_RATE_PER_NUMBER` is set. The schedule is
//! the store's (`store/pacing.rs`), shared by every instance; this is its arithmetic.

use std::time::Duration;

use crate::store::DbTime;

/// Paces sends per sending number (`SEND_RATE_PER_NUMBER` segments per second). Each message
/// gets its own future slot, so a backlog from one number waits in our queue, each job
/// waking once at its time, while other numbers go straight through.
#[derive(Clone, Copy, Debug)]
pub struct Pacer {
    micros_per_segment: f64,
}

/// A slot this close is taken as now.
pub const SLOT_TOLERANCE: Duration = Duration::from_millis(20);

impl Pacer {
    pub fn new(segments_per_second: f64) -> Self {
        Self {
            micros_per_segment: 1_000_000.0 / segments_per_second,
        }
    }

    /// How much of its number's schedule a message of `segments` takes, in microseconds.
    pub fn cost_us(&self, segments: i64) -> i64 {
        (segments.max(1) as f64 * self.micros_per_segment).ceil() as i64
    }

    /// `None` to send now, or how long to wait for `slot`.
    pub fn wait(&self, slot: DbTime, now: DbTime) -> Option<Duration> {
        let ahead = Duration::from_micros(u64::try_from(slot.0 - now.0).unwrap_or(0));
        (ahead > SLOT_TOLERANCE).then_some(ahead)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_takes_a_segment_interval_per_segment() {
        let pacer = Pacer::new(2.0);
        assert_eq!(pacer.cost_us(1), 500_000);
        assert_eq!(pacer.cost_us(3), 1_500_000);
        assert_eq!(pacer.cost_us(0), 500_000, "at least one segment");
        assert_eq!(
            Pacer::new(3.0).cost_us(1),
            333_334,
            "rounded up, never faster"
        );
    }

    #[test]
    fn a_slot_within_the_tolerance_is_now() {
        let pacer = Pacer::new(1.0);
        let now = DbTime(10_000_000);
        assert_eq!(pacer.wait(DbTime(now.0 - 5_000_000), now), None, "past");
        assert_eq!(pacer.wait(DbTime(now.0 + 20_000), now), None);
        assert_eq!(
            pacer.wait(DbTime(now.0 + 700_000), now),
            Some(Duration::from_millis(700))
        );
    }
}
