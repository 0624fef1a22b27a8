//! The order of one conversation's `conversation:updated` events. Writes to a conversation
//! commit one after the other (each bumps its `version` under the row's lock), but each
//! emits after its own commit, from its own task: the event of an earlier write could go out
//! after a later one's, and leave the pages showing a state the conversation no longer has.
//! So an event goes out only if no later version of its conversation went out before it,
//! and the check and the emit are one step per conversation.
//!
//! Versions are remembered for a minute or two, far longer than a commit takes to reach its
//! emit, so the memory stays bounded by the conversations changed lately.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, MutexGuard};

use crate::model::ConversationId;

/// Conversations share this many locks: two changes of different conversations rarely wait
/// for each other's emit.
const SHARDS: usize = 64;

/// How long a version is remembered at least (at most twice as long).
const KEEP: Duration = Duration::from_secs(60);

pub(super) struct CommitOrder {
    shards: Vec<Mutex<Versions>>,
}

/// The versions that went out lately: those of this period, and of the one before.
pub(super) struct Versions {
    current: HashMap<ConversationId, i64>,
    previous: HashMap<ConversationId, i64>,
    since: Instant,
}

impl CommitOrder {
    pub(super) fn new() -> Self {
        Self {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Versions {
                        current: HashMap::new(),
                        previous: HashMap::new(),
                        since: Instant::now(),
                    })
                })
                .collect(),
        }
    }

    /// The conversation's turn to emit `version`, held until the guard is dropped; `None`
    /// when a later version went out already.
    pub(super) async fn turn(
        &self,
        conversation: ConversationId,
        version: i64,
    ) -> Option<MutexGuard<'_, Versions>> {
        let shard = conversation.get().unsigned_abs() as usize % SHARDS;
        let mut versions = self.shards[shard].lock().await;
        versions.advance(conversation, version).then_some(versions)
    }
}

impl Versions {
    /// Records `version` as gone out, unless a later one did.
    fn advance(&mut self, conversation: ConversationId, version: i64) -> bool {
        if self.since.elapsed() >= KEEP {
            self.previous = std::mem::take(&mut self.current);
            self.since = Instant::now();
        }
        let seen = self
            .current
            .get(&conversation)
            .or_else(|| self.previous.get(&conversation));
        if seen.is_some_and(|seen| *seen > version) {
            return false;
        }
        self.current.insert(conversation, version);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_earlier_version_never_follows_a_later_one() {
        let order = CommitOrder::new();
        let (a, b): (ConversationId, ConversationId) =
            ("1".parse().unwrap(), "65".parse().unwrap());
        assert!(order.turn(a, 2).await.is_some());
        assert!(order.turn(a, 1).await.is_none(), "stale: dropped");
        assert!(
            order.turn(a, 2).await.is_some(),
            "the same state again may go"
        );
        assert!(
            order.turn(b, 1).await.is_some(),
            "another conversation, same shard"
        );
        assert!(order.turn(a, 3).await.is_some());
    }

    #[test]
    fn versions_are_remembered_across_one_rotation() {
        let mut versions = Versions {
            current: HashMap::new(),
            previous: HashMap::new(),
            since: Instant::now(),
        };
        let a: ConversationId = "7".parse().unwrap();
        assert!(versions.advance(a, 5));
        versions.since -= KEEP;
        assert!(!versions.advance(a, 4), "still known after the rotation");
        assert!(versions.advance(a, 6));
    }
}
