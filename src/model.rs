//! The domain as the API shows it (docs/api.md, "Objects"): agents, conversations, messages and statuses.

use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize, Serializer};

mod id;
mod stored;

pub use id::{AgentId, ConversationId, EntityId, MessageId, ReplyId, UploadId};

/// Times go out as RFC 3339 with milliseconds, in UTC.
pub fn rfc3339<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// An optional time as [`rfc3339`] writes it, or `null`.
pub fn rfc3339_or_null<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => rfc3339(t, s),
        None => s.serialize_none(),
    }
}

/// Now, truncated to milliseconds so stored and compared times agree on every backend.
pub fn now() -> DateTime<Utc> {
    let t = Utc::now();
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Agent {
    pub id: AgentId,
    pub email: String,
    pub name: String,
    pub numbers: Vec<String>,
    pub role: Role,
}

/// What an agent may do: an admin also manages the agents (`/api/admin/*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Agent,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Agent => "agent",
        }
    }
}

impl FromStr for Role {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        [Self::Admin, Self::Agent]
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or(())
    }
}

/// An agent as the admin view shows it (`/api/admin/agents`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedAgent {
    pub id: AgentId,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub numbers: Vec<String>,
    pub disabled: bool,
    /// Invited, and no password chosen yet.
    pub invite_pending: bool,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Inbound,
    Outbound,
    /// A note between agents: never sent, never seen by the contact.
    Note,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::Outbound => "outbound",
            Self::Note => "note",
        }
    }
}

impl FromStr for Direction {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        [Self::Inbound, Self::Outbound, Self::Note]
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or(())
    }
}

/// A message's status: ours (`pending`), Twilio's outbound ones, `received` for inbound,
/// and `note` for a note, which no report ever changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Accepted,
    Scheduled,
    Queued,
    Sending,
    Sent,
    Delivered,
    Undelivered,
    Failed,
    Canceled,
    Read,
    Received,
    Note,
}

impl Status {
    /// The statuses of sending and receiving, which status precedence orders
    /// (`tests/fixtures/status_precedence.json`); a note's is none of them.
    pub const ALL: [Status; 12] = [
        Self::Pending,
        Self::Accepted,
        Self::Scheduled,
        Self::Queued,
        Self::Sending,
        Self::Sent,
        Self::Delivered,
        Self::Undelivered,
        Self::Failed,
        Self::Canceled,
        Self::Read,
        Self::Received,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Accepted => "accepted",
            Self::Scheduled => "scheduled",
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Undelivered => "undelivered",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
            Self::Read => "read",
            Self::Received => "received",
            Self::Note => "note",
        }
    }

    /// How far along a message is; a stored status only ever moves to a higher rank
    /// (see [`Status::may_replace`] for the one exception within the final rank).
    pub fn rank(self) -> i64 {
        match self {
            Self::Pending => 0,
            Self::Accepted | Self::Scheduled | Self::Queued => 1,
            Self::Sending => 2,
            Self::Sent => 3,
            Self::Delivered | Self::Undelivered | Self::Failed | Self::Canceled => 4,
            Self::Read => 5,
            Self::Received | Self::Note => 4,
        }
    }

    /// Whether Twilio reports this status for a message of `direction`: outbound messages
    /// go through the statuses of docs/api.md ("Statuses"), inbound ones through `receiving` (not tracked: it never
    /// moves a stored message) and `received`. A status callback of the other direction
    /// applies to nothing, and `pending` is ours, never Twilio's.
    pub fn reported_for(self, direction: Direction) -> bool {
        match self {
            Self::Pending | Self::Note => false,
            Self::Received => direction == Direction::Inbound,
            Self::Accepted
            | Self::Scheduled
            | Self::Queued
            | Self::Sending
            | Self::Sent
            | Self::Delivered
            | Self::Undelivered
            | Self::Failed
            | Self::Canceled
            | Self::Read => direction == Direction::Outbound,
        }
    }

    /// Whether a callback saying `self` should overwrite a stored `current`.
    pub fn may_replace(self, current: Status) -> bool {
        self.rank() > current.rank()
            || (self == Self::Delivered && matches!(current, Self::Undelivered | Self::Failed))
    }

    /// Where a message of `direction` ends up after `reports` (each with what came with
    /// it), taken in the order they arrived as if each had been applied then: a report
    /// replaces the one kept so far only if it [may](Status::may_replace). Reports of the
    /// other direction apply to nothing and are left out.
    pub fn settle<T>(
        direction: Direction,
        reports: impl IntoIterator<Item = (Status, T)>,
    ) -> Option<(Status, T)> {
        reports
            .into_iter()
            .filter(|(s, _)| s.reported_for(direction))
            .fold(None, |kept, (s, with)| match kept {
                Some((k, _)) if !s.may_replace(k) => kept,
                _ => Some((s, with)),
            })
    }

    pub fn is_failure(self) -> bool {
        matches!(self, Self::Failed | Self::Undelivered)
    }

    /// Whether Twilio is done with the message: nothing but a late `delivered` or `read`
    /// comes after it.
    pub fn is_final(self) -> bool {
        self.rank() >= Self::Delivered.rank()
    }
}

impl FromStr for Status {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Self::ALL
            .into_iter()
            .chain([Self::Note])
            .find(|st| st.as_str().eq_ignore_ascii_case(s))
            .ok_or(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Media {
    pub url: String,
    pub content_type: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub direction: Direction,
    pub from: String,
    pub to: String,
    pub body: String,
    pub media: Vec<Media>,
    pub status: Status,
    pub error_code: Option<i64>,
    pub error_message: Option<String>,
    pub twilio_sid: Option<String>,
    pub client_id: Option<String>,
    pub agent_id: Option<AgentId>,
    pub segments: i64,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "rfc3339")]
    pub updated_at: DateTime<Utc>,
    pub seq: i64,
}

impl Message {
    /// The payload of `message:status`.
    pub fn status_event(&self) -> StatusEvent<'_> {
        StatusEvent {
            id: self.id,
            conversation_id: self.conversation_id,
            status: self.status,
            error_code: self.error_code,
            error_message: self.error_message.as_deref(),
            twilio_sid: self.twilio_sid.as_deref(),
            updated_at: self.updated_at,
            seq: self.seq,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusEvent<'a> {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub status: Status,
    pub error_code: Option<i64>,
    pub error_message: Option<&'a str>,
    pub twilio_sid: Option<&'a str>,
    #[serde(serialize_with = "rfc3339")]
    pub updated_at: DateTime<Utc>,
    pub seq: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    pub phone: String,
    pub name: Option<String>,
    pub opted_out: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conversation {
    pub id: ConversationId,
    pub our_number: String,
    pub contact: Contact,
    pub last_message: Option<Message>,
    pub unread_count: i64,
    #[serde(serialize_with = "rfc3339")]
    pub updated_at: DateTime<Utc>,
    pub status: ConversationStatus,
    /// Set while `status` is `snoozed`: when it opens again.
    #[serde(serialize_with = "rfc3339_or_null")]
    pub snoozed_until: Option<DateTime<Utc>>,
    pub assignee: Option<Assignee>,
    /// How many changes of its own state the conversation has seen, counted under its row's
    /// lock: the order its writes committed in, which its events keep (`crate::events`).
    #[serde(skip)]
    pub version: i64,
}

/// Whether a conversation waits for an answer (`open`), is set aside until a time
/// (`snoozed`), or is done (`closed`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConversationStatus {
    Open,
    Snoozed,
    Closed,
}

impl ConversationStatus {
    pub const ALL: [Self; 3] = [Self::Open, Self::Snoozed, Self::Closed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Snoozed => "snoozed",
            Self::Closed => "closed",
        }
    }
}

impl FromStr for ConversationStatus {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Self::ALL.into_iter().find(|st| st.as_str() == s).ok_or(())
    }
}

/// The agent a conversation is assigned to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignee {
    pub id: AgentId,
    pub name: String,
}

/// An agent as other agents see them (`GET /api/crm/sms/agents`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Colleague {
    pub id: AgentId,
    pub name: String,
    /// The numbers they hold that the agent who asked holds too, in order: whom a
    /// conversation of a number may be assigned to. Never their other numbers.
    pub numbers: Vec<String>,
}

/// How many of an agent's conversations each view of the inbox holds
/// (`GET /api/crm/sms/conversations/counts`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxCounts {
    /// Open, and assigned to the agent.
    pub mine: i64,
    /// Open, and assigned to no one.
    pub unassigned: i64,
    pub open: i64,
    pub snoozed: i64,
    pub closed: i64,
}

/// A canned reply (docs/api.md, "Canned replies"): text an agent inserts by its shortcut,
/// shared by every agent.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reply {
    pub id: ReplyId,
    pub shortcut: String,
    pub body: String,
    /// Its author.
    pub agent_id: AgentId,
    #[serde(serialize_with = "rfc3339")]
    pub updated_at: DateTime<Utc>,
}

impl Reply {
    /// Whether `agent` may change or delete it: its author may, and so may every admin (who
    /// also looks after the replies of an author who was disabled).
    pub fn may_be_changed_by(&self, agent: &Agent) -> bool {
        agent.id == self.agent_id || agent.role == Role::Admin
    }
}

/// The payload of `reply:deleted`.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct ReplyDeleted {
    pub id: ReplyId,
}

#[derive(Serialize, Deserialize)]
pub struct TypingEvent {
    #[serde(rename = "conversationId")]
    pub conversation_id: ConversationId,
    #[serde(rename = "agentId")]
    pub agent_id: AgentId,
    #[serde(rename = "agentName")]
    pub agent_name: String,
    #[serde(rename = "isTyping")]
    pub is_typing: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_is_changed_by_its_author_or_an_admin() {
        let agent = |id: &str, role| Agent {
            id: id.parse().unwrap(),
            email: format!("{id}@example.com"),
            name: id.to_owned(),
            numbers: Vec::new(),
            role,
        };
        let reply = Reply {
            id: "1".parse().unwrap(),
            shortcut: "thanks".into(),
            body: "Thanks!".into(),
            agent_id: "7".parse().unwrap(),
            updated_at: now(),
        };
        assert!(reply.may_be_changed_by(&agent("7", Role::Agent)));
        assert!(reply.may_be_changed_by(&agent("8", Role::Admin)));
        assert!(!reply.may_be_changed_by(&agent("8", Role::Agent)));
    }

    #[test]
    fn statuses_only_move_forward() {
        use Status::*;
        assert!(Sent.may_replace(Queued));
        assert!(!Queued.may_replace(Sent));
        assert!(!Sent.may_replace(Sent));
        assert!(Delivered.may_replace(Undelivered));
        assert!(Delivered.may_replace(Failed));
        assert!(!Undelivered.may_replace(Delivered));
        assert!(!Failed.may_replace(Undelivered));
        assert!(Read.may_replace(Delivered));
        assert!(Queued.may_replace(Pending));
    }

    /// The page's copy of the rule (`static/js/store.js`) is tested against the same file.
    #[test]
    fn precedence_matches_the_shared_fixture() {
        let fixture: serde_json::Value =
            serde_json::from_str(include_str!("../tests/fixtures/status_precedence.json"))
                .expect("the fixture is JSON");
        let ranks = fixture["ranks"].as_object().expect("ranks");
        let table = fixture["mayReplace"].as_object().expect("mayReplace");
        assert_eq!(ranks.len(), Status::ALL.len(), "every status, once");
        assert_eq!(table.len(), Status::ALL.len(), "every status, once");
        for new in Status::ALL {
            let name = new.as_str();
            assert_eq!(
                ranks.get(name).and_then(|r| r.as_i64()),
                Some(new.rank()),
                "rank of {name}"
            );
            let row = table.get(name).and_then(|r| r.as_object()).expect(name);
            assert_eq!(row.len(), Status::ALL.len(), "a full row for {name}");
            for current in Status::ALL {
                assert_eq!(
                    row.get(current.as_str()).and_then(|v| v.as_bool()),
                    Some(new.may_replace(current)),
                    "may {name} replace {}?",
                    current.as_str()
                );
            }
        }
    }

    #[test]
    fn statuses_apply_only_to_their_direction() {
        use Direction::*;
        use Status::*;
        // As docs/api.md ("Statuses") lists them; `pending` is ours and no callback's.
        let outbound = [
            Accepted,
            Scheduled,
            Queued,
            Sending,
            Sent,
            Delivered,
            Undelivered,
            Failed,
            Canceled,
            Read,
        ];
        let inbound = [Received];
        for s in Status::ALL {
            assert_eq!(s.reported_for(Outbound), outbound.contains(&s), "{s:?}");
            assert_eq!(s.reported_for(Inbound), inbound.contains(&s), "{s:?}");
        }
    }

    #[test]
    fn early_statuses_settle_as_if_applied_in_turn() {
        use Direction::*;
        use Status::*;
        let settle = |reports: &[Status]| {
            Status::settle(Outbound, reports.iter().map(|s| (*s, ()))).map(|(s, ())| s)
        };
        assert_eq!(settle(&[]), None);
        assert_eq!(settle(&[Sent, Queued]), Some(Sent));
        assert_eq!(settle(&[Undelivered, Delivered]), Some(Delivered));
        assert_eq!(settle(&[Delivered, Undelivered]), Some(Delivered));
        assert_eq!(
            settle(&[Failed, Canceled]),
            Some(Failed),
            "the first of a rank"
        );
        assert_eq!(settle(&[Received, Pending]), None, "no outbound report");
        assert_eq!(
            Status::settle(Outbound, [(Queued, 1), (Undelivered, 2), (Sent, 3)]),
            Some((Undelivered, 2)),
            "what came with it comes along"
        );
        assert_eq!("inbound".parse(), Ok(Inbound));
        assert_eq!("outbound".parse(), Ok(Outbound));
        assert_eq!("sideways".parse::<Direction>(), Err(()));
    }
}
