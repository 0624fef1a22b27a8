//! Login throttling (docs/security.md, "Logins"): failed logins are counted per client address and per
//! account (the normalised email, known or not) over a sliding window. An attempt is
//! counted when it starts, before its password is checked, so parallel guesses cannot
//! outrun the count; a success takes its own attempt back and clears its account's
//! failures, never the address's. After a few failures each attempt is slowed down.
//!
//! The counts live in the database (`store/logins.rs`), so every instance counts every
//! instance's failures, and attempts on the same address or account take their turns there:
//! parallel guesses on any number of instances get exactly as far as sequential ones.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

use crate::config::TrustedProxies;
use crate::error::AppError;
use crate::store::{DbTime, FailureCount, LoginSubjects, Store, StoreError};

/// Failures older than this no longer count.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
pub const MAX_PER_ADDRESS: usize = 10;
pub const MAX_PER_ACCOUNT: usize = 30;
/// From this many failures on, each attempt waits [`SLOWDOWN_STEP`] more, up to [`MAX_SLOWDOWN`].
const SLOW_AFTER: usize = 3;
const SLOWDOWN_STEP: Duration = Duration::from_millis(250);
const MAX_SLOWDOWN: Duration = Duration::from_secs(2);

/// An attempt that was let through, counted as a failure unless it is settled otherwise.
#[derive(Debug)]
pub struct Attempt {
    id: i64,
    address: String,
    account: String,
    /// How long to wait before checking the password.
    pub delay: Duration,
}

/// Too many failures: come back after `retry_after`.
#[derive(Debug, PartialEq, Eq)]
pub struct Blocked {
    pub retry_after: Duration,
}

/// Why an attempt was not let through.
#[derive(Debug)]
pub enum Refused {
    Blocked(Blocked),
    /// The counts could not be read or written: nothing is let through uncounted.
    Store(StoreError),
}

impl From<StoreError> for Refused {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<Blocked> for AppError {
    fn from(b: Blocked) -> Self {
        Self::TooManyRequests {
            retry_after: b.retry_after,
        }
    }
}

impl From<Refused> for AppError {
    fn from(r: Refused) -> Self {
        match r {
            Refused::Blocked(b) => b.into(),
            Refused::Store(e) => e.into(),
        }
    }
}

/// Counts logins in the store.
pub struct LoginThrottle {
    store: Arc<Store>,
}

impl LoginThrottle {
    pub fn new(store: Arc<Store>) -> Self {
        Self { store }
    }

    /// Lets an attempt from `address` on `account` (a normalised email) through, counting it
    /// as a failure until it is settled, or says how long to wait.
    pub async fn reserve(&self, address: IpAddr, account: &str) -> Result<Attempt, Refused> {
        let address = address_subject(address);
        let account = account_subject(account);
        let subjects = LoginSubjects {
            address: &address,
            account: &account,
            max_per_address: MAX_PER_ADDRESS as i64,
            max_per_account: MAX_PER_ACCOUNT as i64,
        };
        let window = WINDOW.as_micros() as i64;
        let id = rand::random::<i64>();
        let found = self.store.reserve_login(subjects, window, id).await?;
        if !found.counted {
            let now = found.clock.now();
            let retry_after =
                wait(&[found.by_address, found.by_account], now).unwrap_or(Duration::from_secs(1));
            return Err(Refused::Blocked(Blocked { retry_after }));
        }
        let failures = found.by_address.count.max(found.by_account.count).max(0) as usize;
        Ok(Attempt {
            id,
            address,
            account,
            delay: slowdown(failures),
        })
    }

    /// The password was right: the attempt is not a failure, and the account starts over.
    pub async fn succeeded(&self, attempt: Attempt) {
        self.settle(attempt, true).await;
    }

    /// The server could not check the password (busy, database down): nothing counts.
    pub async fn cancel(&self, attempt: Attempt) {
        self.settle(attempt, false).await;
    }

    /// Deletes the failures that no longer count.
    pub async fn prune(&self) -> Result<u64, StoreError> {
        let window = WINDOW.as_micros() as i64;
        self.store.prune_login_failures(window).await
    }

    async fn settle(&self, attempt: Attempt, clear_account: bool) {
        let settled = self
            .store
            .settle_login_attempt(
                &attempt.address,
                &attempt.account,
                attempt.id,
                clear_account,
            )
            .await;
        if let Err(e) = settled {
            tracing::warn!(error = %e, "a login attempt could not be settled; it counts as a failure");
        }
    }
}

/// How long until every subject over its limit may try again, or `None` when none is.
fn wait(subjects: &[FailureCount], now: DbTime) -> Option<Duration> {
    let window = WINDOW.as_micros() as i64;
    subjects
        .iter()
        .filter_map(|s| s.blocking_since_us)
        .map(|since| {
            let left = (since + window - now.0).max(0);
            // Whole seconds, rounded up, never less than one.
            Duration::from_secs((left as u64).div_ceil(1_000_000).max(1))
        })
        .max()
}

fn slowdown(failures: usize) -> Duration {
    if failures >= SLOW_AFTER {
        (SLOWDOWN_STEP * (failures - SLOW_AFTER + 1) as u32).min(MAX_SLOWDOWN)
    } else {
        Duration::ZERO
    }
}

/// The subject an address's failures count against.
fn address_subject(ip: IpAddr) -> String {
    format!("ip:{}", address_key(ip))
}

/// The subject an account's failures count against: a hash of the normalised email, so no
/// email is kept with the failures.
fn account_subject(email: &str) -> String {
    let digest = Sha256::digest(email.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("account:{hex}")
}

/// IPv6 clients are counted by their /64, the block one subscriber gets.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

/// The client's address: the direct peer, unless the peer is a trusted proxy; then
/// `X-Forwarded-For` is read from the right (each proxy appends the address it saw),
/// skipping trusted proxies, and the first other address is the client. Entries left of it
/// were written by the client and prove nothing.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let mut client = peer.to_canonical();
    if !trusted.contains(client) {
        return client;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.into_iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            // Garbage: the nearest proxy is all we can vouch for.
            return client;
        };
        client = ip;
        if !trusted.contains(ip) {
            break;
        }
    }
    client
}

/// An `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<std::net::SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// A throttle over a fresh SQLite store, kept with the directory that holds it.
    async fn throttle() -> (LoginThrottle, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = crate::config::DatabaseUrl::parse(&format!(
            "sqlite://{}",
            dir.path().join("t.db").display()
        ))
        .unwrap();
        let store = crate::store::connect(&url, Duration::ZERO).await.unwrap();
        (LoginThrottle::new(store), dir)
    }

    async fn blocked(t: &LoginThrottle, address: &str, account: &str) -> Duration {
        match t.reserve(ip(address), account).await {
            Err(Refused::Blocked(b)) => b.retry_after,
            other => panic!("{address} on {account} was not blocked: {other:?}"),
        }
    }

    #[tokio::test]
    async fn an_address_gets_ten_failures_in_the_window() {
        let (t, _dir) = throttle().await;
        for i in 0..MAX_PER_ADDRESS {
            let a = t
                .reserve(ip("10.0.0.1"), &format!("user{i}@x.io"))
                .await
                .unwrap();
            assert_eq!(a.delay.is_zero(), i < SLOW_AFTER, "attempt {i}");
        }
        let wait = blocked(&t, "10.0.0.1", "other@x.io").await;
        assert!(
            wait > WINDOW - Duration::from_secs(60) && wait <= WINDOW,
            "{wait:?}"
        );
        assert!(t.reserve(ip("10.0.0.2"), "other@x.io").await.is_ok());
    }

    #[tokio::test]
    async fn an_account_gets_thirty_failures_from_all_addresses() {
        let (t, _dir) = throttle().await;
        for i in 0..MAX_PER_ACCOUNT {
            t.reserve(ip(&format!("10.0.{i}.1")), "alice@x.io")
                .await
                .unwrap();
        }
        blocked(&t, "10.9.9.9", "alice@x.io").await;
        assert!(t.reserve(ip("10.9.9.9"), "bob@x.io").await.is_ok());
    }

    #[tokio::test]
    async fn success_clears_the_account_but_not_the_address() {
        let (t, _dir) = throttle().await;
        for _ in 0..9 {
            t.reserve(ip("10.0.0.1"), "bob@x.io").await.unwrap();
        }
        let mine = t.reserve(ip("10.0.0.1"), "alice@x.io").await.unwrap();
        t.succeeded(mine).await;
        // The success itself is not a failure: one more failure fits, then the address is full.
        t.reserve(ip("10.0.0.1"), "bob@x.io").await.unwrap();
        blocked(&t, "10.0.0.1", "alice@x.io").await;
        // Alice's account has no failures; Bob's still has ten.
        for i in 0..20 {
            t.reserve(ip(&format!("10.1.0.{i}")), "bob@x.io")
                .await
                .unwrap();
        }
        blocked(&t, "10.2.0.1", "bob@x.io").await;
        assert!(t.reserve(ip("10.2.0.1"), "alice@x.io").await.is_ok());
    }

    #[tokio::test]
    async fn a_cancelled_or_refused_attempt_does_not_count() {
        let (t, _dir) = throttle().await;
        for _ in 0..20 {
            let a = t.reserve(ip("10.0.0.1"), "bob@x.io").await.unwrap();
            t.cancel(a).await;
        }
        for i in 0..MAX_PER_ADDRESS {
            t.reserve(ip("10.0.0.2"), &format!("user{i}@x.io"))
                .await
                .unwrap();
        }
        for _ in 0..5 {
            blocked(&t, "10.0.0.2", "carol@x.io").await;
        }
        let carol = t.reserve(ip("10.0.0.3"), "carol@x.io").await.unwrap();
        assert!(carol.delay.is_zero(), "refusals are not failures");
        let a = t.reserve(ip("10.0.0.1"), "bob@x.io").await.unwrap();
        assert!(a.delay.is_zero(), "nothing of the cancelled ones counts");
    }

    #[tokio::test]
    async fn slowdown_grows_then_stops_growing() {
        let (t, _dir) = throttle().await;
        let mut delays = Vec::new();
        for i in 0..MAX_PER_ACCOUNT {
            let a = t
                .reserve(ip(&format!("10.0.{i}.1")), "alice@x.io")
                .await
                .unwrap();
            delays.push(a.delay);
        }
        assert_eq!(delays[2], Duration::ZERO);
        assert_eq!(delays[3], SLOWDOWN_STEP);
        assert_eq!(delays[4], SLOWDOWN_STEP * 2);
        assert_eq!(delays[29], MAX_SLOWDOWN);
    }

    #[tokio::test]
    async fn ipv6_clients_count_by_their_64() {
        let (t, _dir) = throttle().await;
        for i in 0..MAX_PER_ADDRESS {
            t.reserve(ip(&format!("2001:db8:1:2::{i:x}")), "a@x.io")
                .await
                .unwrap();
        }
        blocked(&t, "2001:db8:1:2:ffff::1", "b@x.io").await;
        assert!(t.reserve(ip("2001:db8:1:3::1"), "b@x.io").await.is_ok());
    }

    #[test]
    fn the_wait_is_until_the_blocking_failure_leaves_the_window() {
        let now = DbTime(1_000_000_000_000);
        let count = |since_s_ago: Option<i64>| FailureCount {
            count: 10,
            blocking_since_us: since_s_ago.map(|s| now.0 - s * 1_000_000),
        };
        assert_eq!(wait(&[count(None), count(None)], now), None);
        assert_eq!(
            wait(&[count(Some(60)), count(None)], now),
            Some(WINDOW - Duration::from_secs(60))
        );
        assert_eq!(
            wait(&[count(Some(600)), count(Some(60))], now),
            Some(WINDOW - Duration::from_secs(60)),
            "the longer wait"
        );
        assert_eq!(
            wait(&[count(Some(900)), count(None)], now),
            Some(Duration::from_secs(1)),
            "never less than a second"
        );
    }

    #[test]
    fn accounts_are_kept_as_hashes() {
        let subject = account_subject("alice@x.io");
        assert!(!subject.contains("alice"));
        assert_eq!(subject, account_subject("alice@x.io"));
        assert_ne!(subject, account_subject("bob@x.io"));
    }

    #[test]
    fn the_client_is_read_from_the_right_behind_trusted_proxies() {
        let trusted = TrustedProxies::parse("127.0.0.1, 10.0.0.0/8").unwrap();
        let headers = |xff: &[&str]| {
            let mut h = HeaderMap::new();
            for v in xff {
                h.append("x-forwarded-for", v.parse().unwrap());
            }
            h
        };
        let client = |peer: &str, xff: &[&str]| client_address(ip(peer), &headers(xff), &trusted);
        assert_eq!(
            client("203.0.113.5", &["1.2.3.4"]),
            ip("203.0.113.5"),
            "untrusted peer"
        );
        assert_eq!(client("127.0.0.1", &[]), ip("127.0.0.1"), "no header");
        assert_eq!(client("127.0.0.1", &["198.51.100.7"]), ip("198.51.100.7"));
        assert_eq!(
            client("127.0.0.1", &["6.6.6.6, 198.51.100.7, 10.1.2.3"]),
            ip("198.51.100.7"),
            "spoofed left part ignored, proxies skipped"
        );
        assert_eq!(
            client("127.0.0.1", &["6.6.6.6", "198.51.100.7:5555"]),
            ip("198.51.100.7"),
            "several headers, a port"
        );
        assert_eq!(
            client("127.0.0.1", &["10.0.0.9, 10.0.0.8"]),
            ip("10.0.0.9"),
            "all trusted"
        );
        assert_eq!(
            client("127.0.0.1", &["198.51.100.7, junk"]),
            ip("127.0.0.1"),
            "garbage"
        );
        assert_eq!(
            client("::ffff:127.0.0.1", &["[2001:db8::1]:443"]),
            ip("2001:db8::1")
        );
        let nobody = TrustedProxies::default();
        assert_eq!(
            client_address(ip("127.0.0.1"), &headers(&["1.2.3.4"]), &nobody),
            ip("127.0.0.1")
        );
    }
}
