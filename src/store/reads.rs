//! Reading: what an agent may see, what changed since a cursor, and who hears about a
//! conversation.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::db::{Pool, Tx, on_pool, on_tx};
use super::rows::{
    ConversationRow, ListedRow, MessageRow, conversation_page, conversation_select,
    message_columns, visible_to,
};
use super::{
    AssigneeFilter, Audience, ConversationList, ListFilter, MessageChange, MessageEvent, Page,
    Store, StoreResult,
};
use crate::domain::ClientId;
use crate::model::{AgentId, Conversation, ConversationId, Message, MessageId};

/// How long [`Store::settled_up_to`] waits for the writes running when it is called. Ours
/// take milliseconds; one held open longer (a `psql` session's, or ours stalled) leaves
/// `sync` answering up to it, as [`Store::visible_up_to`] does.
const SETTLE_WAIT: Duration = Duration::from_secs(1);

/// A page of the conversations assigned to agent `$4` among those agent `$1` sees: one walk
/// of the index by assignee, whatever their numbers.
const ASSIGNED: &str = concat!(
    conversation_select!("(SELECT up_to FROM seq_visible) AS visible_up_to, "),
    "WHERE c.assignee_id = $4 AND c.activity < $2 AND",
    visible_to!("1"),
    "ORDER BY c.activity DESC, c.id DESC LIMIT $3"
);

/// The same, of status `$4`, assigned to `$5`.
const ASSIGNED_WITH_STATUS: &str = concat!(
    conversation_select!("(SELECT up_to FROM seq_visible) AS visible_up_to, "),
    "WHERE c.assignee_id = $5 AND c.status = $4 AND c.activity < $2 AND",
    visible_to!("1"),
    "ORDER BY c.activity DESC, c.id DESC LIMIT $3"
);

/// The agents who hold conversation `$1`'s number: everyone who hears about it.
const AUDIENCE: &str = "SELECT an.agent_id FROM conversations c \
     JOIN agent_numbers an ON an.number = c.our_number \
     WHERE c.id = $1 ORDER BY an.agent_id";

/// The same agents as one column of a write's `RETURNING` on `messages`, comma-separated
/// (read by [`Audience::parse`]), so the write reads its audience without a statement of its own.
macro_rules! audience_column {
    () => {
        "(SELECT string_agg(CAST(an.agent_id AS TEXT), ',') FROM conversations c \
           JOIN agent_numbers an ON an.number = c.our_number \
           WHERE c.id = conversation_id) AS audience"
    };
}

pub(super) use audience_column;

impl Store {
    /// A page of `agent`'s conversations that `filter` keeps, most recently active first,
    /// and the next cursor.
    #[tracing::instrument(skip_all, err)]
    pub async fn list_conversations(
        &self,
        agent: AgentId,
        filter: ListFilter,
        page: Page,
    ) -> StoreResult<ConversationList> {
        let per_number = &self.reader.dialect().list_conversations;
        let (list, assignee) = match filter.assignee {
            AssigneeFilter::Any => (per_number[usize::from(filter.status.is_some())], None),
            AssigneeFilter::Nobody => (per_number[2 + usize::from(filter.status.is_some())], None),
            AssigneeFilter::Agent(a) if filter.status.is_some() => (ASSIGNED_WITH_STATUS, Some(a)),
            AssigneeFilter::Agent(a) => (ASSIGNED, Some(a)),
        };
        let rows: Vec<ListedRow> = on_pool!(&self.reader, |db| {
            let mut query = sqlx::query_as(list)
                .bind(agent)
                .bind(page.cursor.unwrap_or(i64::MAX))
                .bind(page.limit);
            if let Some(status) = filter.status {
                query = query.bind(status);
            }
            if let Some(assignee) = assignee {
                query = query.bind(assignee);
            }
            query.fetch_all(db).await
        })?;
        let full = rows.len() as i64 == page.limit;
        // Read in the list's own snapshot: every change up to it is in what the list shows.
        // With no conversation at all, everything of the agent's is newer than the list.
        let sync_from = match rows.first() {
            Some(r) => r.visible_up_to,
            None if filter == ListFilter::ALL => 0,
            None => self.visible_up_to().await?,
        };
        Ok(conversation_page(rows, full, sync_from))
    }

    /// The conversation if `agent` may see it.
    #[tracing::instrument(skip_all, err)]
    pub async fn conversation(
        &self,
        agent: AgentId,
        id: ConversationId,
    ) -> StoreResult<Option<Conversation>> {
        let row: Option<ConversationRow> = on_pool!(&self.reader, |db| {
            sqlx::query_as(concat!(
                conversation_select!(),
                "WHERE c.id = $2 AND",
                visible_to!("1")
            ))
            .bind(agent)
            .bind(id)
            .fetch_optional(db)
            .await
        })?;
        Ok(row.map(ConversationRow::into_conversation))
    }

    /// A page of the conversation's messages, newest first, and the next cursor.
    #[tracing::instrument(skip_all, err)]
    pub async fn list_messages(
        &self,
        conversation: ConversationId,
        page: Page,
    ) -> StoreResult<(Vec<Message>, Option<i64>)> {
        let rows: Vec<MessageRow> = on_pool!(&self.reader, |db| {
            sqlx::query_as(concat!(
                "SELECT ",
                message_columns!(),
                " FROM messages m WHERE m.conversation_id = $1 AND m.id < $2 \
                 ORDER BY m.id DESC LIMIT $3"
            ))
            .bind(conversation)
            .bind(page.cursor.unwrap_or(i64::MAX))
            .bind(page.limit)
            .fetch_all(db)
            .await
        })?;
        let next = (rows.len() as i64 == page.limit)
            .then(|| rows.last().map(|m| m.id.get()))
            .flatten();
        Ok((rows.into_iter().map(Into::into).collect(), next))
    }

    /// The message if `agent` may see it.
    #[tracing::instrument(skip_all, err)]
    pub async fn message(&self, agent: AgentId, id: MessageId) -> StoreResult<Option<Message>> {
        let row: Option<MessageRow> = on_pool!(&self.reader, |db| {
            sqlx::query_as(concat!(
                "SELECT ",
                message_columns!(),
                " FROM messages m JOIN conversations c ON c.id = m.conversation_id \
                 WHERE m.id = $2 AND",
                visible_to!("1")
            ))
            .bind(agent)
            .bind(id)
            .fetch_optional(db)
            .await
        })?;
        Ok(row.map(Into::into))
    }

    /// The highest `seq` that `sync` may show now: no change can still commit at or below
    /// it, so whatever is read after this holds every change up to it.
    #[tracing::instrument(skip_all, err)]
    pub async fn visible_up_to(&self) -> StoreResult<i64> {
        Ok(on_pool!(&self.reader, |db| {
            sqlx::query_scalar("SELECT up_to FROM seq_visible")
                .fetch_one(db)
                .await
        })?)
    }

    /// The highest `seq` that `sync` may show once the writes running now have ended, waiting
    /// for them (at most [`SETTLE_WAIT`]): every change committed before this call is at or
    /// below it. [`Store::visible_up_to`] alone stops below a write still running, and so
    /// below every change committed after that write began: a page whose socket joined its
    /// rooms after such a change was announced would hear of it neither live nor from this
    /// `sync`, and has no reason to call another. On SQLite nothing commits out of order.
    #[tracing::instrument(skip_all, err)]
    pub async fn settled_up_to(&self) -> StoreResult<i64> {
        let Pool::Postgres(pool) = &self.reader else {
            return self.visible_up_to().await;
        };
        // Every transaction that committed before now has an id below the snapshot's xmax.
        let (mut up_to, settled): (i64, i64) = sqlx::query_as(
            "SELECT up_to, (SELECT seq_offset FROM seq_origin) \
               + (pg_snapshot_xmax(pg_current_snapshot())::text::bigint << 8) \
             FROM seq_visible",
        )
        .fetch_one(pool)
        .await?;
        let deadline = Instant::now() + SETTLE_WAIT;
        let mut pause = Duration::from_millis(1);
        while up_to < settled {
            if Instant::now() + pause > deadline {
                tracing::debug!(
                    up_to,
                    settled,
                    "sync: a write has been running for long; answering up to it"
                );
                break;
            }
            let slept = Instant::now();
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(16));
            up_to = self.watermark_since(pool, slept).await?;
        }
        Ok(up_to)
    }

    /// The watermark, read at `since` or later. One read at a time, shared by every `sync`
    /// waiting: a reconnecting crowd's waits cost one statement at a time, not one each.
    async fn watermark_since(&self, pool: &sqlx::PgPool, since: Instant) -> StoreResult<i64> {
        let mut last = self.watermark.lock().await;
        if let Some((at, up_to)) = *last
            && at >= since
        {
            return Ok(up_to);
        }
        let at = Instant::now();
        let up_to = sqlx::query_scalar("SELECT up_to FROM seq_visible")
            .fetch_one(pool)
            .await?;
        *last = Some((at, up_to));
        Ok(up_to)
    }

    /// Messages of `agent` changed after `since` and at most `up_to` (from
    /// [`Store::visible_up_to`]), in change order.
    #[tracing::instrument(skip_all, err)]
    pub async fn changes(
        &self,
        agent: AgentId,
        since: i64,
        up_to: i64,
        limit: i64,
    ) -> StoreResult<Vec<Message>> {
        let rows: Vec<MessageRow> = on_pool!(&self.reader, |db| {
            sqlx::query_as(concat!(
                "SELECT ",
                message_columns!(),
                " FROM messages m JOIN conversations c ON c.id = m.conversation_id \
                 WHERE m.seq > $2 AND m.seq <= $4 AND",
                visible_to!("1"),
                "ORDER BY m.seq LIMIT $3"
            ))
            .bind(agent)
            .bind(since)
            .bind(limit)
            .bind(up_to)
            .fetch_all(db)
            .await
        })?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// `agent`'s conversations whose own state changed after `since` and at most `up_to`, in
    /// change order, each with the `seq` of its last change.
    #[tracing::instrument(skip_all, err)]
    pub async fn conversation_changes(
        &self,
        agent: AgentId,
        since: i64,
        up_to: i64,
        limit: i64,
    ) -> StoreResult<Vec<(Conversation, i64)>> {
        let statement = self.reader.dialect().conversation_changes;
        let rows: Vec<ConversationRow> = on_pool!(&self.reader, |db| {
            sqlx::query_as(statement)
                .bind(agent)
                .bind(since)
                .bind(limit)
                .bind(up_to)
                .fetch_all(db)
                .await
        })?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let changed = r.c_changed;
                (r.into_conversation(), changed)
            })
            .collect())
    }

    /// Who hears about the conversation now (writes read it in their own transaction).
    #[tracing::instrument(skip_all, err)]
    pub async fn audience(&self, conversation: ConversationId) -> StoreResult<Audience> {
        let agents: Vec<AgentId> = on_pool!(&self.reader, |db| {
            sqlx::query_scalar(AUDIENCE)
                .bind(conversation)
                .fetch_all(db)
                .await
        })?;
        Ok(Audience::new(agents))
    }

    /// The inbound message Twilio sent as `sid`, as a new message for its conversation's
    /// audience now, if it was stored before `before`: what a webhook Twilio retried well
    /// after its first delivery announces again (src/webhooks.rs). `None` for a younger one,
    /// without reading more than its row's time.
    #[tracing::instrument(skip_all, err)]
    pub async fn inbound_stored_before(
        &self,
        sid: &str,
        before: DateTime<Utc>,
    ) -> StoreResult<Option<MessageChange>> {
        let mut tx = self.reader.begin().await?;
        let stored: Option<(MessageId, DateTime<Utc>)> = on_tx!(&mut tx, |db| {
            sqlx::query_as(
                "SELECT id, created_at FROM messages \
                 WHERE twilio_sid = $1 AND direction = 'inbound'",
            )
            .bind(sid)
            .fetch_optional(db)
            .await
        })?;
        let Some((id, _)) = stored.filter(|(_, at)| *at < before) else {
            return Ok(None);
        };
        let message = message_by_id(&mut tx, id).await?;
        let conversation = conversation_by_id(&mut tx, message.conversation_id).await?;
        let audience = audience(&mut tx, message.conversation_id).await?;
        tx.commit().await?;
        Ok(Some(MessageChange {
            event: MessageEvent::New,
            message,
            conversation: Some(conversation),
            audience,
        }))
    }

    /// Whether one of our messages has this Twilio sid: recorded, or kept on its job after
    /// a `201` the worker could not record.
    #[tracing::instrument(skip_all, err)]
    pub async fn has_sid(&self, sid: &str) -> StoreResult<bool> {
        let found: Option<MessageId> = on_pool!(&self.reader, |db| {
            sqlx::query_scalar(
                "SELECT id FROM messages WHERE twilio_sid = $1 \
                 UNION ALL SELECT message_id FROM send_jobs WHERE twilio_sid = $1",
            )
            .bind(sid)
            .fetch_optional(db)
            .await
        })?;
        Ok(found.is_some())
    }
}

/// Who hears about the conversation, as of this transaction.
pub(super) async fn audience(tx: &mut Tx, conversation: ConversationId) -> StoreResult<Audience> {
    let agents: Vec<AgentId> = on_tx!(tx, |db| {
        sqlx::query_scalar(AUDIENCE)
            .bind(conversation)
            .fetch_all(db)
            .await
    })?;
    Ok(Audience::new(agents))
}

pub(super) async fn message_by_id(tx: &mut Tx, id: MessageId) -> StoreResult<Message> {
    let row: MessageRow = on_tx!(tx, |db| {
        sqlx::query_as(concat!(
            "SELECT ",
            message_columns!(),
            " FROM messages m WHERE m.id = $1"
        ))
        .bind(id)
        .fetch_one(db)
        .await
    })?;
    Ok(row.into())
}

pub(super) async fn conversation_by_id(
    tx: &mut Tx,
    id: ConversationId,
) -> StoreResult<Conversation> {
    let row: ConversationRow = on_tx!(tx, |db| {
        sqlx::query_as(concat!(conversation_select!(), "WHERE c.id = $1"))
            .bind(id)
            .fetch_one(db)
            .await
    })?;
    Ok(row.into_conversation())
}

/// A message stored before, with the failed message it retried, if it was a retry.
#[derive(sqlx::FromRow)]
pub(super) struct EarlierRow {
    #[sqlx(flatten)]
    pub row: MessageRow,
    pub retry_of: Option<MessageId>,
}

/// The message, a send or a note, that `agent` stored before with `client_id`: sends and
/// notes share one `clientId` space per agent, the unique `(agent_id, client_id)` of
/// `messages` (migrations/postgres/0001_init.sql), so both look there the same way.
pub(super) async fn earlier_with_client_id(
    tx: &mut Tx,
    agent: AgentId,
    client_id: &ClientId,
) -> StoreResult<Option<EarlierRow>> {
    Ok(on_tx!(tx, |db| {
        sqlx::query_as(concat!(
            "SELECT ",
            super::rows::message_columns!(),
            ", m.retry_of FROM messages m WHERE m.agent_id = $1 AND m.client_id = $2"
        ))
        .bind(agent)
        .bind(client_id.as_str())
        .fetch_optional(db)
        .await
    })?)
}
