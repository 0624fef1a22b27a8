//! What goes into the store and what comes out of it, beside the domain's own types.

use chrono::{DateTime, Utc};

use crate::domain::{ClientId, MessageBody};
use crate::model::{
    Agent, AgentId, Conversation, ConversationId, Media, Message, MessageId, Status,
};
use crate::sms::OptChange;

/// Who hears about a conversation: the agents who hold its number. A write reads it in its
/// own transaction, so it names exactly the agents who could see the change when it committed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Audience(Vec<AgentId>);

impl Audience {
    pub(super) fn new(agents: Vec<AgentId>) -> Self {
        Self(agents)
    }

    /// The agents of an `audience_column!` (`reads.rs`): ids separated by commas, or none.
    pub(super) fn parse(column: Option<&str>) -> Result<Self, sqlx::Error> {
        let mut agents = column
            .unwrap_or_default()
            .split(',')
            .filter(|a| !a.is_empty())
            .map(|a| {
                a.parse().map_err(|()| {
                    sqlx::Error::Decode(format!("{a:?} in an audience is not an agent's id").into())
                })
            })
            .collect::<Result<Vec<AgentId>, _>>()?;
        agents.sort_unstable();
        Ok(Self(agents))
    }

    pub fn agents(&self) -> &[AgentId] {
        &self.0
    }

    pub fn contains(&self, agent: AgentId) -> bool {
        self.0.contains(&agent)
    }

    /// An audience of these agents, for tests outside the store.
    #[cfg(test)]
    pub(crate) fn of(agents: Vec<AgentId>) -> Self {
        Self(agents)
    }

    /// Everyone but `agent` (who does not need to hear of their own typing).
    pub fn without(&self, agent: AgentId) -> Self {
        Self(self.0.iter().copied().filter(|a| *a != agent).collect())
    }
}

/// Which event a changed message goes out as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageEvent {
    /// `message:new`: the message was stored.
    New,
    /// `message:status`: its status (or sid, or error) changed.
    Status,
}

/// What one write did to a message, and who hears about it.
#[derive(Clone, Debug)]
pub struct MessageChange {
    pub event: MessageEvent,
    pub message: Message,
    /// Set when the write also changed the conversation (an inbound message; an opt-out).
    pub conversation: Option<Conversation>,
    pub audience: Audience,
}

/// What one write did to a conversation, and who hears about it.
#[derive(Clone, Debug)]
pub struct ConversationChange {
    pub conversation: Conversation,
    pub audience: Audience,
}

/// An inbound SMS/MMS as Twilio reported it.
#[derive(Clone, Debug)]
pub struct NewInbound {
    pub twilio_sid: String,
    pub from: String,
    pub to: String,
    pub body: String,
    pub media: Vec<Media>,
    pub segments: i64,
    pub opt_change: Option<OptChange>,
}

#[derive(Clone, Debug)]
pub struct NewOutbound {
    pub conversation_id: ConversationId,
    pub agent_id: AgentId,
    pub client_id: ClientId,
    pub body: MessageBody,
    pub segments: i64,
}

#[derive(Clone, Debug)]
pub enum Outbound {
    /// Stored and queued for sending.
    Created(Box<MessageChange>),
    /// The same `clientId` with the same body was sent before: nothing new happens.
    Existing(Box<Message>),
    /// The same `clientId` was used for another body.
    ClientIdReused,
    OptedOut,
}

#[derive(Clone, Debug)]
pub struct StatusReport {
    /// Our id from the `StatusCallback` query, when Twilio used our URL.
    pub message_id: Option<MessageId>,
    pub twilio_sid: String,
    pub status: Status,
    pub error_code: Option<i64>,
}

#[derive(Clone, Debug)]
pub enum StatusOutcome {
    Applied(Box<MessageChange>),
    /// Known message, but the report is not further along than what is stored.
    Stale,
    /// No message with that sid yet: kept, and applied when the sid is recorded.
    Deferred,
}

/// One claim of a queued message. `token` grows with every claim of the job, and every
/// renewal and outcome write carries it: a worker whose lease ran out and was taken over
/// changes nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim {
    pub message: MessageId,
    pub token: i64,
}

/// What recording a Twilio sid for a claimed message did.
#[derive(Clone, Debug)]
pub enum Accepted {
    Recorded(Box<MessageChange>),
    /// Another message holds this sid: nothing changed, the job stays queued.
    SidTaken,
    /// The claim is no longer the job's: nothing changed.
    LostClaim,
}

/// A claimed entry of the sending queue.
#[derive(Clone, Debug)]
pub struct SendJob {
    pub claim: Claim,
    pub message: Message,
    pub conversation_opted_out: bool,
    pub attempts: i64,
    pub first_tried_at: DateTime<Utc>,
    pub maybe_sent: bool,
    /// Why the previous attempt did not go through.
    pub last_error: Option<String>,
    /// The pacing slot the message was given, if it was given one.
    pub slot: Option<DbTime>,
    /// The database's clock when the job was claimed.
    pub claimed: DbClock,
}

/// A time on the database's clock (`db_clock`), in microseconds since the epoch: the clock
/// every instance agrees on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DbTime(pub i64);

/// The database's clock as read once, and followed from there on this process's monotonic
/// clock, so that it can be read again without asking the database.
#[derive(Clone, Copy, Debug)]
pub struct DbClock {
    read: DbTime,
    at: std::time::Instant,
}

impl DbClock {
    pub(super) fn read_now(read: i64) -> Self {
        Self {
            read: DbTime(read),
            at: std::time::Instant::now(),
        }
    }

    /// The database's time now.
    pub fn now(&self) -> DbTime {
        let elapsed = i64::try_from(self.at.elapsed().as_micros()).unwrap_or(i64::MAX);
        DbTime(self.read.0.saturating_add(elapsed))
    }
}

/// The agent an email names at sign-in, and what their password is checked against.
#[derive(Clone, Debug)]
pub struct SigningIn {
    pub agent: Agent,
    /// Empty while their invite is pending: it matches no password.
    pub password_hash: String,
    pub disabled: bool,
}

/// A signed-in session: whose it is, and until when.
#[derive(Clone, Debug)]
pub struct Session {
    pub agent: Agent,
    pub expires_at: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub limit: i64,
    pub cursor: Option<i64>,
}

/// A page of an agent's conversations.
#[derive(Clone, Debug)]
pub struct ConversationList {
    pub conversations: Vec<Conversation>,
    /// Where the next page starts; `None` on the last.
    pub next: Option<i64>,
    /// A `sync` cursor that misses nothing this page does not show: every change up to it
    /// had committed when the page was read.
    pub sync_from: i64,
}

#[derive(Clone, Debug)]
pub struct QueueStats {
    pub depth: i64,
    pub oldest: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_audience_column_is_read_in_agent_order() {
        let ids = |ids: &[&str]| Audience::new(ids.iter().map(|i| i.parse().unwrap()).collect());
        assert_eq!(
            Audience::parse(Some("12,3,7")).unwrap(),
            ids(&["3", "7", "12"])
        );
        assert_eq!(Audience::parse(Some("5")).unwrap(), ids(&["5"]));
        assert_eq!(Audience::parse(None).unwrap(), Audience::default());
        assert!(
            Audience::parse(Some("5,x")).is_err(),
            "never a silent default"
        );
    }
}
