//! What goes into the store and what comes out of it, beside the domain's own types.

use chrono::{DateTime, Utc};

use crate::domain::{ClientId, MessageBody};
use crate::model::{
    Agent, AgentId, Conversation, ConversationId, ConversationStatus, Media, Message, MessageId,
    Status, UploadId,
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
    /// The failed message this one sends again: a message is retried once, however many
    /// retries of it are asked for.
    pub retry_of: Option<MessageId>,
    /// The conversation had no assignee when the send was asked for: the sender becomes
    /// it, unless someone else did meanwhile.
    pub assign: bool,
    /// The sender's uploads it carries, in order. A retry carries its original's pictures
    /// instead, and takes no others.
    pub media: Vec<UploadId>,
}

#[derive(Clone, Debug)]
pub enum Outbound {
    /// Stored and queued for sending.
    Created(Box<MessageChange>),
    /// The same `clientId` with the same body was sent before, or the message was retried
    /// already: nothing new happens.
    Existing(Box<Message>),
    /// The same `clientId` was used for another body.
    ClientIdReused,
    OptedOut,
    /// This upload is not one of the sender's (or no longer exists).
    UnknownMedia(UploadId),
    /// The pictures together are more than an MMS takes.
    MediaTooLarge,
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

/// A message Twilio has, as a worker records it.
#[derive(Clone, Debug)]
pub struct Acceptance {
    pub sid: String,
    /// Twilio's status for it: one an outbound message can have.
    pub status: Status,
    pub error_code: Option<i64>,
    /// Twilio answered our create with it (`201`), or a claim before kept that answer: Twilio
    /// has this message whatever happens to recording it, and it is never posted again.
    /// Otherwise the sid was found in Twilio's Messages list and may be another message's.
    pub created: bool,
    /// When to fetch its status from Twilio if none final came by then; `None`: never.
    pub check_at: Option<DateTime<Utc>>,
}

/// What recording a message Twilio has did.
#[derive(Clone, Debug)]
pub enum Accepted {
    /// Recorded, with its sid unless another message holds it (a created one only: Twilio has
    /// it, so it is settled without the sid rather than posted again).
    Recorded(Box<MessageChange>),
    /// Another message holds the sid found in the list: nothing changed, the job stays queued.
    SidTaken,
    /// The claim is no longer the job's: nothing changed, except that a created message's sid
    /// is kept on its job, for whoever holds it now to record.
    LostClaim,
}

/// What a worker about to call Twilio's create may do ([`super::Store::ready_to_create`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CreateGate {
    /// Send, once this short wait (within the pace's tolerance) is over.
    Go(std::time::Duration),
    /// Not yet: the number's last create went out too recently; try again this much later.
    Wait(std::time::Duration),
    /// Twilio took the message already (a `201` kept on the job): record this sid.
    Created(String),
    /// The claim is no longer the job's.
    Lost,
}

/// A create counted against its sending number's pace (`SEND_RATE_PER_NUMBER`).
#[derive(Clone, Copy, Debug)]
pub struct PaceGate<'a> {
    pub number: &'a str,
    /// The message's share of the number's rate.
    pub cost_us: i64,
    /// How much sooner than the rate allows a create may still go (after waiting that out).
    pub tolerance_us: i64,
}

/// A claimed check of a sent message's status (`status_checks`).
#[derive(Clone, Debug)]
pub struct StatusCheck {
    pub message: MessageId,
    pub sid: String,
    /// When Twilio took the message: the checks are timed from it.
    pub accepted_at: DateTime<Utc>,
    /// Which check this is, from 1.
    pub nth: i64,
    /// The message's status as stored now.
    pub status: Status,
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
    /// The sid of a `201` that a worker which lost its claim kept on the job: Twilio has it.
    pub created_sid: Option<String>,
    /// The pacing slot the message was given, if it was given one.
    pub slot: Option<DbTime>,
    /// The database's clock when the job was claimed.
    pub claimed: DbClock,
    /// The tokens of the message's media links, in order.
    pub media_tokens: Vec<String>,
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

/// Which of an agent's conversations a list shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListFilter {
    /// `None`: every status.
    pub status: Option<ConversationStatus>,
    pub assignee: AssigneeFilter,
}

impl ListFilter {
    /// Every conversation of the agent.
    pub const ALL: Self = Self {
        status: None,
        assignee: AssigneeFilter::Any,
    };

    /// The view as the parameters of `rows::filtered!`.
    pub(super) fn view(self) -> View {
        match self.assignee {
            AssigneeFilter::Any => (self.status, None, false),
            AssigneeFilter::Nobody => (self.status, None, true),
            AssigneeFilter::Agent(a) => (self.status, Some(a), false),
        }
    }
}

/// A view as three parameters: its status (`None`: any), its assignee (`None`: any), and
/// whether it holds only the unassigned.
pub(super) type View = (Option<ConversationStatus>, Option<AgentId>, bool);

/// Whose conversations a list shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssigneeFilter {
    Any,
    /// Unassigned ones.
    Nobody,
    Agent(AgentId),
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
