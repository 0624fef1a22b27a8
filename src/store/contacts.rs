//! What agents say about a contact: the name they gave it (docs/api.md, "Conversations").

use super::db::on_tx;
use super::reads::{audience, conversation_by_id};
use super::{ConversationChange, Store, StoreResult};
use crate::domain::ContactName;
use crate::model::{ConversationId, now};

impl Store {
    /// Names the conversation's contact (`None` clears the name), for everyone who holds its
    /// number. Its place in the list does not change.
    #[tracing::instrument(skip_all, err)]
    pub async fn rename_contact(
        &self,
        conversation: ConversationId,
        name: Option<&ContactName>,
    ) -> StoreResult<ConversationChange> {
        let mut tx = self.writer.begin().await?;
        on_tx!(&mut tx, |db| {
            sqlx::query("UPDATE conversations SET contact_name = $2, updated_at = $3 WHERE id = $1")
                .bind(conversation)
                .bind(name.map(ContactName::as_str))
                .bind(now())
                .execute(db)
                .await
                .map(|r| r.rows_affected())
        })?;
        let renamed = conversation_by_id(&mut tx, conversation).await?;
        let audience = audience(&mut tx, conversation).await?;
        tx.commit().await?;
        Ok(ConversationChange {
            conversation: renamed,
            audience,
        })
    }
}
