//! The REST API (docs/api.md), one module per resource, each with its own
//! `router()`: [`session`] (setup, invites, sign-in), [`admin`] (managing agents),
//! [`conversations`] (and their messages), [`send`] (and retry), [`uploads`] (pictures to
//! send), [`replies`] (canned replies), [`sync`], [`media`], [`health`], and [`dev`] (the simulator's routes, only in
//! simulator mode). Handlers parse
//! input into [`crate::domain`] values, call the store, publish through [`crate::events`],
//! and answer with typed bodies.

pub mod admin;
pub mod conversations;
pub mod dev;
pub mod health;
pub mod media;
pub mod replies;
pub mod send;
pub mod session;
pub mod sync;
pub mod uploads;

use axum::Router;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::AppState;
use crate::error::{AppError, AppResult};
use crate::model::EntityId;
use crate::store::Page;

/// Every route of the API but the simulator's.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(session::router())
        .merge(admin::router())
        .merge(conversations::router())
        .merge(send::router())
        .merge(uploads::router())
        .merge(replies::router())
        .merge(sync::router())
        .merge(media::router())
        .merge(health::router())
}

/// The `{id}` of a route's path, as the id type it names. One that cannot be such an id
/// names nothing: a `404`, as for an id that is not there.
pub struct PathId<T>(pub T);

impl<T: EntityId, S: Send + Sync> FromRequestParts<S> for PathId<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> AppResult<Self> {
        let not_found = || AppError::NotFound(T::ENTITY);
        let Path(params) = Path::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|_| not_found())?;
        params
            .into_iter()
            .find(|(name, _)| name == "id")
            .and_then(|(_, raw)| raw.parse().ok())
            .map(Self)
            .ok_or_else(not_found)
    }
}

/// A page's position, handed out as an opaque string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor(pub i64);

impl Serialize for Cursor {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Cursor {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        raw.parse()
            .map(Cursor)
            .map_err(|_| serde::de::Error::custom("a cursor is a string of digits"))
    }
}

/// `?limit=&cursor=` of a paged list.
#[derive(Deserialize)]
pub struct PageQuery {
    limit: Option<String>,
    cursor: Option<String>,
}

/// Reads `limit` (absent or empty: `default`, else 1 to `max`).
fn limit(raw: Option<&str>, default: i64, max: i64) -> AppResult<i64> {
    match raw.filter(|l| !l.is_empty()) {
        None => Ok(default),
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=max).contains(l))
            .ok_or_else(|| AppError::invalid(format!("limit must be a number from 1 to {max}"))),
    }
}

impl PageQuery {
    fn page(&self, default: i64, max: i64) -> AppResult<Page> {
        let limit = limit(self.limit.as_deref(), default, max)?;
        let cursor = match self.cursor.as_deref().filter(|c| !c.is_empty()) {
            None => None,
            Some(c) => Some(
                c.parse::<i64>()
                    .ok()
                    .filter(|c| *c >= 0)
                    .ok_or_else(|| AppError::invalid("cursor is not one this server gave out"))?,
            ),
        };
        Ok(Page { limit, cursor })
    }
}
