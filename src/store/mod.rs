//! Persistence: the [`Store`] trait the rest of the server talks to, with a PostgreSQL and a
//! SQLite implementation that share their SQL (see `sql.rs`).

mod postgres;
mod sql;
mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::config::DatabaseUrl;
use crate::model::{Agent, Conversation, Direction, Id, Media, Message, Status};
use crate::sms::OptChange;
use crate::twilio::errors::describe as describe_error;

pub use self::postgres::PgStore;
pub use self::sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached (down, restarting, locked, read-only): try again later.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error(transparent)]
    Other(sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if is_unavailable(&e) {
            Self::Unavailable(e)
        } else {
            Self::Other(e)
        }
    }
}

fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            // Each backend's codes are read on their own: a PostgreSQL SQLSTATE such as 22021
            // (a NUL in text) read as a SQLite number would look like BUSY.
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // BUSY (5), LOCKED (6), READONLY (8), IOERR (10), FULL (13), CANTOPEN (14).
                matches!(
                    code.parse::<i64>().map(|c| c & 0xff),
                    Ok(5 | 6 | 8 | 10 | 13 | 14)
                )
            } else {
                // Connection exceptions (08), shutdown (57P), out of resources (53).
                code.starts_with("08") || code.starts_with("57P") || code.starts_with("53")
            }
        }
        _ => false,
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Which changes `sync` may show. Writers can commit out of `seq` order (on PostgreSQL
/// `seq` comes from a sequence), so a change may only be shown once no write still in
/// flight can commit a lower `seq`. Each write registers before taking a `seq`, with the
/// highest `seq` seen so far as a lower bound of what it will get; `sync` shows nothing
/// above the smallest bound in flight. Exact for one server process, which owns every write.
#[derive(Default)]
struct Watermark {
    state: std::sync::Mutex<WatermarkState>,
}

#[derive(Default)]
struct WatermarkState {
    last_seen: i64,
    next_id: u64,
    in_flight: std::collections::HashMap<u64, i64>,
}

/// Held by a write from before it takes a `seq` until after it commits or rolls back.
struct Writing<'a> {
    watermark: &'a Watermark,
    id: u64,
}

impl Watermark {
    fn lock(&self) -> std::sync::MutexGuard<'_, WatermarkState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn enter(&self) -> Writing<'_> {
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

    fn observe(&self, seq: i64) {
        let mut st = self.lock();
        st.last_seen = st.last_seen.max(seq);
    }

    /// The highest `seq` that `sync` may show now.
    fn visible_up_to(&self) -> i64 {
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

/// The result of storing an inbound message for the first time.
#[derive(Clone, Debug)]
pub struct Inbound {
    pub message: Message,
    pub conversation: Conversation,
    /// The agents who hold the conversation's number.
    pub audience: Vec<Id>,
}

#[derive(Clone, Debug)]
pub struct NewOutbound {
    pub conversation_id: Id,
    pub agent_id: Id,
    pub client_id: String,
    pub body: String,
    pub segments: i64,
}

#[derive(Clone, Debug)]
pub enum Outbound {
    /// Stored and queued for sending.
    Created(Message),
    /// The same `clientId` with the same body was sent before: nothing new happens.
    Existing(Message),
    /// The same `clientId` was used for another body.
    ClientIdReused,
    OptedOut,
}

/// A change to one message, with whom to tell.
#[derive(Clone, Debug)]
pub struct Changed {
    pub message: Message,
    pub audience: Vec<Id>,
    /// Set when the change also changed the conversation (opt-out after 21610).
    pub conversation: Option<Conversation>,
}

#[derive(Clone, Debug)]
pub struct StatusReport {
    /// Our id from the `StatusCallback` query, when Twilio used our URL.
    pub message_id: Option<Id>,
    pub twilio_sid: String,
    pub status: Status,
    pub error_code: Option<i64>,
}

#[derive(Clone, Debug)]
pub enum StatusOutcome {
    Applied(Box<Changed>),
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
    pub message: Id,
    pub token: i64,
}

/// What recording a Twilio sid for a claimed message did.
#[derive(Clone, Debug)]
pub enum Accepted {
    Recorded(Box<Changed>),
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

#[derive(Clone, Debug)]
pub struct QueueStats {
    pub depth: i64,
    pub oldest: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn backend(&self) -> &'static str;
    async fn ping(&self) -> StoreResult<()>;

    // Agents and sessions.
    async fn count_agents(&self) -> StoreResult<i64>;
    /// `None` when the email is taken.
    async fn create_agent(
        &self,
        email: &str,
        name: &str,
        password_hash: &str,
        numbers: &[String],
    ) -> StoreResult<Option<Agent>>;
    /// The first agent, made by the setup link: `None` when any agent exists, whoever made
    /// it (this process, the CLI, another instance), decided in the write itself.
    async fn create_first_agent(
        &self,
        email: &str,
        name: &str,
        password_hash: &str,
        numbers: &[String],
    ) -> StoreResult<Option<Agent>>;
    async fn agent_by_email(&self, email: &str) -> StoreResult<Option<(Agent, String)>>;
    async fn list_agents(&self) -> StoreResult<Vec<Agent>>;
    async fn change_numbers(
        &self,
        agent: Id,
        add: &[String],
        remove: &[String],
    ) -> StoreResult<Agent>;
    async fn create_session(
        &self,
        token_hash: &str,
        agent: Id,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// The session with this token hash, if it has not expired.
    async fn session(&self, token_hash: &str) -> StoreResult<Option<Session>>;
    async fn session_agent(&self, token_hash: &str) -> StoreResult<Option<Agent>> {
        Ok(self.session(token_hash).await?.map(|s| s.agent))
    }
    async fn delete_session(&self, token_hash: &str) -> StoreResult<()>;
    /// Deletes the sessions that have expired; their token hashes.
    async fn end_expired_sessions(&self) -> StoreResult<Vec<String>>;

    // Reading.
    async fn list_conversations(
        &self,
        agent: Id,
        page: Page,
    ) -> StoreResult<(Vec<Conversation>, Option<i64>)>;
    /// The conversation if `agent` may see it.
    async fn conversation(&self, agent: Id, id: Id) -> StoreResult<Option<Conversation>>;
    async fn list_messages(
        &self,
        conversation: Id,
        page: Page,
    ) -> StoreResult<(Vec<Message>, Option<i64>)>;
    /// The message if `agent` may see it.
    async fn message(&self, agent: Id, id: Id) -> StoreResult<Option<Message>>;
    /// Messages of `agent` changed after `since`, in change order.
    async fn changes(&self, agent: Id, since: i64, limit: i64) -> StoreResult<Vec<Message>>;
    /// The agents who hold the conversation's number.
    async fn audience(&self, conversation: Id) -> StoreResult<Vec<Id>>;

    // Writing.
    async fn open_conversation(
        &self,
        our_number: &str,
        contact: &str,
        name: Option<&str>,
    ) -> StoreResult<Conversation>;
    async fn mark_read(&self, conversation: Id) -> StoreResult<Option<Conversation>>;
    /// `None` when this `MessageSid` was stored before.
    async fn insert_inbound(&self, msg: &NewInbound) -> StoreResult<Option<Inbound>>;
    async fn insert_outbound(&self, msg: &NewOutbound) -> StoreResult<Outbound>;
    async fn apply_status(&self, report: &StatusReport) -> StoreResult<StatusOutcome>;

    // The sending queue.
    //
    // Every write below names the claim it belongs to and changes nothing (answering
    // `false`, `None` or `LostClaim`) once that claim is no longer the job's.
    async fn claim_send(&self, lease: Duration) -> StoreResult<Option<SendJob>>;
    /// Extends the claim's lease to `lease` from now.
    async fn renew_lease(&self, claim: Claim, lease: Duration) -> StoreResult<bool>;
    async fn mark_accepted(&self, claim: Claim, sid: &str, status: Status)
    -> StoreResult<Accepted>;
    async fn mark_failed(
        &self,
        claim: Claim,
        code: Option<i64>,
        reason: &str,
        opt_out: bool,
    ) -> StoreResult<Option<Changed>>;
    async fn reschedule(
        &self,
        claim: Claim,
        at: DateTime<Utc>,
        error: &str,
        maybe_sent: bool,
    ) -> StoreResult<bool>;
    /// Puts a claimed message back without counting the claim as an attempt.
    async fn defer(&self, claim: Claim, at: DateTime<Utc>) -> StoreResult<bool>;
    /// Deletes early statuses whose message never showed up (kept a day: Twilio's
    /// callbacks for messages sent elsewhere land there too).
    async fn prune(&self) -> StoreResult<u64>;
    /// Whether a message with this Twilio sid is stored.
    async fn has_sid(&self, sid: &str) -> StoreResult<bool>;
    async fn queue_stats(&self) -> StoreResult<QueueStats>;
}

/// Connects to the database named by `url`, retrying for about `patience`, and runs the
/// migrations of its backend.
pub async fn connect(url: &DatabaseUrl, patience: Duration) -> anyhow::Result<Arc<dyn Store>> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let attempt: anyhow::Result<Arc<dyn Store>> = if url.is_postgres() {
            PgStore::connect(url.expose())
                .await
                .map(|s| Arc::new(s) as _)
        } else {
            SqliteStore::connect(url.expose())
                .await
                .map(|s| Arc::new(s) as _)
        };
        match attempt {
            Ok(store) => return Ok(store),
            Err(e) if tokio::time::Instant::now() < deadline && is_retryable(&e) => {
                tracing::warn!(error = %e, "database not answering yet; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

fn is_retryable(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<sqlx::Error>().is_some_and(is_unavailable)
            || c.downcast_ref::<std::io::Error>().is_some()
    })
}

#[cfg(test)]
mod watermark_tests {
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

#[derive(sqlx::FromRow)]
struct MessageRow {
    id: i64,
    conversation_id: i64,
    direction: String,
    from_number: String,
    to_number: String,
    body: String,
    media: String,
    status: String,
    error_code: Option<i64>,
    error_message: Option<String>,
    twilio_sid: Option<String>,
    client_id: Option<String>,
    agent_id: Option<i64>,
    segments: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    seq: i64,
}

impl From<MessageRow> for Message {
    fn from(r: MessageRow) -> Self {
        Message {
            id: Id(r.id),
            conversation_id: Id(r.conversation_id),
            direction: if r.direction == "inbound" {
                Direction::Inbound
            } else {
                Direction::Outbound
            },
            from: r.from_number,
            to: r.to_number,
            body: r.body,
            media: serde_json::from_str(&r.media).unwrap_or_default(),
            status: r.status.parse().unwrap_or(Status::Pending),
            error_code: r.error_code,
            error_message: r.error_message,
            twilio_sid: r.twilio_sid,
            client_id: r.client_id,
            agent_id: r.agent_id.map(Id),
            segments: r.segments,
            created_at: r.created_at,
            updated_at: r.updated_at,
            seq: r.seq,
        }
    }
}

/// A conversation row, with its last message's columns (all null when it has none).
#[derive(sqlx::FromRow)]
struct ConversationRow {
    c_id: i64,
    our_number: String,
    contact_phone: String,
    contact_name: Option<String>,
    opted_out: bool,
    unread_count: i64,
    c_updated_at: DateTime<Utc>,
    activity: i64,
    #[sqlx(flatten)]
    last: LastMessageRow,
}

#[derive(sqlx::FromRow)]
struct LastMessageRow {
    id: Option<i64>,
    conversation_id: Option<i64>,
    direction: Option<String>,
    from_number: Option<String>,
    to_number: Option<String>,
    body: Option<String>,
    media: Option<String>,
    status: Option<String>,
    error_code: Option<i64>,
    error_message: Option<String>,
    twilio_sid: Option<String>,
    client_id: Option<String>,
    agent_id: Option<i64>,
    segments: Option<i64>,
    created_at: Option<DateTime<Utc>>,
    updated_at: Option<DateTime<Utc>>,
    seq: Option<i64>,
}

impl LastMessageRow {
    fn into_message(self) -> Option<Message> {
        Some(
            MessageRow {
                id: self.id?,
                conversation_id: self.conversation_id?,
                direction: self.direction?,
                from_number: self.from_number?,
                to_number: self.to_number?,
                body: self.body?,
                media: self.media?,
                status: self.status?,
                error_code: self.error_code,
                error_message: self.error_message,
                twilio_sid: self.twilio_sid,
                client_id: self.client_id,
                agent_id: self.agent_id,
                segments: self.segments?,
                created_at: self.created_at?,
                updated_at: self.updated_at?,
                seq: self.seq?,
            }
            .into(),
        )
    }
}

impl ConversationRow {
    fn into_conversation(self) -> (Conversation, i64) {
        let activity = self.activity;
        (
            Conversation {
                id: Id(self.c_id),
                our_number: self.our_number,
                contact: crate::model::Contact {
                    phone: self.contact_phone,
                    name: self.contact_name,
                    opted_out: self.opted_out,
                },
                last_message: self.last.into_message(),
                unread_count: self.unread_count,
                updated_at: self.c_updated_at,
            },
            activity,
        )
    }
}

#[derive(sqlx::FromRow)]
struct AgentRow {
    id: i64,
    email: String,
    name: String,
    password_hash: String,
    numbers: Option<String>,
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    #[sqlx(flatten)]
    agent: AgentRow,
    expires_at: DateTime<Utc>,
}

impl AgentRow {
    fn into_agent(self) -> (Agent, String) {
        let mut numbers: Vec<String> = self
            .numbers
            .unwrap_or_default()
            .split(',')
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect();
        numbers.sort();
        (
            Agent {
                id: Id(self.id),
                email: self.email,
                name: self.name,
                numbers,
            },
            self.password_hash,
        )
    }
}

/// The readable text stored beside a Twilio error code.
fn error_text(code: Option<i64>) -> Option<String> {
    code.map(|c| describe_error(c).to_owned())
}
