//! The connection to Redis that carries socket.io events between instances (`REDIS_URL`):
//! fred's subscriber client, which reconnects by itself, kept subscribed to the adapter's
//! channels across reconnections, and whether it is usable right now.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fred::clients::SubscriberClient;
use fred::prelude::{
    Builder, ClientLike, Config, EventInterface, PubsubInterface, ReconnectPolicy,
};
use fred::types::RespVersion;
use socketioxide_redis::drivers::fred::FredDriver;
use socketioxide_redis::{RedisAdapterConfig, RedisAdapterCtr};

use tokio::sync::broadcast::error::RecvError;

use crate::config::RedisUrl;

/// How long connecting at start may take before startup fails naming `REDIS_URL`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A publish that takes longer fails, and the event goes to this instance's sockets only: a
/// webhook must not wait on a Redis that stopped answering.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(1);
/// Reconnection delays grow from the first to the second, and never stop.
const RECONNECT_MIN_MS: u32 = 100;
const RECONNECT_MAX_MS: u32 = 2_000;
/// Between two attempts to subscribe again after a reconnection.
const RESUBSCRIBE_PAUSE: Duration = Duration::from_millis(200);
/// Events received from Redis wait in fred's broadcast channel, then in the adapter's, for
/// their turn; beyond this many in either, events are dropped (fred's default is 32, which a
/// busy second was seen to overflow). A dropped event is caught up by `sync` on reconnect.
const RECEIVE_BUFFER: usize = 4096;
/// Channel names start with this, so smsdesk can share a Redis with other applications.
const CHANNEL_PREFIX: &str = "smsdesk";

/// A connected Redis, cheap to clone.
#[derive(Clone)]
pub struct Redis {
    client: SubscriberClient,
    /// Whether every channel of the adapter is subscribed on the current connection.
    subscribed: Arc<AtomicBool>,
}

impl Redis {
    /// Connects, and returns the adapter's constructor with it. The error names `REDIS_URL`,
    /// never its password.
    pub async fn connect(url: &RedisUrl) -> anyhow::Result<(Self, RedisAdapterCtr<FredDriver>)> {
        let cannot =
            |why: String| anyhow::anyhow!("REDIS_URL: cannot use {} ({why})", url.redacted());
        let mut config =
            Config::from_url(url.expose()).map_err(|e| cannot(e.details().to_owned()))?;
        // The adapter publishes on its subscribed connection, which RESP2 does not allow.
        config.version = RespVersion::RESP3;
        let client = Builder::from_config(config)
            .with_performance_config(|c| {
                c.default_command_timeout = COMMAND_TIMEOUT;
                c.broadcast_channel_capacity = RECEIVE_BUFFER;
            })
            .with_connection_config(|c| c.connection_timeout = CONNECT_TIMEOUT)
            .set_policy(ReconnectPolicy::new_exponential(
                0,
                RECONNECT_MIN_MS,
                RECONNECT_MAX_MS,
                2,
            ))
            .build_subscriber_client()
            .map_err(|e| cannot(e.details().to_owned()))?;
        let adapter_config = RedisAdapterConfig::new()
            .with_prefix(CHANNEL_PREFIX)
            .with_stream_buffer(RECEIVE_BUFFER);
        let adapter = tokio::time::timeout(
            CONNECT_TIMEOUT,
            RedisAdapterCtr::new_with_fred_config(client.clone(), adapter_config),
        )
        .await
        .map_err(|_| cannot(format!("no answer within {CONNECT_TIMEOUT:?}")))?
        .map_err(|e| cannot(e.to_string()))?;
        let redis = Self {
            client,
            subscribed: Arc::new(AtomicBool::new(false)),
        };
        redis.keep_subscribed();
        Ok((redis, adapter))
    }

    /// Marks the adapter's channels subscribed once its namespace is initialised.
    pub fn subscribed(&self) {
        self.subscribed.store(true, Ordering::SeqCst);
    }

    /// Whether events published now reach the other instances, and theirs reach this one:
    /// connected, with every channel subscribed again since the last reconnection.
    pub fn is_up(&self) -> bool {
        self.client.is_connected() && self.subscribed.load(Ordering::SeqCst)
    }

    /// Closes the connection (at shutdown, after the adapter unsubscribed).
    pub async fn quit(&self) {
        let _ = self.client.quit().await;
    }

    /// Subscribes again to the adapter's channels, which are all sharded channels. (fred's
    /// `resubscribe_all` also sends an empty `SUBSCRIBE`, which Redis refuses.)
    async fn resubscribe(&self) -> Result<(), fred::error::Error> {
        for channel in self.client.tracked_shard_channels() {
            self.client.ssubscribe(channel.to_string()).await?;
        }
        Ok(())
    }

    /// On every lost or renewed connection: not subscribed, until every channel the adapter
    /// uses is subscribed again. fred reconnects by itself but subscribes again only when told.
    fn keep_subscribed(&self) {
        let mut errors = self.client.error_rx();
        let mut reconnects = self.client.reconnect_rx();
        let redis = self.clone();
        tokio::spawn(async move {
            loop {
                let error = tokio::select! {
                    error = errors.recv() => match error {
                        Err(RecvError::Closed) => return,
                        Ok((e, _)) => Some(e),
                        Err(RecvError::Lagged(_)) => None,
                    },
                    reconnect = reconnects.recv() => match reconnect {
                        Err(RecvError::Closed) => return,
                        _ => None,
                    },
                };
                if redis.subscribed.swap(false, Ordering::SeqCst)
                    && let Some(e) = error
                {
                    tracing::warn!(error = %e, "Redis connection lost: events reach this instance's sockets only until it is back");
                }
                while let Err(e) = redis.resubscribe().await {
                    tracing::debug!(error = %e, "Redis: subscribing again failed; retrying");
                    tokio::time::sleep(RESUBSCRIBE_PAUSE).await;
                }
                redis.subscribed.store(true, Ordering::SeqCst);
                tracing::info!("Redis connected and subscribed: events reach every instance");
            }
        });
    }
}
