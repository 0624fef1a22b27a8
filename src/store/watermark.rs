//! Which changes `sync` may show. Writers can commit out of `seq` order (on PostgreSQL
//! `seq` comes from a sequence), so a change may only be shown once no write still in
//! flight can commit a lower `seq`. Each write registers before taking a `seq`, with the
//! highest `seq` seen so far as a lower bound of what it will get; `sync` shows nothing
//! above the smallest bound in flight. Exact for one server process, which owns every write.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

#[derive(Default)]
pub(super) struct Watermark {
    state: Mutex<WatermarkState>,
}

#[derive(Default)]
struct WatermarkState {
    last_seen: i64,
    next_id: u64,
    in_flight: HashMap<u64, i64>,
}

/// Held by a write from before it takes a `seq` until after it commits or rolls back.
pub(super) struct Writing<'a> {
    watermark: &'a Watermark,
    id: u64,
}

impl Watermark {
    fn lock(&self) -> MutexGuard<'_, WatermarkState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn enter(&self) -> Writing<'_> {
        let mut st = self.lock();
        let id = st.next_id;
        st.next_id += 1;
        let bound = st.last_seen;
        st.in_flight.insert(id, bound);
        Writing {
            watermark: self,
            id,
        }
    }

    pub(super) fn observe(&self, seq: i64) {
        let mut st = self.lock();
        st.last_seen = st.last_seen.max(seq);
    }

    /// The highest `seq` that `sync` may show now.
    pub(super) fn visible_up_to(&self) -> i64 {
        self.lock()
            .in_flight
            .values()
            .min()
            .copied()
            .unwrap_or(i64::MAX)
    }
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.watermark.lock().in_flight.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::Watermark;

    #[test]
    fn sync_sees_nothing_a_write_in_flight_could_still_commit_below() {
        let wm = Watermark::default();
        assert_eq!(wm.visible_up_to(), i64::MAX);
        wm.observe(10);
        let slow = wm.enter();
        wm.observe(11);
        let fast = wm.enter();
        wm.observe(12);
        assert_eq!(wm.visible_up_to(), 10, "the slow write may still commit 11");
        drop(slow);
        assert_eq!(
            wm.visible_up_to(),
            11,
            "the fast write got 12, above its bound of 11"
        );
        drop(fast);
        assert_eq!(wm.visible_up_to(), i64::MAX);
    }
}
