//! Rows as the queries select them, and how they become the domain's types. The column lists
//! are `concat!` fragments so every statement stays one literal that sqlx can cache.

use chrono::{DateTime, Utc};
use sqlx::{ColumnIndex, Decode, FromRow, Row, Type};

use super::{ConversationList, SigningIn};
use crate::model::{
    Agent, AgentId, Assignee, Contact, Conversation, ConversationId, ConversationStatus, Direction,
    ManagedAgent, Media, Message, MessageId, Role, Status,
};

/// A message's columns, for `SELECT … FROM messages m`.
macro_rules! message_columns {
    () => {
        "m.id, m.conversation_id, m.direction, m.from_number, m.to_number, m.body, m.media, \
         m.status, m.error_code, m.error_message, m.twilio_sid, m.client_id, m.agent_id, \
         m.segments, m.created_at, m.updated_at, m.seq"
    };
}

/// The same columns unqualified, for `RETURNING` (SQLite takes no table alias there).
macro_rules! returning_columns {
    () => {
        "id, conversation_id, direction, from_number, to_number, body, media, status, \
         error_code, error_message, twilio_sid, client_id, agent_id, segments, created_at, \
         updated_at, seq"
    };
}

/// A conversation with its last message and its assignee's name, as [`ConversationRow`]
/// reads it, and any further columns; the conversations as `c` from `$source` (the table
/// itself unless named; its pieces are joined).
macro_rules! conversation_select {
    () => {
        $crate::store::rows::conversation_select!("")
    };
    ($extra_columns:literal) => {
        $crate::store::rows::conversation_select!($extra_columns, "conversations c")
    };
    ($extra_columns:literal, $($source:expr),+) => {
        concat!(
            "SELECT c.id AS c_id, c.our_number, c.contact_phone, c.contact_name, c.opted_out, \
             c.unread_count, c.updated_at AS c_updated_at, c.activity, c.status AS c_status, \
             c.snoozed_until, c.assignee_id, asg.name AS assignee_name, \
             c.version AS c_version, c.changed AS c_changed, ",
            $extra_columns,
            $crate::store::rows::message_columns!(),
            " FROM ",
            $($source,)+
            " LEFT JOIN messages m ON m.id = c.last_message_id \
              LEFT JOIN agents asg ON asg.id = c.assignee_id "
        )
    };
}

/// An agent with their numbers, as [`AgentRow`] reads it, and any further columns.
macro_rules! agent_select {
    () => {
        $crate::store::rows::agent_select!("")
    };
    ($more_columns:literal) => {
        concat!(
            "SELECT a.id, a.email, a.name, a.password_hash, a.role, a.disabled, a.created_at, \
             (SELECT string_agg(n.number, ',') FROM agent_numbers n WHERE n.agent_id = a.id) \
             AS numbers",
            $more_columns,
            " FROM agents a "
        )
    };
}

/// `c.our_number` is one of agent `$n`'s numbers.
macro_rules! visible_to {
    ($n:literal) => {
        concat!(
            " c.our_number IN (SELECT number FROM agent_numbers WHERE agent_id = $",
            $n,
            ") "
        )
    };
}

/// The conversations `$table` that a view holds, the view as three parameters numbered
/// `$status`, `$assignee`, `$nobody` ([`super::View`]): its status (`NULL`: any), its
/// assignee (`NULL`: any) and whether only the unassigned. For a search, which its parts'
/// indexes narrow first: the plain list picks an index per view instead
/// (`Dialect::list_conversations`).
macro_rules! filtered {
    ($table:literal, $status:literal, $assignee:literal, $nobody:literal) => {
        concat!(
            " AND ($",
            $status,
            " IS NULL OR ",
            $table,
            ".status = $",
            $status,
            ") \
              AND ($",
            $assignee,
            " IS NULL OR ",
            $table,
            ".assignee_id = $",
            $assignee,
            ") \
              AND (NOT $",
            $nobody,
            " OR ",
            $table,
            ".assignee_id IS NULL) "
        )
    };
}

pub(super) use {
    agent_select, conversation_select, filtered, message_columns, returning_columns, visible_to,
};

#[derive(sqlx::FromRow)]
pub(super) struct MessageRow {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub direction: Direction,
    from_number: String,
    to_number: String,
    pub body: String,
    #[sqlx(try_from = "String")]
    media: MediaColumn,
    status: Status,
    error_code: Option<i64>,
    error_message: Option<String>,
    twilio_sid: Option<String>,
    client_id: Option<String>,
    agent_id: Option<AgentId>,
    segments: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    pub seq: i64,
}

impl From<MessageRow> for Message {
    fn from(r: MessageRow) -> Self {
        Message {
            id: r.id,
            conversation_id: r.conversation_id,
            direction: r.direction,
            from: r.from_number,
            to: r.to_number,
            body: r.body,
            media: r.media.0,
            status: r.status,
            error_code: r.error_code,
            error_message: r.error_message,
            twilio_sid: r.twilio_sid,
            client_id: r.client_id,
            agent_id: r.agent_id,
            segments: r.segments,
            created_at: r.created_at,
            updated_at: r.updated_at,
            seq: r.seq,
        }
    }
}

/// The `media` column: a message's media, as JSON.
struct MediaColumn(Vec<Media>);

impl TryFrom<String> for MediaColumn {
    type Error = serde_json::Error;

    fn try_from(json: String) -> Result<Self, serde_json::Error> {
        serde_json::from_str(&json).map(Self)
    }
}

/// A conversation row, with its last message's columns (all null when it has none).
#[derive(sqlx::FromRow)]
pub(super) struct ConversationRow {
    c_id: ConversationId,
    our_number: String,
    contact_phone: String,
    contact_name: Option<String>,
    opted_out: bool,
    unread_count: i64,
    c_updated_at: DateTime<Utc>,
    activity: i64,
    c_status: ConversationStatus,
    snoozed_until: Option<DateTime<Utc>>,
    assignee_id: Option<AgentId>,
    assignee_name: Option<String>,
    c_version: i64,
    /// The seq of its last change of its own state (`sync`).
    pub(super) c_changed: i64,
    #[sqlx(flatten)]
    last: LastMessage,
}

/// A row of the conversation list, with how far `sync` could see in the list's snapshot.
#[derive(sqlx::FromRow)]
pub(super) struct ListedRow {
    #[sqlx(flatten)]
    pub(super) row: ConversationRow,
    pub(super) visible_up_to: i64,
}

/// A conversation's last message, from the columns of the `LEFT JOIN` that reads it: none
/// when they are null.
struct LastMessage(Option<Message>);

impl<'r, R> FromRow<'r, R> for LastMessage
where
    R: Row,
    &'static str: ColumnIndex<R>,
    MessageId: Decode<'r, R::Database> + Type<R::Database>,
    MessageRow: FromRow<'r, R>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        let id: Option<MessageId> = row.try_get("id")?;
        Ok(Self(match id {
            Some(_) => Some(MessageRow::from_row(row)?.into()),
            None => None,
        }))
    }
}

impl ConversationRow {
    pub(super) fn into_conversation(self) -> Conversation {
        Conversation {
            id: self.c_id,
            our_number: self.our_number,
            contact: Contact {
                phone: self.contact_phone,
                name: self.contact_name,
                opted_out: self.opted_out,
            },
            last_message: self.last.0,
            unread_count: self.unread_count,
            updated_at: self.c_updated_at,
            status: self.c_status,
            snoozed_until: self.snoozed_until,
            assignee: assignee(self.assignee_id, self.assignee_name),
            version: self.c_version,
        }
    }
}

/// The assignee of a conversation, from its `assignee_id` and that agent's name.
pub(super) fn assignee(id: Option<AgentId>, name: Option<String>) -> Option<Assignee> {
    Some(Assignee {
        id: id?,
        name: name.unwrap_or_default(),
    })
}

/// A page of the conversation list, from its rows in the list's order: when the page is
/// `full`, the next one starts below the last row's activity.
pub(super) fn conversation_page(
    rows: Vec<ListedRow>,
    full: bool,
    sync_from: i64,
) -> ConversationList {
    let next = rows.last().map(|r| r.row.activity).filter(|_| full);
    ConversationList {
        conversations: rows
            .into_iter()
            .map(|r| r.row.into_conversation())
            .collect(),
        next,
        sync_from,
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct AgentRow {
    id: AgentId,
    email: String,
    name: String,
    password_hash: String,
    role: Role,
    disabled: bool,
    created_at: DateTime<Utc>,
    numbers: Option<String>,
}

#[derive(sqlx::FromRow)]
pub(super) struct SessionRow {
    #[sqlx(flatten)]
    pub agent: AgentRow,
    pub expires_at: DateTime<Utc>,
}

impl AgentRow {
    pub(super) fn into_agent(self) -> Agent {
        Agent {
            numbers: self.numbers(),
            id: self.id,
            email: self.email,
            name: self.name,
            role: self.role,
        }
    }

    /// The agent, and their password hash (empty while an invite is pending).
    pub(super) fn into_credentials(mut self) -> (Agent, String) {
        let hash = std::mem::take(&mut self.password_hash);
        (self.into_agent(), hash)
    }

    /// The agent as a sign-in checks them.
    pub(super) fn into_signing_in(self) -> SigningIn {
        let disabled = self.disabled;
        let (agent, password_hash) = self.into_credentials();
        SigningIn {
            agent,
            password_hash,
            disabled,
        }
    }

    /// The agent as the admin view shows it.
    pub(super) fn into_managed(self) -> ManagedAgent {
        ManagedAgent {
            id: self.id,
            numbers: self.numbers(),
            role: self.role,
            disabled: self.disabled,
            invite_pending: self.password_hash.is_empty(),
            created_at: self.created_at,
            email: self.email,
            name: self.name,
        }
    }

    fn numbers(&self) -> Vec<String> {
        let mut numbers: Vec<String> = self
            .numbers
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect();
        numbers.sort();
        numbers
    }
}
