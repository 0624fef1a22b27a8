//! The SQL both backends run. The statements are written once, in the common dialect of
//! PostgreSQL and SQLite (`$n` parameters, `ON CONFLICT`, `RETURNING`), and `impl_store!`
//! stamps the [`Store`](super::Store) implementation out for each pool type; the few
//! differences are passed in as fragments.
//!
//! Every write that changes a message takes the next `seq` (a sequence on PostgreSQL, a
//! counter row on SQLite, whose writers are serialised anyway) inside its transaction, while
//! registered with the store's [`Watermark`](super::Watermark), so `sync` never shows a
//! change that a lower `seq` could still commit behind.

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

macro_rules! conversation_select {
    () => {
        concat!(
            "SELECT c.id AS c_id, c.our_number, c.contact_phone, c.contact_name, c.opted_out, \
             c.unread_count, c.updated_at AS c_updated_at, c.activity, ",
            message_columns!(),
            " FROM conversations c LEFT JOIN messages m ON m.id = c.last_message_id "
        )
    };
}

macro_rules! agent_select {
    ($agg:literal) => {
        agent_select!($agg, "")
    };
    ($agg:literal, $more_columns:literal) => {
        concat!(
            "SELECT a.id, a.email, a.name, a.password_hash, \
             (SELECT ",
            $agg,
            "(n.number, ',') FROM agent_numbers n WHERE n.agent_id = a.id) AS numbers",
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

macro_rules! impl_store {
    ($store:ident, $db:ty, backend: $backend:literal, agg: $agg:literal, skip_locked: $skip:literal, next_seq: $next_seq:literal) => {
        use std::time::Duration;

        use async_trait::async_trait;
        use chrono::{DateTime, Utc};
        use sqlx::Transaction;

        use crate::model::{now, Agent, Contact, Conversation, Direction, Id, Message, Status};
        use crate::sms::OptChange;
        use crate::store::{
            error_text, Accepted, AgentRow, Changed, Claim, ConversationRow, Inbound, MessageRow,
            NewInbound, NewOutbound, Outbound, Page, QueueStats, SendJob, Session, SessionRow,
            StatusOutcome, StatusReport, Store, StoreResult, Watermark,
        };

        type Tx = Transaction<'static, $db>;

        /// The next `seq`; the caller must hold a [`Watermark::enter`] guard until it commits.
        async fn next_seq(tx: &mut Tx, watermark: &Watermark) -> StoreResult<i64> {
            let seq = sqlx::query_scalar::<_, i64>($next_seq)
                .fetch_one(&mut **tx)
                .await?;
            watermark.observe(seq);
            Ok(seq)
        }

        async fn conversation_by_id(tx: &mut Tx, id: i64) -> StoreResult<Conversation> {
            let row: ConversationRow =
                sqlx::query_as(concat!(conversation_select!(), "WHERE c.id = $1"))
                    .bind(id)
                    .fetch_one(&mut **tx)
                    .await?;
            Ok(row.into_conversation().0)
        }

        async fn message_by_id(tx: &mut Tx, id: i64) -> StoreResult<Message> {
            let row: MessageRow = sqlx::query_as(concat!(
                "SELECT ",
                message_columns!(),
                " FROM messages m WHERE m.id = $1"
            ))
            .bind(id)
            .fetch_one(&mut **tx)
            .await?;
            Ok(row.into())
        }

        /// The agents who hold the conversation's number.
        async fn audience_of<'c>(
            executor: impl sqlx::Executor<'c, Database = $db>,
            conversation: i64,
        ) -> StoreResult<Vec<Id>> {
            let ids: Vec<i64> = sqlx::query_scalar(
                "SELECT an.agent_id FROM conversations c \
                 JOIN agent_numbers an ON an.number = c.our_number \
                 WHERE c.id = $1 ORDER BY an.agent_id",
            )
            .bind(conversation)
            .fetch_all(executor)
            .await?;
            Ok(ids.into_iter().map(Id).collect())
        }

        async fn agent_by_id(tx: &mut Tx, id: i64) -> StoreResult<Agent> {
            let row: AgentRow = sqlx::query_as(concat!(agent_select!($agg), "WHERE a.id = $1"))
                .bind(id)
                .fetch_one(&mut **tx)
                .await?;
            Ok(row.into_agent().0)
        }

        /// Gives a just-inserted agent (`id`, `None` if nothing was inserted) its numbers and
        /// commits.
        async fn add_numbers(
            mut tx: Tx,
            id: Option<i64>,
            numbers: &[String],
        ) -> StoreResult<Option<Agent>> {
            let Some(id) = id else { return Ok(None) };
            for number in numbers {
                sqlx::query(
                    "INSERT INTO agent_numbers (agent_id, number) VALUES ($1, $2) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(id)
                .bind(number)
                .execute(&mut *tx)
                .await?;
            }
            let agent = agent_by_id(&mut tx, id).await?;
            tx.commit().await?;
            Ok(Some(agent))
        }

        /// What an earlier send with the same `clientId` from the same agent means for this one.
        async fn earlier_send(tx: &mut Tx, msg: &NewOutbound) -> StoreResult<Option<Outbound>> {
            let earlier: Option<MessageRow> = sqlx::query_as(concat!(
                "SELECT ",
                message_columns!(),
                " FROM messages m WHERE m.agent_id = $1 AND m.client_id = $2"
            ))
            .bind(msg.agent_id.0)
            .bind(&msg.client_id)
            .fetch_optional(&mut **tx)
            .await?;
            Ok(earlier.map(|earlier| {
                let same =
                    earlier.body == msg.body && earlier.conversation_id == msg.conversation_id.0;
                if same {
                    Outbound::Existing(earlier.into())
                } else {
                    Outbound::ClientIdReused
                }
            }))
        }

        /// Moves a message to `status` if that is further along; `None` if it was not.
        async fn advance_status(
            tx: &mut Tx,
            watermark: &Watermark,
            id: i64,
            status: Status,
            error_code: Option<i64>,
            sid: Option<&str>,
        ) -> StoreResult<Option<Message>> {
            let seq = next_seq(tx, watermark).await?;
            let code = if status.is_failure() { error_code } else { None };
            let row: Option<MessageRow> = sqlx::query_as(concat!(
                "UPDATE messages SET status = $2, status_rank = $3, error_code = $4, \
                 error_message = $5, twilio_sid = COALESCE(twilio_sid, $6), updated_at = $7, \
                 seq = $8 \
                 WHERE id = $1 AND (status_rank < $3 \
                   OR ($2 = 'delivered' AND status IN ('undelivered', 'failed'))) \
                 RETURNING ",
                returning_columns!()
            ))
            .bind(id)
            .bind(status.as_str())
            .bind(status.rank())
            .bind(code)
            .bind(error_text(code))
            .bind(sid)
            .bind(now())
            .bind(seq)
            .fetch_optional(&mut **tx)
            .await?;
            Ok(row.map(Into::into))
        }

        #[async_trait]
        impl Store for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn ping(&self) -> StoreResult<()> {
                sqlx::query("SELECT 1").execute(&self.reader).await?;
                Ok(())
            }

            async fn count_agents(&self) -> StoreResult<i64> {
                Ok(sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM agents")
                    .fetch_one(&self.reader)
                    .await?)
            }

            async fn create_agent(
                &self,
                email: &str,
                name: &str,
                password_hash: &str,
                numbers: &[String],
            ) -> StoreResult<Option<Agent>> {
                let mut tx = self.writer.begin().await?;
                let id: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO agents (email, name, password_hash, created_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (email) DO NOTHING RETURNING id",
                )
                .bind(email)
                .bind(name)
                .bind(password_hash)
                .bind(now())
                .fetch_optional(&mut *tx)
                .await?;
                add_numbers(tx, id, numbers).await
            }

            async fn create_first_agent(
                &self,
                email: &str,
                name: &str,
                password_hash: &str,
                numbers: &[String],
            ) -> StoreResult<Option<Agent>> {
                let mut tx = self.writer.begin().await?;
                if self.backend() == "postgres" {
                    // Under READ COMMITTED two writers could both see no agent; this lock
                    // makes any other insert (setup, the CLI, another instance) wait for us,
                    // and us for it. SQLite serialises writers anyway.
                    sqlx::query("LOCK TABLE agents IN SHARE ROW EXCLUSIVE MODE")
                        .execute(&mut *tx)
                        .await?;
                }
                let id: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO agents (email, name, password_hash, created_at) \
                     SELECT $1, $2, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM agents) \
                     ON CONFLICT (email) DO NOTHING RETURNING id",
                )
                .bind(email)
                .bind(name)
                .bind(password_hash)
                .bind(now())
                .fetch_optional(&mut *tx)
                .await?;
                add_numbers(tx, id, numbers).await
            }

            async fn agent_by_email(&self, email: &str) -> StoreResult<Option<(Agent, String)>> {
                let row: Option<AgentRow> =
                    sqlx::query_as(concat!(agent_select!($agg), "WHERE a.email = $1"))
                        .bind(email)
                        .fetch_optional(&self.reader)
                        .await?;
                Ok(row.map(AgentRow::into_agent))
            }

            async fn list_agents(&self) -> StoreResult<Vec<Agent>> {
                let rows: Vec<AgentRow> =
                    sqlx::query_as(concat!(agent_select!($agg), "ORDER BY a.id"))
                        .fetch_all(&self.reader)
                        .await?;
                Ok(rows.into_iter().map(|r| r.into_agent().0).collect())
            }

            async fn change_numbers(
                &self,
                agent: Id,
                add: &[String],
                remove: &[String],
            ) -> StoreResult<Agent> {
                let mut tx = self.writer.begin().await?;
                for number in add {
                    sqlx::query(
                        "INSERT INTO agent_numbers (agent_id, number) VALUES ($1, $2) \
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(agent.0)
                    .bind(number)
                    .execute(&mut *tx)
                    .await?;
                }
                for number in remove {
                    sqlx::query("DELETE FROM agent_numbers WHERE agent_id = $1 AND number = $2")
                        .bind(agent.0)
                        .bind(number)
                        .execute(&mut *tx)
                        .await?;
                }
                let agent = agent_by_id(&mut tx, agent.0).await?;
                tx.commit().await?;
                Ok(agent)
            }

            async fn create_session(
                &self,
                token_hash: &str,
                agent: Id,
                expires_at: DateTime<Utc>,
            ) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO sessions (token_hash, agent_id, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(token_hash)
                .bind(agent.0)
                .bind(now())
                .bind(expires_at)
                .execute(&self.writer)
                .await?;
                Ok(())
            }

            async fn session(&self, token_hash: &str) -> StoreResult<Option<Session>> {
                let row: Option<SessionRow> = sqlx::query_as(concat!(
                    agent_select!($agg, ", s.expires_at"),
                    "JOIN sessions s ON s.agent_id = a.id \
                     WHERE s.token_hash = $1 AND s.expires_at > $2"
                ))
                .bind(token_hash)
                .bind(now())
                .fetch_optional(&self.reader)
                .await?;
                Ok(row.map(|r| Session {
                    agent: r.agent.into_agent().0,
                    expires_at: r.expires_at,
                }))
            }

            async fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
                sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                    .bind(token_hash)
                    .execute(&self.writer)
                    .await?;
                Ok(())
            }

            async fn end_expired_sessions(&self) -> StoreResult<Vec<String>> {
                Ok(sqlx::query_scalar(
                    "DELETE FROM sessions WHERE expires_at <= $1 RETURNING token_hash",
                )
                .bind(now())
                .fetch_all(&self.writer)
                .await?)
            }

            async fn list_conversations(
                &self,
                agent: Id,
                page: Page,
            ) -> StoreResult<(Vec<Conversation>, Option<i64>)> {
                let rows: Vec<ConversationRow> = sqlx::query_as(concat!(
                    conversation_select!(),
                    "WHERE",
                    visible_to!("1"),
                    "AND c.activity < $2 ORDER BY c.activity DESC, c.id DESC LIMIT $3"
                ))
                .bind(agent.0)
                .bind(page.cursor.unwrap_or(i64::MAX))
                .bind(page.limit)
                .fetch_all(&self.reader)
                .await?;
                let full = rows.len() as i64 == page.limit;
                let mut next = None;
                let conversations = rows
                    .into_iter()
                    .map(|r| {
                        let (c, activity) = r.into_conversation();
                        next = Some(activity);
                        c
                    })
                    .collect();
                Ok((conversations, next.filter(|_| full)))
            }

            async fn conversation(&self, agent: Id, id: Id) -> StoreResult<Option<Conversation>> {
                let row: Option<ConversationRow> = sqlx::query_as(concat!(
                    conversation_select!(),
                    "WHERE c.id = $2 AND",
                    visible_to!("1")
                ))
                .bind(agent.0)
                .bind(id.0)
                .fetch_optional(&self.reader)
                .await?;
                Ok(row.map(|r| r.into_conversation().0))
            }

            async fn list_messages(
                &self,
                conversation: Id,
                page: Page,
            ) -> StoreResult<(Vec<Message>, Option<i64>)> {
                let rows: Vec<MessageRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    message_columns!(),
                    " FROM messages m WHERE m.conversation_id = $1 AND m.id < $2 \
                     ORDER BY m.id DESC LIMIT $3"
                ))
                .bind(conversation.0)
                .bind(page.cursor.unwrap_or(i64::MAX))
                .bind(page.limit)
                .fetch_all(&self.reader)
                .await?;
                let next = (rows.len() as i64 == page.limit)
                    .then(|| rows.last().map(|m| m.id))
                    .flatten();
                Ok((rows.into_iter().map(Into::into).collect(), next))
            }

            async fn message(&self, agent: Id, id: Id) -> StoreResult<Option<Message>> {
                let row: Option<MessageRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    message_columns!(),
                    " FROM messages m JOIN conversations c ON c.id = m.conversation_id \
                     WHERE m.id = $2 AND",
                    visible_to!("1")
                ))
                .bind(agent.0)
                .bind(id.0)
                .fetch_optional(&self.reader)
                .await?;
                Ok(row.map(Into::into))
            }

            async fn changes(&self, agent: Id, since: i64, limit: i64) -> StoreResult<Vec<Message>> {
                let rows: Vec<MessageRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    message_columns!(),
                    " FROM messages m JOIN conversations c ON c.id = m.conversation_id \
                     WHERE m.seq > $2 AND m.seq <= $4 AND",
                    visible_to!("1"),
                    "ORDER BY m.seq LIMIT $3"
                ))
                .bind(agent.0)
                .bind(since)
                .bind(limit)
                .bind(self.watermark.visible_up_to())
                .fetch_all(&self.reader)
                .await?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn audience(&self, conversation: Id) -> StoreResult<Vec<Id>> {
                audience_of(&self.reader, conversation.0).await
            }

            async fn open_conversation(
                &self,
                our_number: &str,
                contact: &str,
                name: Option<&str>,
            ) -> StoreResult<Conversation> {
                let _writing = self.watermark.enter();
                let mut tx = self.writer.begin().await?;
                let seq = next_seq(&mut tx, &self.watermark).await?;
                let t = now();
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO conversations \
                       (our_number, contact_phone, contact_name, activity, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $5) \
                     ON CONFLICT (our_number, contact_phone) DO UPDATE \
                       SET contact_name = COALESCE(excluded.contact_name, conversations.contact_name) \
                     RETURNING id",
                )
                .bind(our_number)
                .bind(contact)
                .bind(name)
                .bind(seq)
                .bind(t)
                .fetch_one(&mut *tx)
                .await?;
                let conversation = conversation_by_id(&mut tx, id).await?;
                tx.commit().await?;
                Ok(conversation)
            }

            async fn mark_read(&self, conversation: Id) -> StoreResult<Option<Conversation>> {
                let mut tx = self.writer.begin().await?;
                let changed = sqlx::query(
                    "UPDATE conversations SET unread_count = 0 WHERE id = $1 AND unread_count <> 0",
                )
                .bind(conversation.0)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                let result = if changed > 0 {
                    Some(conversation_by_id(&mut tx, conversation.0).await?)
                } else {
                    None
                };
                tx.commit().await?;
                Ok(result)
            }

            async fn insert_inbound(&self, msg: &NewInbound) -> StoreResult<Option<Inbound>> {
                let _writing = self.watermark.enter();
                let mut tx = self.writer.begin().await?;
                // Reads first: a Twilio retry, and who to tell, need no lock.
                let known: Option<i64> =
                    sqlx::query_scalar("SELECT id FROM messages WHERE twilio_sid = $1")
                        .bind(&msg.twilio_sid)
                        .fetch_optional(&mut *tx)
                        .await?;
                if known.is_some() {
                    return Ok(None);
                }
                let audience: Vec<i64> = sqlx::query_scalar(
                    "SELECT agent_id FROM agent_numbers WHERE number = $1 ORDER BY agent_id",
                )
                .bind(&msg.to)
                .fetch_all(&mut *tx)
                .await?;
                let seq = next_seq(&mut tx, &self.watermark).await?;
                let t = now();
                let conversation_id: i64 = sqlx::query_scalar(
                    "INSERT INTO conversations \
                       (our_number, contact_phone, activity, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $4) \
                     ON CONFLICT (our_number, contact_phone) DO UPDATE SET updated_at = excluded.updated_at \
                     RETURNING id",
                )
                .bind(&msg.to)
                .bind(&msg.from)
                .bind(seq)
                .bind(t)
                .fetch_one(&mut *tx)
                .await?;
                let media = serde_json::to_string(&msg.media).unwrap_or_else(|_| "[]".into());
                let row: Option<MessageRow> = sqlx::query_as(concat!(
                    "INSERT INTO messages (conversation_id, direction, from_number, to_number, \
                       body, media, status, status_rank, twilio_sid, segments, created_at, \
                       updated_at, seq) \
                     VALUES ($1, 'inbound', $2, $3, $4, $5, 'received', $6, $7, $8, $9, $9, $10) \
                     ON CONFLICT DO NOTHING RETURNING ",
                    returning_columns!()
                ))
                .bind(conversation_id)
                .bind(&msg.from)
                .bind(&msg.to)
                .bind(&msg.body)
                .bind(media)
                .bind(Status::Received.rank())
                .bind(&msg.twilio_sid)
                .bind(msg.segments)
                .bind(t)
                .bind(seq)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = row else { return Ok(None) };
                let opted_out = msg.opt_change.map(|c| c == OptChange::OptOut);
                let (contact_name, opted_out, unread_count): (Option<String>, bool, i64) =
                    sqlx::query_as(
                        "UPDATE conversations SET unread_count = unread_count + 1, \
                           last_message_id = $2, activity = $3, updated_at = $4, \
                           opted_out = COALESCE($5, opted_out) \
                         WHERE id = $1 RETURNING contact_name, opted_out, unread_count",
                    )
                    .bind(conversation_id)
                    .bind(row.id)
                    .bind(seq)
                    .bind(t)
                    .bind(opted_out)
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                let message: Message = row.into();
                let conversation = Conversation {
                    id: Id(conversation_id),
                    our_number: msg.to.clone(),
                    contact: Contact {
                        phone: msg.from.clone(),
                        name: contact_name,
                        opted_out,
                    },
                    last_message: Some(message.clone()),
                    unread_count,
                    updated_at: t,
                };
                Ok(Some(Inbound {
                    message,
                    conversation,
                    audience: audience.into_iter().map(Id).collect(),
                }))
            }

            async fn insert_outbound(&self, msg: &NewOutbound) -> StoreResult<Outbound> {
                let _writing = self.watermark.enter();
                let mut tx = self.writer.begin().await?;
                if let Some(done) = earlier_send(&mut tx, msg).await? {
                    return Ok(done);
                }
                let (our_number, contact, opted_out): (String, String, bool) = sqlx::query_as(
                    "SELECT our_number, contact_phone, opted_out FROM conversations WHERE id = $1",
                )
                .bind(msg.conversation_id.0)
                .fetch_one(&mut *tx)
                .await?;
                if opted_out {
                    return Ok(Outbound::OptedOut);
                }
                let seq = next_seq(&mut tx, &self.watermark).await?;
                let t = now();
                let row: Option<MessageRow> = sqlx::query_as(concat!(
                    "INSERT INTO messages (conversation_id, direction, from_number, to_number, \
                       body, media, status, status_rank, client_id, agent_id, segments, created_at, \
                       updated_at, seq) \
                     VALUES ($1, 'outbound', $2, $3, $4, '[]', 'pending', 0, $5, $6, $7, $8, $8, $9) \
                     ON CONFLICT DO NOTHING RETURNING ",
                    returning_columns!()
                ))
                .bind(msg.conversation_id.0)
                .bind(our_number)
                .bind(contact)
                .bind(&msg.body)
                .bind(&msg.client_id)
                .bind(msg.agent_id.0)
                .bind(msg.segments)
                .bind(t)
                .bind(seq)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = row else {
                    // The same clientId committed meanwhile by a concurrent request.
                    return Ok(earlier_send(&mut tx, msg)
                        .await?
                        .unwrap_or(Outbound::ClientIdReused));
                };
                sqlx::query("INSERT INTO send_jobs (message_id, run_at) VALUES ($1, $2)")
                    .bind(row.id)
                    .bind(t)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "UPDATE conversations SET last_message_id = $2, activity = $3, updated_at = $4 \
                     WHERE id = $1",
                )
                .bind(msg.conversation_id.0)
                .bind(row.id)
                .bind(seq)
                .bind(t)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(Outbound::Created(row.into()))
            }

            async fn apply_status(&self, report: &StatusReport) -> StoreResult<StatusOutcome> {
                let _writing = self.watermark.enter();
                let mut tx = self.writer.begin().await?;
                let found: Option<(i64, Option<String>, i64, String)> = match report.message_id {
                    Some(id) => sqlx::query_as(
                        "SELECT id, twilio_sid, conversation_id, direction FROM messages \
                         WHERE id = $1 AND direction = 'outbound'",
                    )
                    .bind(id.0)
                    .fetch_optional(&mut *tx)
                    .await?,
                    None => sqlx::query_as(
                        "SELECT id, twilio_sid, conversation_id, direction FROM messages \
                         WHERE twilio_sid = $1",
                    )
                    .bind(&report.twilio_sid)
                    .fetch_optional(&mut *tx)
                    .await?,
                };
                let Some((id, sid, conversation, direction)) = found else {
                    // Only an outbound message can still be given this sid (when its send is
                    // recorded), so a status of the other direction will never apply.
                    if report.message_id.is_some()
                        || !report.status.reported_for(Direction::Outbound)
                    {
                        return Ok(StatusOutcome::Stale);
                    }
                    sqlx::query(
                        "INSERT INTO early_statuses (twilio_sid, status, error_code, received_at) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                    )
                    .bind(&report.twilio_sid)
                    .bind(report.status.as_str())
                    .bind(report.error_code)
                    .bind(now())
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    return Ok(StatusOutcome::Deferred);
                };
                let direction = if direction == "inbound" {
                    Direction::Inbound
                } else {
                    Direction::Outbound
                };
                if !report.status.reported_for(direction) {
                    tracing::info!(
                        message = id,
                        status = report.status.as_str(),
                        direction = direction.as_str(),
                        "status callback of the other direction; ignored"
                    );
                    return Ok(StatusOutcome::Stale);
                }
                if sid.is_some_and(|s| s != report.twilio_sid) {
                    tracing::warn!(
                        message = id,
                        sid = %report.twilio_sid,
                        "status callback names another sid than the message has; ignored"
                    );
                    return Ok(StatusOutcome::Stale);
                }
                let updated = advance_status(
                    &mut tx,
                    &self.watermark,
                    id,
                    report.status,
                    report.error_code,
                    Some(&report.twilio_sid),
                )
                .await?;
                let Some(message) = updated else { return Ok(StatusOutcome::Stale) };
                let audience = audience_of(&mut *tx, conversation).await?;
                tx.commit().await?;
                Ok(StatusOutcome::Applied(Box::new(Changed {
                    message,
                    audience,
                    conversation: None,
                })))
            }

            async fn claim_send(&self, lease: Duration) -> StoreResult<Option<SendJob>> {
                let t = now();
                let until = t + chrono::Duration::from_std(lease).unwrap_or_default();
                let mut tx = self.writer.begin().await?;
                type ClaimRow = (i64, i64, i64, Option<DateTime<Utc>>, bool, Option<String>);
                let claimed: Option<ClaimRow> = sqlx::query_as(concat!(
                    "UPDATE send_jobs SET lease_until = $1, attempts = attempts + 1, \
                       claim = claim + 1, \
                       first_tried_at = COALESCE(first_tried_at, $2), \
                       maybe_sent = (maybe_sent OR lease_until IS NOT NULL) \
                     WHERE message_id = (SELECT message_id FROM send_jobs \
                         WHERE run_at <= $2 AND (lease_until IS NULL OR lease_until < $2) \
                         ORDER BY run_at, message_id LIMIT 1",
                    $skip,
                    ") AND (lease_until IS NULL OR lease_until < $2) \
                     RETURNING message_id, claim, attempts, first_tried_at, maybe_sent, last_error"
                ))
                .bind(until)
                .bind(t)
                .fetch_optional(&mut *tx)
                .await?;
                let Some((id, token, attempts, first_tried_at, maybe_sent, last_error)) = claimed
                else {
                    return Ok(None);
                };
                let message = message_by_id(&mut tx, id).await?;
                let opted_out: bool =
                    sqlx::query_scalar("SELECT opted_out FROM conversations WHERE id = $1")
                        .bind(message.conversation_id.0)
                        .fetch_one(&mut *tx)
                        .await?;
                tx.commit().await?;
                Ok(Some(SendJob {
                    claim: Claim {
                        message: Id(id),
                        token,
                    },
                    message,
                    conversation_opted_out: opted_out,
                    attempts,
                    first_tried_at: first_tried_at.unwrap_or(t),
                    maybe_sent,
                    last_error,
                }))
            }

            async fn renew_lease(&self, claim: Claim, lease: Duration) -> StoreResult<bool> {
                let until = now() + chrono::Duration::from_std(lease).unwrap_or_default();
                let renewed = sqlx::query(
                    "UPDATE send_jobs SET lease_until = $3 WHERE message_id = $1 AND claim = $2",
                )
                .bind(claim.message.0)
                .bind(claim.token)
                .bind(until)
                .execute(&self.writer)
                .await?
                .rows_affected();
                Ok(renewed > 0)
            }

            async fn mark_accepted(
                &self,
                claim: Claim,
                sid: &str,
                status: Status,
            ) -> StoreResult<Accepted> {
                let message = claim.message;
                let _writing = self.watermark.enter();
                let mut tx = self.writer.begin().await?;
                // Returning early drops the transaction, which puts the job back.
                let ours = sqlx::query("DELETE FROM send_jobs WHERE message_id = $1 AND claim = $2")
                    .bind(message.0)
                    .bind(claim.token)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if ours == 0 {
                    return Ok(Accepted::LostClaim);
                }
                let holder: Option<i64> = sqlx::query_scalar(
                    "SELECT id FROM messages WHERE twilio_sid = $1 AND id <> $2",
                )
                .bind(sid)
                .bind(message.0)
                .fetch_optional(&mut *tx)
                .await?;
                if holder.is_some() {
                    return Ok(Accepted::SidTaken);
                }
                let seq = next_seq(&mut tx, &self.watermark).await?;
                let recorded = sqlx::query(
                    "UPDATE messages SET twilio_sid = $2, \
                       status = CASE WHEN status_rank < $3 THEN $4 ELSE status END, \
                       status_rank = CASE WHEN status_rank < $3 THEN $3 ELSE status_rank END, \
                       updated_at = $5, seq = $6 \
                     WHERE id = $1",
                )
                .bind(message.0)
                .bind(sid)
                .bind(status.rank())
                .bind(status.as_str())
                .bind(now())
                .bind(seq)
                .execute(&mut *tx)
                .await;
                match recorded {
                    // Another message took the sid since the check above.
                    Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                        return Ok(Accepted::SidTaken);
                    }
                    Err(e) => return Err(e.into()),
                    Ok(_) => {}
                }
                let early: Vec<(String, Option<i64>)> = sqlx::query_as(
                    "SELECT status, error_code FROM early_statuses WHERE twilio_sid = $1",
                )
                .bind(sid)
                .fetch_all(&mut *tx)
                .await?;
                if !early.is_empty() {
                    sqlx::query("DELETE FROM early_statuses WHERE twilio_sid = $1")
                        .bind(sid)
                        .execute(&mut *tx)
                        .await?;
                    let mut best: Option<(Status, Option<i64>)> = None;
                    for (s, code) in early {
                        let Ok(s) = s.parse::<Status>() else { continue };
                        if !s.reported_for(Direction::Outbound) {
                            continue;
                        }
                        if best.is_none_or(|(b, _)| s.may_replace(b)) {
                            best = Some((s, code));
                        }
                    }
                    if let Some((s, code)) = best {
                        advance_status(&mut tx, &self.watermark, message.0, s, code, Some(sid)).await?;
                    }
                }
                let updated = message_by_id(&mut tx, message.0).await?;
                let audience = audience_of(&mut *tx, updated.conversation_id.0).await?;
                tx.commit().await?;
                Ok(Accepted::Recorded(Box::new(Changed {
                    message: updated,
                    audience,
                    conversation: None,
                })))
            }

            async fn mark_failed(
                &self,
                claim: Claim,
                code: Option<i64>,
                reason: &str,
                opt_out: bool,
            ) -> StoreResult<Option<Changed>> {
                let message = claim.message;
                let _writing = self.watermark.enter();
                let mut tx = self.writer.begin().await?;
                let ours = sqlx::query("DELETE FROM send_jobs WHERE message_id = $1 AND claim = $2")
                    .bind(message.0)
                    .bind(claim.token)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if ours == 0 {
                    return Ok(None);
                }
                let seq = next_seq(&mut tx, &self.watermark).await?;
                sqlx::query(
                    "UPDATE messages SET status = 'failed', status_rank = 4, error_code = $2, \
                       error_message = $3, updated_at = $4, seq = $5 \
                     WHERE id = $1 AND status_rank < 4",
                )
                .bind(message.0)
                .bind(code)
                .bind(reason)
                .bind(now())
                .bind(seq)
                .execute(&mut *tx)
                .await?;
                let updated = message_by_id(&mut tx, message.0).await?;
                let conversation = if opt_out {
                    sqlx::query("UPDATE conversations SET opted_out = TRUE WHERE id = $1")
                        .bind(updated.conversation_id.0)
                        .execute(&mut *tx)
                        .await?;
                    Some(conversation_by_id(&mut tx, updated.conversation_id.0).await?)
                } else {
                    None
                };
                let audience = audience_of(&mut *tx, updated.conversation_id.0).await?;
                tx.commit().await?;
                Ok(Some(Changed {
                    message: updated,
                    audience,
                    conversation,
                }))
            }

            async fn reschedule(
                &self,
                claim: Claim,
                at: DateTime<Utc>,
                error: &str,
                maybe_sent: bool,
            ) -> StoreResult<bool> {
                let ours = sqlx::query(
                    "UPDATE send_jobs SET run_at = $3, lease_until = NULL, maybe_sent = $4, \
                       last_error = $5 WHERE message_id = $1 AND claim = $2",
                )
                .bind(claim.message.0)
                .bind(claim.token)
                .bind(at)
                .bind(maybe_sent)
                .bind(error)
                .execute(&self.writer)
                .await?
                .rows_affected();
                Ok(ours > 0)
            }

            async fn defer(&self, claim: Claim, at: DateTime<Utc>) -> StoreResult<bool> {
                // SET reads the old row: undo the claim's attempt, and its first try if it was one.
                let ours = sqlx::query(
                    "UPDATE send_jobs SET run_at = $3, lease_until = NULL, \
                       attempts = attempts - 1, \
                       first_tried_at = CASE WHEN attempts <= 1 THEN NULL ELSE first_tried_at END \
                     WHERE message_id = $1 AND claim = $2",
                )
                .bind(claim.message.0)
                .bind(claim.token)
                .bind(at)
                .execute(&self.writer)
                .await?
                .rows_affected();
                Ok(ours > 0)
            }

            async fn prune(&self) -> StoreResult<u64> {
                let statuses = sqlx::query("DELETE FROM early_statuses WHERE received_at < $1")
                    .bind(now() - chrono::Duration::days(1))
                    .execute(&self.writer)
                    .await?
                    .rows_affected();
                Ok(statuses)
            }

            async fn has_sid(&self, sid: &str) -> StoreResult<bool> {
                let found: Option<i64> =
                    sqlx::query_scalar("SELECT id FROM messages WHERE twilio_sid = $1")
                        .bind(sid)
                        .fetch_optional(&self.reader)
                        .await?;
                Ok(found.is_some())
            }

            async fn queue_stats(&self) -> StoreResult<QueueStats> {
                let (depth, oldest): (i64, Option<DateTime<Utc>>) = sqlx::query_as(
                    "SELECT COUNT(*), MIN(m.created_at) FROM send_jobs j \
                     JOIN messages m ON m.id = j.message_id",
                )
                .fetch_one(&self.reader)
                .await?;
                Ok(QueueStats { depth, oldest })
            }
        }
    };
}

pub(crate) use {
    agent_select, conversation_select, impl_store, message_columns, returning_columns, visible_to,
};
