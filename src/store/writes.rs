//! Conversations and new outbound messages: opening a conversation, marking it read, and
//! storing an outbound message exactly once (inbound messages: `inbound.rs`).

use super::db::{Tx, new_seq, on_tx};
use super::inbox::{may_be_assigned, touch};
use super::reads::{audience, conversation_by_id, earlier_with_client_id};
use super::rows::{MessageRow, returning_columns};
use super::uploads::{Pictures, attach_pictures, pictures_of, pictures_of_message};
use super::{
    ConversationChange, MessageChange, MessageEvent, NewOutbound, Outbound, Store, StoreResult,
};
use crate::domain::{ContactName, PhoneNumber};
use crate::model::{Conversation, ConversationId, Direction, Message, Status, now};

impl Store {
    /// The conversation between our number and the contact, opened if new; a `name` given
    /// replaces the stored one.
    #[tracing::instrument(skip_all, err)]
    pub async fn open_conversation(
        &self,
        our_number: &PhoneNumber,
        contact: &PhoneNumber,
        name: Option<&ContactName>,
    ) -> StoreResult<ConversationChange> {
        let mut tx = self.writer.begin().await?;
        let nth = tx.change()?;
        let id: ConversationId = on_tx!(&mut tx, |db| {
            sqlx::query_scalar(concat!(
                "INSERT INTO conversations (our_number, contact_phone, contact_name, activity, \
                   changed, created_at, updated_at) \
                 VALUES ($1, $2, $3, ",
                new_seq!("4"),
                ", ",
                new_seq!("4"),
                ", $5, $5) \
                 ON CONFLICT (our_number, contact_phone) DO UPDATE \
                   SET contact_name = COALESCE(excluded.contact_name, conversations.contact_name), \
                   changed = CASE WHEN excluded.contact_name IS NULL THEN conversations.changed \
                     ELSE excluded.changed END, \
                   version = CASE WHEN excluded.contact_name IS NULL THEN conversations.version \
                     ELSE conversations.version + 1 END \
                 RETURNING id"
            ))
            .bind(our_number.as_str())
            .bind(contact.as_str())
            .bind(name.map(ContactName::as_str))
            .bind(nth)
            .bind(now())
            .fetch_one(db)
            .await
        })?;
        let conversation = conversation_by_id(&mut tx, id).await?;
        let audience = audience(&mut tx, id).await?;
        tx.commit().await?;
        Ok(ConversationChange {
            conversation,
            audience,
        })
    }

    /// Sets the unread count to zero; `None` when it already was.
    #[tracing::instrument(skip_all, err)]
    pub async fn mark_read(
        &self,
        conversation: ConversationId,
    ) -> StoreResult<Option<ConversationChange>> {
        let mut tx = self.writer.begin().await?;
        let nth = tx.change()?;
        let changed = on_tx!(&mut tx, |db| {
            sqlx::query(concat!(
                "UPDATE conversations SET unread_count = 0, ",
                touch!("2"),
                " WHERE id = $1 AND unread_count <> 0"
            ))
            .bind(conversation)
            .bind(nth)
            .execute(db)
            .await
            .map(|r| r.rows_affected())
        })?;
        if changed == 0 {
            return Ok(None);
        }
        let updated = conversation_by_id(&mut tx, conversation).await?;
        let audience = audience(&mut tx, conversation).await?;
        tx.commit().await?;
        Ok(Some(ConversationChange {
            conversation: updated,
            audience,
        }))
    }

    /// Stores an outbound message as `pending` with its pictures and queues it for sending,
    /// unless the same `clientId` was used before, the message it retries was retried
    /// already, the contact opted out, or the pictures are not the sender's to send.
    #[tracing::instrument(skip_all, err)]
    pub async fn insert_outbound(&self, msg: &NewOutbound) -> StoreResult<Outbound> {
        let mut tx = self.writer.begin().await?;
        if let Some(done) = earlier_send(&mut tx, msg).await? {
            return Ok(done);
        }
        let to: Recipient = on_tx!(&mut tx, |db| {
            sqlx::query_as(
                "SELECT our_number, contact_phone, opted_out FROM conversations WHERE id = $1",
            )
            .bind(msg.conversation_id)
            .fetch_one(db)
            .await
        })?;
        if to.opted_out {
            return Ok(Outbound::OptedOut);
        }
        // Decided before the conversation's row is locked: a disable holds the agent's row
        // and then the conversations it unassigns, so this takes them in the same order.
        let assign =
            msg.assign && may_be_assigned(&mut tx, msg.agent_id, msg.conversation_id).await?;
        let pictures = match msg.retry_of {
            Some(original) => pictures_of_message(&mut tx, original).await?,
            None => match pictures_of(&mut tx, msg.agent_id, &msg.media).await? {
                Pictures::Found(found) => found,
                Pictures::Unknown(id) => return Ok(Outbound::UnknownMedia(id)),
                Pictures::TooLarge => return Ok(Outbound::MediaTooLarge),
            },
        };
        let nth = tx.change()?;
        let t = now();
        let row: Option<MessageRow> = on_tx!(&mut tx, |db| {
            sqlx::query_as(concat!(
                "INSERT INTO messages (conversation_id, direction, from_number, to_number, \
                   body, media, status, status_rank, client_id, agent_id, segments, \
                   created_at, updated_at, retry_of, seq) \
                 VALUES ($1, 'outbound', $2, $3, $4, '[]', $5, $6, $7, $8, $9, $10, $10, $12, ",
                new_seq!("11"),
                ") ON CONFLICT DO NOTHING RETURNING ",
                returning_columns!()
            ))
            .bind(msg.conversation_id)
            .bind(&to.our_number)
            .bind(&to.contact_phone)
            .bind(msg.body.as_str())
            .bind(Status::Pending)
            .bind(Status::Pending.rank())
            .bind(msg.client_id.as_str())
            .bind(msg.agent_id)
            .bind(msg.segments)
            .bind(t)
            .bind(nth)
            .bind(msg.retry_of)
            .fetch_optional(db)
            .await
        })?;
        let Some(row) = row else {
            // The same clientId, or a retry of the same message, committed meanwhile by a
            // concurrent request (the insert waited for it on the unique index).
            return Ok(earlier_send(&mut tx, msg)
                .await?
                .unwrap_or(Outbound::ClientIdReused));
        };
        let mut message: Message = row.into();
        if !pictures.is_empty() {
            match attach_pictures(&mut tx, message.id, &pictures).await? {
                Some(media) => message.media = media,
                // Pruned between the check and now: as if it had never been there.
                None => return Ok(Outbound::UnknownMedia(pictures[0].0)),
            }
        }
        on_tx!(&mut tx, |db| {
            sqlx::query("INSERT INTO send_jobs (message_id, run_at) VALUES ($1, $2)")
                .bind(message.id)
                .bind(t)
                .execute(db)
                .await
                .map(|r| r.rows_affected())
        })?;
        on_tx!(&mut tx, |db| {
            sqlx::query(
                "UPDATE conversations SET last_message_id = $2, activity = $3, updated_at = $4 \
                 WHERE id = $1",
            )
            .bind(msg.conversation_id)
            .bind(message.id)
            .bind(message.seq)
            .bind(t)
            .execute(db)
            .await
            .map(|r| r.rows_affected())
        })?;
        let assigned = if assign {
            assign_sender(&mut tx, msg, message.seq).await?
        } else {
            None
        };
        let audience = audience(&mut tx, msg.conversation_id).await?;
        tx.commit().await?;
        Ok(Outbound::Created(Box::new(MessageChange {
            event: MessageEvent::New,
            message,
            conversation: assigned,
            audience,
        })))
    }
}

/// Assigns the conversation to the sender of `msg` (who may be assigned it) if it has no
/// assignee; the conversation then, as it is now. Its change takes the message's `seq`.
async fn assign_sender(
    tx: &mut Tx,
    msg: &NewOutbound,
    seq: i64,
) -> StoreResult<Option<Conversation>> {
    let assigned = on_tx!(&mut *tx, |db| {
        sqlx::query(
            "UPDATE conversations SET assignee_id = $2, changed = $3, version = version + 1 \
             WHERE id = $1 AND assignee_id IS NULL",
        )
        .bind(msg.conversation_id)
        .bind(msg.agent_id)
        .bind(seq)
        .execute(db)
        .await
        .map(|r| r.rows_affected())
    })?;
    if assigned == 0 {
        return Ok(None);
    }
    Ok(Some(conversation_by_id(tx, msg.conversation_id).await?))
}

/// Whom an outbound message of a conversation goes to, and from which number.
#[derive(sqlx::FromRow)]
struct Recipient {
    our_number: String,
    contact_phone: String,
    opted_out: bool,
}

/// What an earlier send means for this one: a retry of the same failed message, whoever
/// asked for it and with whatever `clientId`, is this one; so is a send with the same
/// `clientId` from the same agent, if it is the same request (body, conversation, retried
/// message, pictures); another is a `clientId` reused.
async fn earlier_send(tx: &mut Tx, msg: &NewOutbound) -> StoreResult<Option<Outbound>> {
    if let Some(original) = msg.retry_of {
        let retried: Option<MessageRow> = on_tx!(&mut *tx, |db| {
            sqlx::query_as(concat!(
                "SELECT ",
                super::rows::message_columns!(),
                " FROM messages m WHERE m.retry_of = $1"
            ))
            .bind(original)
            .fetch_optional(db)
            .await
        })?;
        if let Some(retry) = retried {
            return Ok(Some(Outbound::Existing(Box::new(retry.into()))));
        }
    }
    let earlier = earlier_with_client_id(tx, msg.agent_id, &msg.client_id).await?;
    let Some(earlier) = earlier else {
        return Ok(None);
    };
    let same_media = msg.retry_of.is_some() || {
        let pictures = pictures_of_message(tx, earlier.row.id).await?;
        pictures
            .iter()
            .map(|(id, _)| *id)
            .eq(msg.media.iter().copied())
    };
    // A note with the same text is still not this send: answering it would tell the page
    // that a message which never reaches the contact was sent.
    let same = earlier.row.direction == Direction::Outbound
        && earlier.row.body == msg.body.as_str()
        && earlier.row.conversation_id == msg.conversation_id
        && earlier.retry_of == msg.retry_of
        && same_media;
    Ok(Some(if same {
        Outbound::Existing(Box::new(earlier.row.into()))
    } else {
        Outbound::ClientIdReused
    }))
}
