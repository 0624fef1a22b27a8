//! Pacing of sends per sending number, when `SEND_RATE_PER_NUMBER` is set.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Paces sends per sending number (`SEND_RATE_PER_NUMBER` segments per second). Each message
/// gets its own future slot, so a backlog from one number waits in our queue, each job
/// waking once at its time, while other numbers go straight through.
pub struct Pacer {
    seconds_per_segment: f64,
    state: Mutex<PacerState>,
}

#[derive(Default)]
struct PacerState {
    next_free: HashMap<String, Instant>,
    reserved: HashMap<i64, Instant>,
}

/// A slot this close is taken as now.
const SLOT_TOLERANCE: Duration = Duration::from_millis(20);

impl Pacer {
    pub fn new(segments_per_second: f64) -> Self {
        Self {
            seconds_per_segment: 1.0 / segments_per_second,
            state: Mutex::new(PacerState::default()),
        }
    }

    /// `Ok` to send now, or how long to wait for this message's slot.
    pub fn admit(&self, number: &str, message: i64, segments: i64) -> Result<(), Duration> {
        let now = Instant::now();
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = st.reserved.get(&message).copied() {
            if slot <= now + SLOT_TOLERANCE {
                st.reserved.remove(&message);
                return Ok(());
            }
            return Err(slot - now);
        }
        if st.next_free.len() > 10_000 {
            st.next_free.retain(|_, t| *t > now);
            st.reserved
                .retain(|_, t| *t + Duration::from_secs(600) > now);
        }
        let cost = Duration::from_secs_f64(segments.max(1) as f64 * self.seconds_per_segment);
        let slot = st.next_free.get(number).copied().unwrap_or(now).max(now);
        st.next_free.insert(number.to_owned(), slot + cost);
        if slot <= now + SLOT_TOLERANCE {
            Ok(())
        } else {
            st.reserved.insert(message, slot);
            Err(slot - now)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacer_gives_each_message_its_own_slot_per_number() {
        let pacer = Pacer::new(2.0);
        assert!(pacer.admit("+1A", 1, 1).is_ok());
        let w2 = pacer.admit("+1A", 2, 1).unwrap_err();
        let w3 = pacer.admit("+1A", 3, 2).unwrap_err();
        assert!(w2 > Duration::from_millis(400) && w2 <= Duration::from_millis(500));
        assert!(w3 > Duration::from_millis(900) && w3 <= Duration::from_secs(1));
        // A second look at a reserved message keeps its slot instead of taking a new one.
        let again = pacer.admit("+1A", 2, 1).unwrap_err();
        assert!(again <= w2);
        assert!(
            pacer.admit("+1B", 4, 1).is_ok(),
            "other numbers are not held up"
        );
        let w5 = pacer.admit("+1A", 5, 1).unwrap_err();
        assert!(
            w5 > Duration::from_millis(1900),
            "after the two-segment message"
        );
    }
}
