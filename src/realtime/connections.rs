//! What clients hold here, and how much of it: sockets per agent (and their sessions, by
//! when they expire), and engine.io sessions that have not joined the namespace (in all,
//! and per client address).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use crate::auth::{address_key, client_address};
use crate::config::TrustedProxies;
use crate::error::AppError;
use crate::model::AgentId;

/// The sockets connected here: how many each agent holds (at most `MAX_SOCKETS_PER_AGENT`),
/// and their sessions by when they expire, so housekeeping can wake when the first one does
/// and ask the database whether the others still hold.
pub struct Connections {
    max_per_agent: usize,
    state: Mutex<ConnectionsState>,
    /// Told when a socket brings a session expiry, which may be the next one.
    pub expiries_changed: Notify,
    /// Sockets come and gone since start: memory is given back once it stops moving.
    churn: AtomicU64,
}

#[derive(Default)]
struct ConnectionsState {
    per_agent: HashMap<AgentId, usize>,
    /// Sockets per (expiry, session token hash).
    expiries: BTreeMap<(DateTime<Utc>, Arc<str>), usize>,
}

/// A socket's place among its agent's, given back when the socket goes.
pub(super) struct Place {
    connections: Arc<Connections>,
    agent: AgentId,
    session: (DateTime<Utc>, Arc<str>),
}

impl Drop for Place {
    fn drop(&mut self) {
        self.connections.churn.fetch_add(1, Ordering::Relaxed);
        let mut state = self.connections.lock();
        if let Some(n) = state.per_agent.get_mut(&self.agent) {
            *n -= 1;
            if *n == 0 {
                state.per_agent.remove(&self.agent);
            }
        }
        if let Some(n) = state.expiries.get_mut(&self.session) {
            *n -= 1;
            if *n == 0 {
                state.expiries.remove(&self.session);
            }
        }
    }
}

impl Connections {
    pub fn new(max_per_agent: usize) -> Arc<Self> {
        Arc::new(Self {
            max_per_agent,
            state: Mutex::default(),
            expiries_changed: Notify::new(),
            churn: AtomicU64::new(0),
        })
    }

    /// How many sockets have connected or gone since start.
    pub fn churn(&self) -> u64 {
        self.churn.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ConnectionsState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A place for one more socket of `agent`, of the session with this token hash, unless
    /// the agent holds the most it may.
    pub(super) fn take(
        self: &Arc<Self>,
        agent: AgentId,
        token_hash: Arc<str>,
        expires_at: DateTime<Utc>,
    ) -> Option<Place> {
        let session = (expires_at, token_hash);
        let first_to_expire = {
            let mut state = self.lock();
            let held = state.per_agent.entry(agent).or_default();
            if *held >= self.max_per_agent {
                return None;
            }
            *held += 1;
            *state.expiries.entry(session.clone()).or_default() += 1;
            state.expiries.keys().next() == Some(&session)
        };
        if first_to_expire {
            self.expiries_changed.notify_one();
        }
        self.churn.fetch_add(1, Ordering::Relaxed);
        Some(Place {
            connections: self.clone(),
            agent,
            session,
        })
    }

    /// How many sockets are connected here.
    pub fn sockets(&self) -> usize {
        self.lock().per_agent.values().sum()
    }

    /// When the first session with a socket here expires.
    pub fn next_expiry(&self) -> Option<DateTime<Utc>> {
        self.lock().expiries.keys().next().map(|(t, _)| *t)
    }

    /// The token hashes of the sessions that have a socket here.
    pub(super) fn sessions(&self) -> Vec<Arc<str>> {
        self.lock()
            .expiries
            .keys()
            .map(|(_, hash)| hash.clone())
            .collect()
    }

    /// The token hashes of the sessions expired by `now`, taken off the clock.
    pub(super) fn take_expired(&self, now: DateTime<Utc>) -> Vec<Arc<str>> {
        let mut state = self.lock();
        let mut expired = Vec::new();
        while let Some(entry) = state.expiries.first_entry() {
            if entry.key().0 > now {
                break;
            }
            expired.push(entry.remove_entry().0.1);
        }
        expired
    }
}

/// engine.io sessions that have not joined the namespace (yet, or ever: a failed
/// handshake's session lives until `CONNECT_TIMEOUT`), counted so that there are at most
/// `MAX_UNCONNECTED_SESSIONS` at once, and at most `MAX_UNCONNECTED_PER_ADDRESS` of one
/// client address (so one address cannot take every place); more handshakes get `503`.
pub struct UnjoinedSessions {
    limit: usize,
    per_address: usize,
    /// Whose `X-Forwarded-For` names the client, as for login throttling.
    trusted_proxies: TrustedProxies,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    all: usize,
    /// Per client address (IPv6 by /64, as login throttling counts them); no zeros.
    by_address: HashMap<IpAddr, usize>,
}

/// One unjoined session's place, carried in its handshake request (which engine.io keeps
/// for the session's life): given back when the session joins the namespace or ends.
#[derive(Clone)]
pub(super) struct Unjoined(Arc<UnjoinedPlace>);

struct UnjoinedPlace {
    sessions: Arc<UnjoinedSessions>,
    address: IpAddr,
    given_back: AtomicBool,
}

impl Unjoined {
    pub(super) fn joined(&self) {
        self.0.give_back();
    }
}

impl UnjoinedPlace {
    fn give_back(&self) {
        if !self.given_back.swap(true, Ordering::SeqCst) {
            let mut open = self.sessions.lock();
            open.all -= 1;
            if let Some(n) = open.by_address.get_mut(&self.address) {
                *n -= 1;
                if *n == 0 {
                    open.by_address.remove(&self.address);
                }
            }
        }
    }
}

impl Drop for UnjoinedPlace {
    fn drop(&mut self) {
        self.give_back();
    }
}

impl UnjoinedSessions {
    pub fn new(limit: usize, per_address: usize, trusted_proxies: TrustedProxies) -> Arc<Self> {
        Arc::new(Self {
            limit,
            per_address,
            trusted_proxies,
            open: Mutex::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A place for a session of the client at `address`, unless there is none left in all
    /// or for that address.
    fn open(self: &Arc<Self>, address: IpAddr) -> Option<Unjoined> {
        let address = address_key(address);
        let mut open = self.lock();
        let of_address = open.by_address.get(&address).copied().unwrap_or(0);
        if open.all >= self.limit || of_address >= self.per_address {
            return None;
        }
        open.all += 1;
        open.by_address.insert(address, of_address + 1);
        Some(Unjoined(Arc::new(UnjoinedPlace {
            sessions: self.clone(),
            address,
            given_back: AtomicBool::new(false),
        })))
    }

    /// The client's address of a request, as login throttling reads it.
    fn client_of(&self, request: &Request) -> IpAddr {
        // The accept loop (`serve.rs`) always sets it; without it, all share one place.
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
        client_address(peer, request.headers(), &self.trusted_proxies)
    }
}

/// Middleware in front of socket.io: a request that opens a new engine.io session (no
/// `sid`) takes a place, or gets `503` when none is left.
pub async fn admit_handshakes(
    State(sessions): State<Arc<UnjoinedSessions>>,
    mut request: Request,
    next: Next,
) -> Response {
    let opens_a_session = request.uri().path().starts_with("/socket.io/")
        && !url::form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes())
            .any(|(k, _)| k == "sid");
    if opens_a_session {
        match sessions.open(sessions.client_of(&request)) {
            Some(place) => {
                request.extensions_mut().insert(place);
            }
            None => {
                tracing::debug!(
                    "[Socket.io] refused a handshake: too many sessions not connected yet"
                );
                return AppError::Busy("too many connections are opening; try again in a second")
                    .into_response();
            }
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(n: u32) -> AgentId {
        n.to_string().parse().unwrap()
    }

    #[test]
    fn sockets_per_agent_are_capped_and_given_back() {
        let c = Connections::new(2);
        let later = Utc::now() + chrono::Duration::hours(1);
        let first = c.take(agent(1), "session:a".into(), later).unwrap();
        let _second = c.take(agent(1), "session:a".into(), later).unwrap();
        assert!(c.take(agent(1), "session:b".into(), later).is_none());
        assert_eq!(c.sockets(), 2);
        assert!(c.take(agent(2), "session:c".into(), later).is_some());
        drop(first);
        assert!(c.take(agent(1), "session:b".into(), later).is_some());
        assert_eq!(c.sockets(), 1, "the places given back are not counted");
    }

    #[test]
    fn the_clock_knows_the_next_expiry_of_a_connected_session() {
        let c = Connections::new(10);
        let now = Utc::now();
        let soon = now + chrono::Duration::seconds(1);
        let later = now + chrono::Duration::hours(1);
        let early = c.take(agent(1), "session:soon".into(), soon).unwrap();
        let _late = c.take(agent(1), "session:later".into(), later).unwrap();
        assert_eq!(c.next_expiry(), Some(soon));
        assert!(c.take_expired(now).is_empty());
        assert_eq!(c.take_expired(soon), vec![Arc::<str>::from("session:soon")]);
        assert_eq!(c.next_expiry(), Some(later));
        drop(early);
        assert_eq!(c.next_expiry(), Some(later));
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn unjoined_sessions_are_capped_and_given_back_once() {
        let sessions = UnjoinedSessions::new(2, 10, TrustedProxies::default());
        let here = ip("192.0.2.1");
        let a = sessions.open(here).unwrap();
        let b = sessions.open(ip("192.0.2.2")).unwrap();
        assert!(sessions.open(ip("192.0.2.3")).is_none(), "none left in all");
        a.joined();
        a.joined();
        let c = sessions.open(here).unwrap();
        assert!(sessions.open(here).is_none());
        drop(a);
        assert!(
            sessions.open(here).is_none(),
            "joined twice or dropped: given back once"
        );
        drop((b, c));
        let open = sessions.lock();
        assert_eq!(open.all, 0);
        assert!(open.by_address.is_empty());
    }

    #[test]
    fn one_address_takes_at_most_its_share() {
        let sessions = UnjoinedSessions::new(10, 2, TrustedProxies::default());
        let held: Vec<_> = ["192.0.2.1", "192.0.2.1", "2001:db8::1", "2001:db8::2"]
            .iter()
            .map(|a| sessions.open(ip(a)).expect("within its share"))
            .collect();
        assert!(sessions.open(ip("192.0.2.1")).is_none());
        assert!(
            sessions.open(ip("2001:db8::ffff")).is_none(),
            "an IPv6 /64 is one address"
        );
        assert!(
            sessions.open(ip("::ffff:192.0.2.1")).is_none(),
            "mapped IPv4"
        );
        assert!(sessions.open(ip("192.0.2.9")).is_some(), "another address");
        held[0].joined();
        assert!(sessions.open(ip("192.0.2.1")).is_some(), "its place back");
    }
}
