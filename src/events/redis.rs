//! The connection to Redis that carries socket.io events between instances (`REDIS_URL`):
//! fred's subscriber client, which connects and reconnects by itself (an instance started
//! while Redis is down starts without it), the adapter's channels over it ([`Channels`]),
//! kept subscribed across reconnections, and whether it is usable right now.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use fred::clients::SubscriberClient;
use fred::prelude::{
    Builder, ClientLike, Config, EventInterface, Expiration, KeysInterface, PubsubInterface,
    ReconnectPolicy, SetOptions,
};
use fred::types::{Message, RespVersion};
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use socketioxide_redis::{CustomRedisAdapter, RedisAdapterConfig, RedisAdapterCtr};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc, watch};

use crate::config::RedisUrl;

/// How long the start waits for Redis before it goes on without it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A publish that takes longer fails, and the event goes to this instance's sockets only: a
/// webhook must not wait on a Redis that stopped answering.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(1);
/// Reconnection delays grow from the first to the second, and never stop.
const RECONNECT_MIN_MS: u32 = 100;
const RECONNECT_MAX_MS: u32 = 2_000;
/// Between two attempts to subscribe again on one connection.
const RESUBSCRIBE_PAUSE: Duration = Duration::from_millis(200);
/// Events received from Redis wait in fred's broadcast channel, then in the adapter's, for
/// their turn; beyond this many in either, events are dropped (fred's default is 32, which a
/// busy second was seen to overflow). A dropped event is caught up by `sync` on reconnect.
const RECEIVE_BUFFER: usize = 4096;
/// Channel names and keys start with this, so smsdesk can share a Redis with other
/// applications.
const PREFIX: &str = "smsdesk";

/// socketioxide's Redis adapter over [`Channels`].
pub type RedisAdapter<E> = CustomRedisAdapter<E, Channels>;

/// The connection to Redis, cheap to clone.
#[derive(Clone)]
pub struct Redis {
    client: SubscriberClient,
    channels: Channels,
    /// `REDIS_URL` without its password, for the logs.
    redacted: Arc<str>,
    link: Arc<Mutex<Link>>,
    /// How many times every channel was subscribed on a new connection.
    subscriptions: Arc<watch::Sender<u64>>,
}

impl Redis {
    /// The client for `url`, not connected yet. The error names `REDIS_URL`, never its
    /// password.
    pub fn new(url: &RedisUrl) -> anyhow::Result<Self> {
        let cannot =
            |why: String| anyhow::anyhow!("REDIS_URL: cannot use {} ({why})", url.redacted());
        let mut config =
            Config::from_url(url.expose()).map_err(|e| cannot(e.details().to_owned()))?;
        // The adapter publishes on its subscribed connection, which RESP2 does not allow.
        config.version = RespVersion::RESP3;
        // The first connection is retried like any other: a Redis down at start is one that
        // is down, not a reason to stay down.
        config.fail_fast = false;
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
        Ok(Self {
            channels: Channels::new(client.clone()),
            client,
            redacted: url.redacted().into(),
            link: Arc::default(),
            subscriptions: Arc::new(watch::Sender::new(0)),
        })
    }

    /// The adapter's constructor, for socket.io's builder.
    pub fn adapter(&self) -> RedisAdapterCtr<Channels> {
        let config = RedisAdapterConfig::new()
            .with_prefix(PREFIX)
            .with_stream_buffer(RECEIVE_BUFFER);
        RedisAdapterCtr::new_with_driver(self.channels.clone(), config)
    }

    /// Connects, and keeps every channel the adapter recorded subscribed on each new
    /// connection. Waits for the first subscription, or the first failure (at most
    /// [`CONNECT_TIMEOUT`]): without Redis, the instance starts as it runs while Redis is
    /// down, and connects when Redis is back.
    pub async fn connect(&self) {
        let mut errors = self.client.error_rx();
        let mut subscriptions = self.subscriptions.subscribe();
        self.keep_subscribed();
        drop(self.client.connect());
        let first_failure = async {
            tokio::select! {
                _ = subscriptions.changed() => None,
                error = errors.recv() => Some(error.map_or_else(|e| e.to_string(), |(e, _)| e.to_string())),
            }
        };
        let why = match tokio::time::timeout(CONNECT_TIMEOUT, first_failure).await {
            Ok(None) => return,
            Ok(Some(error)) => error,
            Err(_) => format!("no answer within {CONNECT_TIMEOUT:?}"),
        };
        tracing::warn!(
            redis = %self.redacted,
            error = why,
            "REDIS_URL: Redis is not answering; starting without it (events reach this instance's sockets only) and connecting when it is back"
        );
    }

    /// Whether events published now reach the other instances, and theirs reach this one:
    /// connected, with every channel subscribed again since the last reconnection.
    pub fn is_up(&self) -> bool {
        self.client.is_connected() && self.link().subscribed
    }

    /// [`Redis::is_up`], for an event about to be emitted: when it is not, the event reaches
    /// this instance's sockets only, which is recorded (under the same lock as a new
    /// subscription, so none is taken for the other side of it).
    pub fn publishing(&self) -> bool {
        let mut link = self.link();
        let up = self.client.is_connected() && link.subscribed;
        if !up {
            link.delivered_here_only = true;
        }
        up
    }

    /// An event whose publish failed went to this instance's sockets only.
    pub fn delivered_here_only(&self) {
        self.link().delivered_here_only = true;
    }

    /// Once subscribed again: whether events went to this instance's sockets only since it
    /// was last subscribed, so that the other instances' sockets missed them. Told once.
    pub fn take_delivered_here_only(&self) -> bool {
        let mut link = self.link();
        link.subscribed && std::mem::take(&mut link.delivered_here_only)
    }

    fn link(&self) -> MutexGuard<'_, Link> {
        self.link.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes each time every channel was subscribed on a new connection: what the other
    /// instances published meanwhile never reached this one.
    pub fn subscriptions(&self) -> watch::Receiver<u64> {
        self.subscriptions.subscribe()
    }

    /// Claims `key` for `window` unless it is claimed already, across every instance:
    /// `Some(true)` when this call claimed it, `Some(false)` when it was claimed, `None` when
    /// Redis cannot tell now.
    pub async fn claim(&self, key: &str, window: Duration) -> Option<bool> {
        if !self.is_up() {
            return None;
        }
        let millis = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        let set: Result<Option<String>, _> = self
            .client
            .set(
                format!("{PREFIX}:{key}"),
                "1",
                Some(Expiration::PX(millis)),
                Some(SetOptions::NX),
                false,
            )
            .await;
        match set {
            Ok(claimed) => Some(claimed.is_some()),
            Err(e) => {
                tracing::debug!(error = %e, "Redis: claim failed");
                None
            }
        }
    }

    /// Closes the connection (at shutdown, after the adapter unsubscribed).
    pub async fn quit(&self) {
        let _ = self.client.quit().await;
    }

    /// On every lost connection: not subscribed; on every new one (the first included),
    /// subscribes every channel again. fred reconnects by itself but subscribes again only
    /// when told.
    fn keep_subscribed(&self) {
        let mut errors = self.client.error_rx();
        let mut reconnects = self.client.reconnect_rx();
        let redis = self.clone();
        tokio::spawn(async move {
            loop {
                // Errors first: the loss of a connection is told before the next one.
                tokio::select! {
                    biased;
                    error = errors.recv() => match error {
                        Err(RecvError::Closed) => return,
                        Ok((e, _)) => redis.lost(&e.to_string()),
                        Err(RecvError::Lagged(_)) => redis.lost("errors missed"),
                    },
                    reconnect = reconnects.recv() => match reconnect {
                        Err(RecvError::Closed) => return,
                        _ => {
                            redis.lost("reconnected");
                            redis.subscribe_all().await;
                        }
                    },
                }
            }
        });
    }

    fn lost(&self, why: &str) {
        if std::mem::replace(&mut self.link().subscribed, false) {
            tracing::warn!(
                error = why,
                "Redis connection lost: events reach this instance's sockets only until it is back"
            );
        }
    }

    /// Subscribes every channel on the new connection, trying again while it lasts (a
    /// connection lost meanwhile is followed by another, which subscribes them).
    async fn subscribe_all(&self) {
        loop {
            match self.channels.subscribe_all().await {
                Ok(()) => {
                    self.link().subscribed = true;
                    self.subscriptions.send_modify(|n| *n += 1);
                    tracing::info!("Redis connected and subscribed: events reach every instance");
                    return;
                }
                Err(e) if self.client.is_connected() => {
                    tracing::debug!(error = %e, "Redis: subscribing again failed; retrying");
                    tokio::time::sleep(RESUBSCRIBE_PAUSE).await;
                }
                Err(_) => return,
            }
        }
    }
}

/// The state of the subscription.
#[derive(Default)]
struct Link {
    /// Whether every channel of the adapter is subscribed on the current connection.
    subscribed: bool,
    /// Whether an event reached this instance's sockets only since then.
    delivered_here_only: bool,
}

/// The adapter's channels over the subscriber client: what it publishes goes out on the
/// connection of the moment, and what arrives on a channel goes to the adapter's stream for
/// it. Subscribing only records the channel, and [`Redis`] subscribes every recorded one on
/// each new connection, so the adapter starts whether Redis answers or not. (socketioxide's
/// own fred driver waits for the connection at start, and fails without it.)
#[derive(Clone)]
pub struct Channels {
    client: SubscriberClient,
    streams: Arc<RwLock<HashMap<String, mpsc::Sender<ChanItem>>>>,
}

impl Channels {
    fn new(client: SubscriberClient) -> Self {
        let channels = Self {
            streams: Arc::default(),
            client,
        };
        tokio::spawn(pump(channels.client.message_rx(), channels.streams.clone()));
        channels
    }

    fn names(&self) -> Vec<String> {
        self.streams
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    /// Subscribes every recorded channel, which are all sharded channels. (fred's
    /// `resubscribe_all` also sends an empty `SUBSCRIBE`, which Redis refuses.)
    async fn subscribe_all(&self) -> Result<(), fred::error::Error> {
        for channel in self.names() {
            self.client.ssubscribe(channel).await?;
        }
        Ok(())
    }
}

/// Hands each message received to the stream of its channel.
async fn pump(
    mut messages: broadcast::Receiver<Message>,
    streams: Arc<RwLock<HashMap<String, mpsc::Sender<ChanItem>>>>,
) {
    loop {
        let message = match messages.recv().await {
            Ok(message) => message,
            Err(RecvError::Closed) => return,
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(
                    dropped = n,
                    "Redis: events dropped, more than the buffer holds"
                );
                continue;
            }
        };
        let channel = message.channel.to_string();
        let Some(data) = message.value.into_owned_bytes() else {
            continue;
        };
        let stream = streams
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&channel)
            .cloned();
        if let Some(stream) = stream
            && let Err(e) = stream.try_send((channel, data))
        {
            tracing::warn!(error = %e, "Redis: an event dropped, more than the buffer holds");
        }
    }
}

impl Driver for Channels {
    type Error = fred::error::Error;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), Self::Error> {
        self.client.spublish::<u16, _, _>(chan, val).await?;
        Ok(())
    }

    async fn subscribe(
        &self,
        chan: String,
        size: usize,
    ) -> Result<MessageStream<ChanItem>, Self::Error> {
        let (tx, rx) = mpsc::channel(size);
        self.streams
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(chan, tx);
        Ok(MessageStream::new(rx))
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), Self::Error> {
        self.streams
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&chan);
        if self.client.is_connected() {
            self.client.sunsubscribe(chan).await?;
        }
        Ok(())
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, Self::Error> {
        let (_, count): (String, u16) = self.client.pubsub_shardnumsub(chan).await?;
        Ok(count)
    }
}
