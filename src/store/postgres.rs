//! PostgreSQL, for production.

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::sql::{
    agent_select, conversation_select, impl_store, message_columns, returning_columns, visible_to,
};

pub struct PgStore {
    watermark: super::Watermark,
    reader: PgPool,
    writer: PgPool,
}

impl PgStore {
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let options: PgConnectOptions = url.parse()?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(std::time::Duration::from_secs(3))
            .connect_with(options.application_name("smsdesk"))
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self {
            watermark: super::Watermark::default(),
            reader: pool.clone(),
            writer: pool,
        })
    }
}

impl_store!(PgStore, sqlx::Postgres, backend: "postgres", agg: "string_agg", skip_locked: " FOR UPDATE SKIP LOCKED", next_seq: "SELECT nextval('change_seq')");
