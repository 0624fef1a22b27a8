//! The team inbox (docs/api.md, "The team inbox"): a conversation's status, snooze and
//! assignee, the views' counts, the agents one may assign to, notes, and the two rules that
//! change a conversation by themselves: a snooze that runs out, and an assignee who lost the
//! conversation's number or was disabled.
//!
//! Every change of a conversation's own state takes a `seq` as `changed` (so `sync` returns
//! it) and bumps its `version` under the row's lock (so its events keep the order of the
//! writes: `crate::events`).

use chrono::{DateTime, Utc};

use super::db::{Tx, new_seq, on_pool, on_tx};
use super::reads::{audience, conversation_by_id, earlier_with_client_id};
use super::rows::{MessageRow, returning_columns};
use super::{ConversationChange, MessageChange, MessageEvent, Store, StoreResult};
use crate::domain::{ClientId, ContactName, NoteBody};
use crate::model::{
    AgentId, Colleague, ConversationId, ConversationStatus, Direction, InboxCounts, Message,
    Status, now,
};

/// `changed` and `version` of a conversation whose own state changes, with the change's
/// number in its transaction as parameter `$n`.
macro_rules! touch {
    ($n:literal) => {
        concat!(
            "changed = ",
            $crate::store::db::new_seq!($n),
            ", version = version + 1"
        )
    };
}

pub(super) use touch;

/// Whether agent `$1` may be assigned conversation `$2`: enabled and holding its number. The
/// rows read are held (`$lock`, where writers are not serialised anyway) until the
/// transaction ends, so a disable or a number taken away either waits for the assignment,
/// or is seen by it; and the unassignment that comes with it then sees the assignment.
macro_rules! assignable {
    ($lock:literal) => {
        concat!(
            "SELECT a.id FROM agents a \
             JOIN agent_numbers an ON an.agent_id = a.id \
             JOIN conversations c ON c.our_number = an.number \
             WHERE a.id = $1 AND c.id = $2 AND NOT a.disabled",
            $lock
        )
    };
}

pub(super) use assignable;

/// Opens the snoozed conversations whose snooze ran out at `$1`, at most `$2` of them, as
/// change `$3`; their ids. Like every write of several conversations, it first takes their
/// locks (`$lock`, where writers are not serialised anyway) in (`our_number`,
/// `contact_phone`) order, the order of an inbound batch (`inbound.rs`): two such writes
/// cannot each hold a conversation the other waits for. The UPDATE then only meets rows it
/// holds, and its triggers lock nothing (`migrations/postgres/0017_count_changes.sql`).
macro_rules! wake_snoozed_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE conversations SET status = 'open', snoozed_until = NULL, updated_at = $1, ",
            $crate::store::inbox::touch!("3"),
            " WHERE id IN (SELECT c.id FROM conversations c WHERE c.id IN ( \
                 SELECT id FROM conversations WHERE status = 'snoozed' AND snoozed_until <= $1 \
                 ORDER BY snoozed_until LIMIT $2) \
               ORDER BY c.our_number, c.contact_phone",
            $lock,
            ") AND status = 'snoozed' AND snoozed_until <= $1 RETURNING id"
        )
    };
}

pub(super) use wake_snoozed_sql;

/// Unassigns agent `$1`'s conversations that they may no longer be assigned (all of them
/// once they are disabled, else those of the numbers they no longer hold) at `$2`, as change
/// `$3`; their ids. Locks as [`wake_snoozed_sql!`] does.
macro_rules! unassign_lost_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE conversations SET assignee_id = NULL, updated_at = $2, ",
            $crate::store::inbox::touch!("3"),
            " WHERE id IN (SELECT c.id FROM conversations c WHERE c.assignee_id = $1 AND ( \
                 EXISTS (SELECT 1 FROM agents WHERE id = $1 AND disabled) \
                 OR c.our_number NOT IN (SELECT number FROM agent_numbers WHERE agent_id = $1)) \
               ORDER BY c.our_number, c.contact_phone",
            $lock,
            ") AND assignee_id = $1 RETURNING id"
        )
    };
}

pub(super) use unassign_lost_sql;

/// What a `PATCH` of a conversation changes; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct ConversationEdit {
    /// `Some(None)` clears the contact's name.
    pub contact_name: Option<Option<ContactName>>,
    pub status: Option<StatusEdit>,
    /// `Some(None)` unassigns.
    pub assignee: Option<Option<AgentId>>,
}

/// A conversation's new status, with the snooze's end when it is snoozed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusEdit {
    Open,
    Closed,
    Snoozed(DateTime<Utc>),
}

impl StatusEdit {
    fn columns(self) -> (ConversationStatus, Option<DateTime<Utc>>) {
        match self {
            Self::Open => (ConversationStatus::Open, None),
            Self::Closed => (ConversationStatus::Closed, None),
            Self::Snoozed(until) => (ConversationStatus::Snoozed, Some(until)),
        }
    }
}

/// How a [`ConversationEdit`] went.
#[derive(Clone, Debug)]
pub enum EditOutcome {
    Edited(Box<ConversationChange>),
    /// The assignee is not an enabled agent who holds the conversation's number.
    AssigneeInvalid,
}

/// A note between agents, as `POST …/notes` gives it.
#[derive(Clone, Debug)]
pub struct NewNote {
    pub conversation_id: ConversationId,
    pub agent_id: AgentId,
    pub client_id: ClientId,
    pub body: NoteBody,
}

#[derive(Clone, Debug)]
pub enum NoteOutcome {
    Created(Box<MessageChange>),
    /// The same `clientId` made this note before.
    Existing(Box<Message>),
    /// The same `clientId` was used for something else.
    ClientIdReused,
}

/// How many of an agent's conversations have this status and assignee.
#[derive(sqlx::FromRow)]
struct CountRow {
    status: ConversationStatus,
    assignee_id: Option<AgentId>,
    n: i64,
}

impl Store {
    /// Applies `edit` to the conversation (which the caller may see), for everyone who holds
    /// its number.
    #[tracing::instrument(skip_all, err)]
    pub async fn edit_conversation(
        &self,
        conversation: ConversationId,
        edit: &ConversationEdit,
    ) -> StoreResult<EditOutcome> {
        let mut tx = self.writer.begin_write().await?;
        if let Some(Some(agent)) = edit.assignee
            && !may_be_assigned(&mut tx, agent, conversation).await?
        {
            return Ok(EditOutcome::AssigneeInvalid);
        }
        let (status, snoozed_until) = edit.status.map(StatusEdit::columns).unzip();
        let nth = tx.change()?;
        on_tx!(&mut tx, |db| {
            sqlx::query(concat!(
                "UPDATE conversations SET \
                   contact_name = CASE WHEN $2 THEN $3 ELSE contact_name END, \
                   status = COALESCE($4, status), \
                   snoozed_until = CASE WHEN $4 IS NULL THEN snoozed_until ELSE $5 END, \
                   assignee_id = CASE WHEN $6 THEN $7 ELSE assignee_id END, \
                   updated_at = $8, ",
                touch!("9"),
                " WHERE id = $1"
            ))
            .bind(conversation)
            .bind(edit.contact_name.is_some())
            .bind(
                edit.contact_name
                    .as_ref()
                    .and_then(|n| n.as_ref().map(ContactName::as_str)),
            )
            .bind(status)
            .bind(snoozed_until.flatten())
            .bind(edit.assignee.is_some())
            .bind(edit.assignee.flatten())
            .bind(now())
            .bind(nth)
            .execute(db)
            .await
            .map(|r| r.rows_affected())
        })?;
        let edited = conversation_by_id(&mut tx, conversation).await?;
        let audience = audience(&mut tx, conversation).await?;
        tx.commit().await?;
        Ok(EditOutcome::Edited(Box::new(ConversationChange {
            conversation: edited,
            audience,
        })))
    }

    /// Opens the snoozed conversations whose snooze ran out, at most `limit` of them. One
    /// statement flips them and names them: of several instances doing this at once, each
    /// conversation is flipped, and so announced, by one.
    #[tracing::instrument(skip_all, err)]
    pub async fn wake_snoozed(&self, limit: i64) -> StoreResult<Vec<ConversationChange>> {
        let at = now();
        let mut tx = self.writer.begin_write().await?;
        let nth = tx.change()?;
        let wake = tx.dialect().wake_snoozed;
        let woken: Vec<ConversationId> = on_tx!(&mut tx, |db| {
            sqlx::query_scalar(wake)
                .bind(at)
                .bind(limit)
                .bind(nth)
                .fetch_all(db)
                .await
        })?;
        let changes = changes_of(&mut tx, &woken).await?;
        tx.commit().await?;
        Ok(changes)
    }

    /// How many of `agent`'s conversations each view holds: the sum of the counters of the
    /// agent's numbers by status and assignee, which triggers keep in every write's transaction
    /// (`migrations/*/0016_inbox_counts.sql`), and of the changes to them not folded yet
    /// (`migrations/postgres/0017_count_changes.sql`), read in one snapshot.
    #[tracing::instrument(skip_all, err)]
    pub async fn inbox_counts(&self, agent: AgentId) -> StoreResult<InboxCounts> {
        let groups: Vec<CountRow> = on_pool!(&self.reader, |db| {
            sqlx::query_as(
                "SELECT cc.status, NULLIF(cc.assignee_key, 0) AS assignee_id, \
                 CAST(SUM(cc.n) AS BIGINT) AS n FROM agent_numbers an \
                 JOIN (SELECT our_number, status, assignee_key, n FROM conversation_counts \
                   UNION ALL SELECT our_number, status, assignee_key, n \
                   FROM conversation_count_changes) cc ON cc.our_number = an.number \
                 WHERE an.agent_id = $1 GROUP BY cc.status, cc.assignee_key",
            )
            .bind(agent)
            .fetch_all(db)
            .await
        })?;
        let mut counts = InboxCounts::default();
        for CountRow {
            status,
            assignee_id,
            n,
        } in groups
        {
            match status {
                ConversationStatus::Open => {
                    counts.open += n;
                    match assignee_id {
                        None => counts.unassigned += n,
                        Some(a) if a == agent => counts.mine += n,
                        Some(_) => {}
                    }
                }
                ConversationStatus::Snoozed => counts.snoozed += n,
                ConversationStatus::Closed => counts.closed += n,
            }
        }
        Ok(counts)
    }

    /// Folds at most `limit` of the counters' changes into the counters, where triggers
    /// append changes (PostgreSQL), and says how many counters it changed (0: nothing was
    /// left). Several instances may fold at once: each takes changes the others do not hold.
    #[tracing::instrument(skip_all, err)]
    pub async fn fold_counts(&self, limit: i64) -> StoreResult<u64> {
        let Some(fold) = self.writer.dialect().fold_counts else {
            return Ok(0);
        };
        Ok(on_pool!(&self.writer, |db| {
            sqlx::query(fold)
                .bind(limit)
                .execute(db)
                .await
                .map(|r| r.rows_affected())
        })?)
    }

    /// The enabled agents who share a number with `agent` (`agent` too), by name, each with
    /// the numbers they share with `agent`.
    #[tracing::instrument(skip_all, err)]
    pub async fn colleagues(&self, agent: AgentId) -> StoreResult<Vec<Colleague>> {
        let rows: Vec<(AgentId, String, String)> = on_pool!(&self.reader, |db| {
            sqlx::query_as(
                "SELECT a.id, a.name, theirs.number FROM agents a \
                 JOIN agent_numbers theirs ON theirs.agent_id = a.id \
                 JOIN agent_numbers ours ON ours.number = theirs.number AND ours.agent_id = $1 \
                 WHERE NOT a.disabled ORDER BY a.name, a.id, theirs.number",
            )
            .bind(agent)
            .fetch_all(db)
            .await
        })?;
        let mut colleagues: Vec<Colleague> = Vec::new();
        for (id, name, number) in rows {
            match colleagues.last_mut() {
                Some(last) if last.id == id => last.numbers.push(number),
                _ => colleagues.push(Colleague {
                    id,
                    name,
                    numbers: vec![number],
                }),
            }
        }
        Ok(colleagues)
    }

    /// Stores a note in the conversation, once per `clientId` of its author. A note is no
    /// message of the contact's: it leaves the conversation as it is (its unread count, its
    /// last message, its place in the list).
    #[tracing::instrument(skip_all, err)]
    pub async fn insert_note(&self, note: &NewNote) -> StoreResult<NoteOutcome> {
        let mut tx = self.writer.begin_write().await?;
        if let Some(earlier) = earlier_note(&mut tx, note).await? {
            return Ok(earlier);
        }
        let nth = tx.change()?;
        let t = now();
        let row: Option<MessageRow> = on_tx!(&mut tx, |db| {
            sqlx::query_as(concat!(
                "INSERT INTO messages (conversation_id, direction, from_number, to_number, \
                   body, media, status, status_rank, client_id, agent_id, segments, \
                   created_at, updated_at, seq) \
                 SELECT id, $2, our_number, contact_phone, $3, '[]', $4, $5, $6, $7, 0, $8, $8, ",
                new_seq!("9"),
                " FROM conversations WHERE id = $1 \
                 ON CONFLICT DO NOTHING RETURNING ",
                returning_columns!()
            ))
            .bind(note.conversation_id)
            .bind(Direction::Note)
            .bind(note.body.as_str())
            .bind(Status::Note)
            .bind(Status::Note.rank())
            .bind(note.client_id.as_str())
            .bind(note.agent_id)
            .bind(t)
            .bind(nth)
            .fetch_optional(db)
            .await
        })?;
        let Some(row) = row else {
            // The same clientId, committed meanwhile by a concurrent request.
            return Ok(earlier_note(&mut tx, note)
                .await?
                .unwrap_or(NoteOutcome::ClientIdReused));
        };
        let audience = audience(&mut tx, note.conversation_id).await?;
        tx.commit().await?;
        Ok(NoteOutcome::Created(Box::new(MessageChange {
            event: MessageEvent::New,
            message: row.into(),
            conversation: None,
            audience,
        })))
    }
}

/// Whether `agent` may be assigned `conversation`, holding what decided it until the end of
/// the transaction.
pub(super) async fn may_be_assigned(
    tx: &mut Tx,
    agent: AgentId,
    conversation: ConversationId,
) -> StoreResult<bool> {
    let check = tx.dialect().assignable;
    let found: Option<AgentId> = on_tx!(tx, |db| {
        sqlx::query_scalar(check)
            .bind(agent)
            .bind(conversation)
            .fetch_optional(db)
            .await
    })?;
    Ok(found.is_some())
}

/// Unassigns `agent`'s conversations that they may no longer be assigned: all of them once
/// they are disabled, else those of the numbers they no longer hold. What changed, for the
/// agents of each conversation.
pub(super) async fn unassign_lost(
    tx: &mut Tx,
    agent: AgentId,
) -> StoreResult<Vec<ConversationChange>> {
    let nth = tx.change()?;
    let unassign = tx.dialect().unassign_lost;
    let lost: Vec<ConversationId> = on_tx!(&mut *tx, |db| {
        sqlx::query_scalar(unassign)
            .bind(agent)
            .bind(now())
            .bind(nth)
            .fetch_all(db)
            .await
    })?;
    changes_of(tx, &lost).await
}

/// Each of `conversations` as this transaction left it, with its audience.
async fn changes_of(
    tx: &mut Tx,
    conversations: &[ConversationId],
) -> StoreResult<Vec<ConversationChange>> {
    let mut changes = Vec::with_capacity(conversations.len());
    for id in conversations {
        changes.push(ConversationChange {
            conversation: conversation_by_id(tx, *id).await?,
            audience: audience(tx, *id).await?,
        });
    }
    Ok(changes)
}

/// What an earlier note with the same `clientId` of the same author means for this one: the
/// same note (same conversation and body), or a `clientId` reused.
async fn earlier_note(tx: &mut Tx, note: &NewNote) -> StoreResult<Option<NoteOutcome>> {
    let earlier = earlier_with_client_id(tx, note.agent_id, &note.client_id).await?;
    Ok(earlier.map(|earlier| {
        let message: Message = earlier.row.into();
        if message.direction == Direction::Note
            && message.conversation_id == note.conversation_id
            && message.body == note.body.as_str()
        {
            NoteOutcome::Existing(Box::new(message))
        } else {
            NoteOutcome::ClientIdReused
        }
    }))
}
