//! Inbound messages, stored by group commit. One writer task per store takes every message
//! waiting (up to [`MAX_BATCH`]), writes them in one transaction and commits once, then
//! answers each: a caller hears that its message is stored only once it is committed. While a
//! batch commits the next one queues, so under load batches grow by themselves, and a lone
//! message is written at once. A batch waits ([`GATHER`]) only under load: when it holds
//! several webhooks, some are on their way to the writer, or (on PostgreSQL) they have lately
//! come less than [`BUSY_GAP`] apart, as PostgreSQL's `commit_delay` waits only when `commit_siblings`
//! transactions are active (docs/performance.md, "The write path").
//!
//! A batch whose write fails is rolled back and its messages are written again one by one,
//! each in its own transaction, so a message the database refuses fails alone. When the
//! database is unavailable, every message of the batch fails at once instead (no use asking it
//! again for each).
//!
//! PostgreSQL writes a batch in one round trip: one statement, its own transaction, calls
//! `store_inbound` (migration 0008) for each message. SQLite runs the statements in process,
//! one message after the other, in the batch's transaction.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sqlx::Postgres;
use sqlx::pool::PoolConnection;
use tokio::sync::{mpsc, oneshot};

use super::db::{MAX_CHANGES, Pool, Tx, new_seq, on_tx};
use super::reads::audience;
use super::rows::{MessageRow, assignee, returning_columns};
use super::{Audience, MessageChange, MessageEvent, NewInbound, Store, StoreError, StoreResult};
use crate::model::{
    AgentId, Contact, Conversation, ConversationId, ConversationStatus, Message, MessageId, Status,
    now,
};
use crate::sms::OptChange;

/// The most messages one transaction writes: each takes one of its 255 `seq`s (`db.rs`), and
/// a bigger batch would keep the first of them waiting longer for little gain.
pub(super) const MAX_BATCH: usize = 64;
const _: () = assert!(MAX_BATCH as i64 <= MAX_CHANGES);

type Answer = StoreResult<Option<MessageChange>>;

struct Pending {
    msg: NewInbound,
    reply: oneshot::Sender<Answer>,
    /// When it was handed to the writer.
    at: Instant,
}

/// The way to the writer task; the task ends when the store is dropped.
pub(super) struct InboundWriter {
    queue: mpsc::Sender<Pending>,
    /// Webhooks on their way to the queue: [`InboundArrival`]s alive.
    arriving: Arc<AtomicUsize>,
}

impl InboundWriter {
    pub(super) fn start(pool: Pool) -> Self {
        let (queue, rx) = mpsc::channel(MAX_BATCH * 16);
        let arriving = Arc::new(AtomicUsize::new(0));
        tokio::spawn(run(pool, rx, arriving.clone()));
        Self { queue, arriving }
    }
}

/// An inbound message on its way to the writer, from the moment its webhook is read until
/// it is queued ([`Store::insert_inbound`]) or given up: while one is, a batch about to be
/// written waits for it.
pub struct InboundArrival(Arc<AtomicUsize>);

impl Drop for InboundArrival {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Release);
    }
}

impl Store {
    /// Tells the writer that an inbound message is coming.
    pub fn inbound_arrival(&self) -> InboundArrival {
        self.inbound.arriving.fetch_add(1, Ordering::Release);
        InboundArrival(self.inbound.arriving.clone())
    }

    /// Stores an inbound message once its transaction commits; `None` when this `MessageSid`
    /// was stored before.
    #[tracing::instrument(skip_all, err)]
    pub async fn insert_inbound(
        &self,
        msg: NewInbound,
        arrival: InboundArrival,
    ) -> StoreResult<Option<MessageChange>> {
        let (reply, answer) = oneshot::channel();
        self.inbound
            .queue
            .send(Pending {
                msg,
                reply,
                at: Instant::now(),
            })
            .await
            .map_err(|_| writer_gone())?;
        drop(arrival);
        answer.await.map_err(|_| writer_gone())?
    }
}

fn writer_gone() -> StoreError {
    StoreError::Other(sqlx::Error::PoolClosed)
}

/// How long a batch formed under load waits for more, from its oldest message's arrival.
/// Under load (several webhooks queued while the last batch committed, some still on their
/// way, or a steady stream of them) waiting shares commits, which cost more than a message's
/// rows on PostgreSQL (its WAL flush, the round trip); a lone webhook is written at once, as
/// waiting for arrivals that may not come would add the whole wait to it
/// (docs/performance.md, "The write path").
const GATHER: Duration = Duration::from_millis(2);
/// A batch this big already shares its commit well: written without waiting.
const SMALL_BATCH: usize = 8;

/// Webhooks that come at least this often, on average, are load too on PostgreSQL: each
/// would otherwise commit alone just before the next arrives (at 500/s, 2 ms apart, one commit each cost
/// 17 % more CPU per webhook than sharing them), so a batch waits for the next one.
const BUSY_GAP: Duration = Duration::from_millis(3);

/// How far apart webhooks have been reaching the writer lately: a moving average of the
/// gaps, so that one webhook arriving early or late does not switch waiting on or off.
struct Pace {
    last: Option<Instant>,
    gap: Duration,
}

impl Pace {
    fn new() -> Self {
        Self {
            last: None,
            gap: Duration::MAX,
        }
    }

    fn arrived(&mut self, at: Instant) {
        if let Some(last) = self.last {
            let gap = at.saturating_duration_since(last);
            self.gap = if self.gap == Duration::MAX {
                gap
            } else {
                (self.gap * 7 + gap) / 8
            };
        }
        self.last = Some(self.last.map_or(at, |last| last.max(at)));
    }

    fn busy(&self) -> bool {
        self.gap <= BUSY_GAP
    }
}

async fn run(pool: Pool, mut rx: mpsc::Receiver<Pending>, arriving: Arc<AtomicUsize>) {
    // A SQLite commit flushes nothing (`synchronous = NORMAL` in WAL) and crosses no network:
    // waiting in a steady stream saved it little CPU for 3 ms more on every webhook
    // (docs/performance.md, "The write path").
    let paced = matches!(pool, Pool::Postgres(_));
    let mut writer = Writer { pool, held: None };
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut pace = Pace::new();
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let steady = paced && pace.busy();
        if batch.len() > 1 || steady || arriving.load(Ordering::Acquire) > 0 {
            let until = (batch[0].at + GATHER).into();
            while batch.len() < SMALL_BATCH {
                let room = MAX_BATCH - batch.len();
                match tokio::time::timeout_at(until, rx.recv_many(&mut batch, room)).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        }
        for pending in &batch {
            pace.arrived(pending.at);
        }
        writer.write_batch(std::mem::take(&mut batch)).await;
    }
}

struct Writer {
    pool: Pool,
    /// On PostgreSQL, the connection the writer keeps between batches: taking one from the
    /// pool would cost a round trip of its own (the pool tests it first). Let go after an
    /// error, so that a broken one is not used again.
    held: Option<PoolConnection<Postgres>>,
}

impl Writer {
    /// Writes `batch` in one transaction, or else each of its messages in its own.
    async fn write_batch(&mut self, mut batch: Vec<Pending>) {
        // The same order of conversation locks in every batch: two instances' batches cannot
        // deadlock on each other's conversations.
        batch.sort_by(|a, b| (&a.msg.to, &a.msg.from).cmp(&(&b.msg.to, &b.msg.from)));
        let msgs: Vec<&NewInbound> = batch.iter().map(|p| &p.msg).collect();
        let error = match self.write(&msgs).await {
            Ok(answers) => {
                for (pending, answer) in batch.into_iter().zip(answers) {
                    let _ = pending.reply.send(Ok(answer));
                }
                return;
            }
            Err(e) => e,
        };
        if batch.len() == 1 || matches!(error, StoreError::Unavailable(_)) {
            let text = error.to_string();
            let mut error = Some(error);
            for pending in batch {
                let error = error.take().unwrap_or_else(|| {
                    StoreError::Unavailable(sqlx::Error::Io(std::io::Error::other(text.clone())))
                });
                let _ = pending.reply.send(Err(error));
            }
            return;
        }
        tracing::warn!(
            error = %error,
            messages = batch.len(),
            "a batch of inbound messages failed; writing them one by one"
        );
        for pending in batch {
            let answer = self.write(&[&pending.msg]).await.map(|mut a| a.remove(0));
            let _ = pending.reply.send(answer);
        }
    }

    /// Writes `msgs` in one transaction: for each, what was stored, in the same order.
    async fn write(&mut self, msgs: &[&NewInbound]) -> StoreResult<Vec<Option<MessageChange>>> {
        let t = now();
        let pool = match &self.pool {
            Pool::Postgres(pool) => pool,
            Pool::Sqlite(_) => {
                let mut tx = self.pool.begin_write().await?;
                let mut answers = Vec::with_capacity(msgs.len());
                for msg in msgs {
                    answers.push(write_one(&mut tx, msg, t).await?);
                }
                tx.commit().await?;
                return Ok(answers);
            }
        };
        let conn = match &mut self.held {
            Some(conn) => conn,
            None => self.held.insert(pool.acquire().await?),
        };
        let written = write_postgres(conn, msgs, t).await;
        if written.is_err() {
            self.held = None;
        }
        written
    }
}

/// What an inbound message left of its conversation's own state.
#[derive(sqlx::FromRow)]
struct ConversationState {
    contact_name: Option<String>,
    opted_out: bool,
    unread_count: i64,
    c_status: ConversationStatus,
    snoozed_until: Option<chrono::DateTime<chrono::Utc>>,
    assignee_id: Option<AgentId>,
    assignee_name: Option<String>,
    version: i64,
}

/// What `store_inbound` answers for a message it stored.
#[derive(sqlx::FromRow)]
struct Stored {
    #[sqlx(flatten)]
    row: MessageRow,
    #[sqlx(flatten)]
    conversation: ConversationState,
    audience: Vec<AgentId>,
    /// The message's place in the batch, from 1.
    nth: i64,
}

/// The batch in one statement, which is its own transaction: PostgreSQL commits it before it
/// reports the statement done (`ReadyForQuery`), and `fetch_all` reads up to that report, so
/// an answer here is a committed write. The `n`th message is the transaction's `n`th change
/// (`db.rs`: its `seq` is `seq_base` + n).
async fn write_postgres(
    db: &mut sqlx::PgConnection,
    msgs: &[&NewInbound],
    t: chrono::DateTime<chrono::Utc>,
) -> StoreResult<Vec<Option<MessageChange>>> {
    let nths: Vec<i64> = (1..=msgs.len() as i64).collect();
    let column = |f: fn(&NewInbound) -> &str| msgs.iter().map(|m| f(m)).collect::<Vec<_>>();
    let media: Vec<String> = msgs.iter().map(|m| media_json(m)).collect();
    let stored: Vec<Stored> = sqlx::query_as(
        "SELECT s.*, i.nth FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], \
           $5::text[], $6::bigint[], $7::boolean[], $8::bigint[]) \
           AS i(to_number, from_number, body, media, sid, segments, opted_out, nth) \
         CROSS JOIN LATERAL store_inbound(i.to_number, i.from_number, i.body, i.media, i.sid, \
           i.segments, i.opted_out, i.nth, $9, $10, $11) AS s",
    )
    .bind(column(|m| &m.to))
    .bind(column(|m| &m.from))
    .bind(column(|m| &m.body))
    .bind(&media)
    .bind(column(|m| &m.twilio_sid))
    .bind(msgs.iter().map(|m| m.segments).collect::<Vec<_>>())
    .bind(msgs.iter().map(|m| opted_out(m)).collect::<Vec<_>>())
    .bind(&nths)
    .bind(Status::Received)
    .bind(Status::Received.rank())
    .bind(t)
    .fetch_all(&mut *db)
    .await?;
    let mut answers: Vec<Option<MessageChange>> = msgs.iter().map(|_| None).collect();
    for s in stored {
        let i = nths.iter().position(|n| *n == s.nth).ok_or_else(|| {
            StoreError::Other(sqlx::Error::Protocol("store_inbound: unknown row".into()))
        })?;
        answers[i] = Some(change(
            msgs[i],
            s.row.into(),
            s.conversation,
            Audience::new(s.audience),
            t,
        ));
    }
    Ok(answers)
}

fn media_json(msg: &NewInbound) -> String {
    serde_json::to_string(&msg.media).unwrap_or_else(|_| "[]".into())
}

/// The opt-out flag the message sets, if it changes it.
fn opted_out(msg: &NewInbound) -> Option<bool> {
    msg.opt_change.map(|c| c == OptChange::OptOut)
}

/// What the write of `msg` changed, as [`crate::events`] publishes it.
fn change(
    msg: &NewInbound,
    message: Message,
    state: ConversationState,
    audience: Audience,
    t: chrono::DateTime<chrono::Utc>,
) -> MessageChange {
    let conversation = Conversation {
        id: message.conversation_id,
        our_number: msg.to.clone(),
        contact: Contact {
            phone: msg.from.clone(),
            name: state.contact_name,
            opted_out: state.opted_out,
        },
        last_message: Some(message.clone()),
        unread_count: state.unread_count,
        updated_at: t,
        status: state.c_status,
        snoozed_until: state.snoozed_until,
        assignee: assignee(state.assignee_id, state.assignee_name),
        version: state.version,
    };
    MessageChange {
        event: MessageEvent::New,
        message,
        conversation: Some(conversation),
        audience,
    }
}

/// One message, statement by statement, in `tx` (what `store_inbound` does on PostgreSQL).
async fn write_one(
    tx: &mut Tx,
    msg: &NewInbound,
    t: chrono::DateTime<chrono::Utc>,
) -> StoreResult<Option<MessageChange>> {
    let known: Option<MessageId> = on_tx!(&mut *tx, |db| {
        sqlx::query_scalar("SELECT id FROM messages WHERE twilio_sid = $1")
            .bind(&msg.twilio_sid)
            .fetch_optional(db)
            .await
    })?;
    if known.is_some() {
        return Ok(None);
    }
    let nth = tx.change()?;
    let conversation_id: ConversationId = on_tx!(&mut *tx, |db| {
        sqlx::query_scalar(concat!(
            "INSERT INTO conversations \
               (our_number, contact_phone, activity, changed, created_at, updated_at) \
             VALUES ($1, $2, ",
            new_seq!("3"),
            ", ",
            new_seq!("3"),
            ", $4, $4) \
             ON CONFLICT (our_number, contact_phone) \
               DO UPDATE SET updated_at = excluded.updated_at \
             RETURNING id"
        ))
        .bind(&msg.to)
        .bind(&msg.from)
        .bind(nth)
        .bind(t)
        .fetch_one(db)
        .await
    })?;
    let row: Option<MessageRow> = on_tx!(&mut *tx, |db| {
        sqlx::query_as(concat!(
            "INSERT INTO messages (conversation_id, direction, from_number, to_number, \
               body, media, status, status_rank, twilio_sid, segments, created_at, \
               updated_at, seq) \
             VALUES ($1, 'inbound', $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, ",
            new_seq!("11"),
            ") ON CONFLICT DO NOTHING RETURNING ",
            returning_columns!()
        ))
        .bind(conversation_id)
        .bind(&msg.from)
        .bind(&msg.to)
        .bind(&msg.body)
        .bind(media_json(msg))
        .bind(Status::Received)
        .bind(Status::Received.rank())
        .bind(&msg.twilio_sid)
        .bind(msg.segments)
        .bind(t)
        .bind(nth)
        .fetch_optional(db)
        .await
    })?;
    let Some(row) = row else { return Ok(None) };
    let conversation: ConversationState = on_tx!(&mut *tx, |db| {
        // An inbound message reopens a closed or snoozed conversation in the same write.
        sqlx::query_as(
            "UPDATE conversations SET unread_count = unread_count + 1, \
               last_message_id = $2, activity = $3, changed = $3, version = version + 1, \
               updated_at = $4, opted_out = COALESCE($5, opted_out), \
               status = 'open', snoozed_until = NULL \
             WHERE id = $1 RETURNING contact_name, opted_out, unread_count, \
               status AS c_status, snoozed_until, assignee_id, \
               (SELECT name FROM agents WHERE agents.id = assignee_id) AS assignee_name, version",
        )
        .bind(conversation_id)
        .bind(row.id)
        .bind(row.seq)
        .bind(t)
        .bind(opted_out(msg))
        .fetch_one(db)
        .await
    })?;
    let audience = audience(tx, conversation_id).await?;
    Ok(Some(change(msg, row.into(), conversation, audience, t)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paced(gaps_ms: &[u64]) -> Pace {
        let mut pace = Pace::new();
        let mut at = Instant::now();
        pace.arrived(at);
        for gap in gaps_ms {
            at += Duration::from_millis(*gap);
            pace.arrived(at);
        }
        pace
    }

    #[test]
    fn webhooks_a_few_milliseconds_apart_are_load() {
        assert!(!Pace::new().busy(), "a first webhook commits at once");
        assert!(!paced(&[]).busy());
        assert!(paced(&[2; 20]).busy(), "500/s");
        assert!(!paced(&[10; 20]).busy(), "100/s");
        // One early webhook among slow ones, or one pause among quick ones, changes nothing.
        assert!(!paced(&[10, 10, 10, 10, 1, 10]).busy());
        assert!(paced(&[2, 2, 2, 2, 2, 2, 2, 2, 6, 2]).busy());
        // A rate that falls stops the waiting within a few webhooks.
        assert!(!paced(&[2, 2, 2, 2, 2, 2, 2, 2, 20, 20, 20]).busy());
    }
}
