//! Pictures agents send (docs/api.md, "Sending pictures"): uploads kept with their owner
//! until a message holds them (or a day passes), and the pictures of outbound messages, each
//! with the random token Twilio fetches it by.

use sqlx::Connection;

use super::db::{Tx, on_pool, on_tx};
use super::{Store, StoreResult};
use crate::domain::Picture;
use crate::model::{AgentId, Media, MessageId, UploadId, now};

/// How many pictures go to or come from the database at once. A picture is copied on its way
/// (PostgreSQL's driver encodes it into the statement's arguments, then into the connection's
/// buffer), so this bounds those copies, not the uploads being received.
pub(super) const PICTURES_AT_ONCE: usize = 1;

/// How long an upload no message holds is kept.
pub const UNSENT_UPLOAD_LIFETIME: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// How long Twilio may fetch a message's pictures after it was sent.
pub const MEDIA_LINK_LIFETIME: chrono::TimeDelta = chrono::TimeDelta::days(7);

/// The most pictures one message carries (Twilio's limit).
pub const MAX_PICTURES: usize = 10;

/// An upload as its owner hears of it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Upload {
    pub id: UploadId,
    pub content_type: String,
    pub size: i64,
}

/// A stored picture, as it is served.
#[derive(Debug)]
pub struct StoredPicture {
    pub content_type: String,
    pub bytes: Vec<u8>,
}

#[derive(sqlx::FromRow)]
struct PictureRow {
    content_type: String,
    bytes: Vec<u8>,
}

impl From<PictureRow> for StoredPicture {
    fn from(r: PictureRow) -> Self {
        Self {
            content_type: r.content_type,
            bytes: r.bytes,
        }
    }
}

/// What the pictures asked for a send are.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Pictures {
    /// Each, in order, with its content type.
    Found(Vec<(UploadId, String)>),
    /// This one is not an upload of the sender's (or no longer exists).
    Unknown(UploadId),
    /// Together they are more than an MMS takes.
    TooLarge,
}

impl Store {
    /// Keeps `bytes`, a picture of `kind`, as an upload of `agent`. The bytes are bound once,
    /// by value: no copy of them is made on the way to the database but the driver's own, and
    /// the connection gives back the buffer it grew for them.
    #[tracing::instrument(skip_all, err)]
    pub async fn insert_upload(
        &self,
        agent: AgentId,
        kind: Picture,
        bytes: Vec<u8>,
    ) -> StoreResult<Upload> {
        let size = bytes.len() as i64;
        let _turn = self.pictures.acquire().await.expect("never closed");
        let id: UploadId = on_pool!(&self.writer, |db| {
            let mut conn = db.acquire().await?;
            let inserted = sqlx::query_scalar(
                "INSERT INTO uploads (agent_id, content_type, size, bytes, created_at) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(agent)
            .bind(kind.content_type())
            .bind(size)
            .bind(bytes)
            .bind(now())
            .fetch_one(&mut *conn)
            .await;
            conn.shrink_buffers();
            inserted
        })?;
        Ok(Upload {
            id,
            content_type: kind.content_type().to_owned(),
            size,
        })
    }

    /// Picture `n` of outbound message `message`.
    #[tracing::instrument(skip_all, err)]
    pub async fn message_picture(
        &self,
        message: MessageId,
        n: i64,
    ) -> StoreResult<Option<StoredPicture>> {
        let _turn = self.pictures.acquire().await.expect("never closed");
        let row: Option<PictureRow> = on_pool!(&self.reader, |db| {
            let mut conn = db.acquire().await?;
            let read = sqlx::query_as(
                "SELECT u.content_type, u.bytes FROM message_media mm \
                 JOIN uploads u ON u.id = mm.upload_id WHERE mm.message_id = $1 AND mm.n = $2",
            )
            .bind(message)
            .bind(n)
            .fetch_optional(&mut *conn)
            .await;
            conn.shrink_buffers();
            read
        })?;
        Ok(row.map(Into::into))
    }

    /// The picture a media link's token names, while the link lasts.
    #[tracing::instrument(skip_all, err)]
    pub async fn linked_picture(&self, token: &str) -> StoreResult<Option<StoredPicture>> {
        let _turn = self.pictures.acquire().await.expect("never closed");
        let row: Option<PictureRow> = on_pool!(&self.reader, |db| {
            let mut conn = db.acquire().await?;
            let read = sqlx::query_as(
                "SELECT u.content_type, u.bytes FROM message_media mm \
                 JOIN uploads u ON u.id = mm.upload_id WHERE mm.token = $1 AND mm.expires_at > $2",
            )
            .bind(token)
            .bind(now())
            .fetch_optional(&mut *conn)
            .await;
            conn.shrink_buffers();
            read
        })?;
        Ok(row.map(Into::into))
    }

    /// Deletes the uploads that no message holds and that came more than
    /// [`UNSENT_UPLOAD_LIFETIME`] ago.
    #[tracing::instrument(skip_all, err)]
    pub async fn prune_uploads(&self) -> StoreResult<u64> {
        let before = now() - UNSENT_UPLOAD_LIFETIME;
        let pruned = on_pool!(&self.writer, |db| {
            sqlx::query(
                "DELETE FROM uploads WHERE created_at < $1 AND NOT EXISTS \
                 (SELECT 1 FROM message_media mm WHERE mm.upload_id = uploads.id)",
            )
            .bind(before)
            .execute(db)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(pruned)
    }
}

/// The uploads of `agent` that `ids` name, checked: each the agent's, and at most
/// [`Picture::MAX_BYTES`] together.
pub(super) async fn pictures_of(
    tx: &mut Tx,
    agent: AgentId,
    ids: &[UploadId],
) -> StoreResult<Pictures> {
    let mut found = Vec::with_capacity(ids.len());
    let mut total = 0;
    for &id in ids {
        let upload: Option<(String, i64)> = on_tx!(&mut *tx, |db| {
            sqlx::query_as("SELECT content_type, size FROM uploads WHERE id = $1 AND agent_id = $2")
                .bind(id)
                .bind(agent)
                .fetch_optional(db)
                .await
        })?;
        let Some((content_type, size)) = upload else {
            return Ok(Pictures::Unknown(id));
        };
        total += size;
        found.push((id, content_type));
    }
    if total > Picture::MAX_BYTES as i64 {
        return Ok(Pictures::TooLarge);
    }
    Ok(Pictures::Found(found))
}

/// The pictures of message `id`, in order, with their content types.
pub(super) async fn pictures_of_message(
    tx: &mut Tx,
    id: MessageId,
) -> StoreResult<Vec<(UploadId, String)>> {
    let pictures = on_tx!(tx, |db| {
        sqlx::query_as(
            "SELECT mm.upload_id, u.content_type FROM message_media mm \
             JOIN uploads u ON u.id = mm.upload_id WHERE mm.message_id = $1 ORDER BY mm.n",
        )
        .bind(id)
        .fetch_all(db)
        .await
    })?;
    Ok(pictures)
}

/// Gives new message `id` its pictures, each with a new media link, and returns its `media`
/// as the API shows it (and stores it, as for inbound media). `None`: an upload was deleted
/// meanwhile (pruned), and the transaction must not commit.
pub(super) async fn attach_pictures(
    tx: &mut Tx,
    id: MessageId,
    pictures: &[(UploadId, String)],
) -> StoreResult<Option<Vec<Media>>> {
    let expires = now() + MEDIA_LINK_LIFETIME;
    let mut media = Vec::with_capacity(pictures.len());
    for (n, (upload, content_type)) in pictures.iter().enumerate() {
        let attached = on_tx!(&mut *tx, |db| {
            sqlx::query(
                "INSERT INTO message_media (message_id, n, upload_id, token, expires_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(id)
            .bind(n as i64)
            .bind(upload)
            .bind(new_token())
            .bind(expires)
            .execute(db)
            .await
            .map(|r| r.rows_affected())
        });
        match attached {
            Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => return Ok(None),
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        media.push(Media {
            url: format!("/api/crm/sms/messages/{id}/media/{n}"),
            content_type: content_type.clone(),
        });
    }
    let json = serde_json::to_string(&media).expect("media serialise");
    on_tx!(tx, |db| {
        sqlx::query("UPDATE messages SET media = $2 WHERE id = $1")
            .bind(id)
            .bind(json)
            .execute(db)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(Some(media))
}

/// A media link's token: 128 bits from a cryptographically secure generator, as 32 hex
/// digits. It is the link's only key.
fn new_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Whether `token` could be one [`new_token`] made: anything else is not looked up.
pub fn is_token(token: &str) -> bool {
    token.len() == 32
        && token
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
