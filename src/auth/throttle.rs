//! Login throttling (contract §3): failed logins are counted per client address and per
//! account (the normalised email, known or not) over a sliding window. An attempt is
//! counted when it starts, before its password is checked, so parallel guesses cannot
//! outrun the count; a success takes its own attempt back and clears its account's
//! failures, never the address's. After a few failures each attempt is slowed down.
//!
//! One process keeps the counts in memory, bounded. `reserve`, `succeeded` and `cancel`
//! are the whole interface, so a store shared by several instances can take its place.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;

use crate::config::TrustedProxies;

/// Failures older than this no longer count.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
pub const MAX_PER_ADDRESS: usize = 10;
pub const MAX_PER_ACCOUNT: usize = 30;
/// From this many failures on, each attempt waits [`SLOWDOWN_STEP`] more, up to [`MAX_SLOWDOWN`].
const SLOW_AFTER: usize = 3;
const SLOWDOWN_STEP: Duration = Duration::from_millis(250);
const MAX_SLOWDOWN: Duration = Duration::from_secs(2);
/// Addresses and accounts tracked at most (each): a few MiB.
const MAX_TRACKED: usize = 100_000;

/// An attempt that was let through, counted as a failure unless it is settled otherwise.
#[derive(Debug)]
pub struct Attempt {
    address: IpAddr,
    account: u64,
    at: u32,
    /// How long to wait before checking the password.
    pub delay: Duration,
}

/// Too many failures: come back after `retry_after`.
#[derive(Debug, PartialEq, Eq)]
pub struct Blocked {
    pub retry_after: Duration,
}

pub struct LoginThrottle {
    epoch: Instant,
    /// Keys accounts by a keyed hash of the email: small, and no emails kept in memory.
    accounts_key: RandomState,
    state: Mutex<Failures>,
}

#[derive(Default)]
struct Failures {
    addresses: Log<IpAddr>,
    accounts: Log<u64>,
}

/// When each counted attempt started, in seconds since the throttle's epoch, per key.
struct Log<K> {
    entries: HashMap<K, Vec<u32>>,
}

impl<K> Default for Log<K> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
        }
    }
}

impl<K: Hash + Eq + Copy> Log<K> {
    /// The key's attempts still in the window, oldest first.
    fn recent(&mut self, key: K, now: u32) -> &[u32] {
        match self.entries.get_mut(&key) {
            Some(times) => {
                times.retain(|t| now.saturating_sub(*t) < WINDOW.as_secs() as u32);
                times
            }
            None => &[],
        }
    }

    fn push(&mut self, key: K, now: u32) {
        if !self.entries.contains_key(&key) && self.entries.len() >= MAX_TRACKED {
            self.make_room(now);
        }
        self.entries.entry(key).or_default().push(now);
    }

    /// Drops what has expired and, if that is not enough, the tenth of the keys whose
    /// latest attempt is oldest.
    fn make_room(&mut self, now: u32) {
        let window = WINDOW.as_secs() as u32;
        self.entries.retain(|_, times| {
            times.retain(|t| now.saturating_sub(*t) < window);
            !times.is_empty()
        });
        if self.entries.len() >= MAX_TRACKED {
            let mut latest: Vec<u32> = self
                .entries
                .values()
                .map(|t| t.last().copied().unwrap_or(0))
                .collect();
            let tenth = latest.len() / 10;
            let (_, cutoff, _) = latest.select_nth_unstable(tenth);
            let cutoff = *cutoff;
            self.entries
                .retain(|_, times| times.last().is_some_and(|t| *t > cutoff));
        }
    }

    fn take_back(&mut self, key: K, at: u32) {
        if let Some(times) = self.entries.get_mut(&key) {
            if let Some(i) = times.iter().rposition(|t| *t == at) {
                times.remove(i);
            }
            if times.is_empty() {
                self.entries.remove(&key);
            }
        }
    }

    fn clear(&mut self, key: K) {
        self.entries.remove(&key);
    }
}

/// How long until a key with these attempts (oldest first) may try again.
fn wait(times: &[u32], max: usize, now: u32) -> Option<u32> {
    (times.len() >= max).then(|| {
        let oldest_that_counts = times[times.len() - max];
        (oldest_that_counts + WINDOW.as_secs() as u32).saturating_sub(now)
    })
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            accounts_key: RandomState::new(),
            state: Mutex::default(),
        }
    }
}

impl LoginThrottle {
    fn now(&self) -> u32 {
        u32::try_from(self.epoch.elapsed().as_secs()).unwrap_or(u32::MAX)
    }

    /// Lets an attempt from `address` on `account` (a normalised email) through, counting it
    /// as a failure until it is settled, or says how long to wait.
    pub fn reserve(&self, address: IpAddr, account: &str) -> Result<Attempt, Blocked> {
        self.reserve_at(address, account, self.now())
    }

    fn reserve_at(&self, address: IpAddr, account: &str, now: u32) -> Result<Attempt, Blocked> {
        let address = address_key(address);
        let account = self.accounts_key.hash_one(account);
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let by_address = state.addresses.recent(address, now).to_vec();
        let by_account = state.accounts.recent(account, now).to_vec();
        let wait = [
            wait(&by_address, MAX_PER_ADDRESS, now),
            wait(&by_account, MAX_PER_ACCOUNT, now),
        ]
        .into_iter()
        .flatten()
        .max();
        if let Some(seconds) = wait {
            return Err(Blocked {
                retry_after: Duration::from_secs(u64::from(seconds.max(1))),
            });
        }
        state.addresses.push(address, now);
        state.accounts.push(account, now);
        let failures = by_address.len().max(by_account.len());
        let delay = if failures >= SLOW_AFTER {
            (SLOWDOWN_STEP * (failures - SLOW_AFTER + 1) as u32).min(MAX_SLOWDOWN)
        } else {
            Duration::ZERO
        };
        Ok(Attempt {
            address,
            account,
            at: now,
            delay,
        })
    }

    /// The password was right: the attempt is not a failure, and the account starts over.
    pub fn succeeded(&self, attempt: Attempt) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.addresses.take_back(attempt.address, attempt.at);
        state.accounts.clear(attempt.account);
    }

    /// The server could not check the password (busy, database down): nothing counts.
    pub fn cancel(&self, attempt: Attempt) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.addresses.take_back(attempt.address, attempt.at);
        state.accounts.take_back(attempt.account, attempt.at);
    }
}

/// IPv6 clients are counted by their /64, the block one subscriber gets.
fn address_key(ip: IpAddr) -> IpAddr {
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

/// The wait in the words of a `429`: whole seconds under a minute, else whole minutes,
/// rounded up; the number of seconds is what `Retry-After` says.
pub fn describe_wait(wait: Duration) -> (u64, String) {
    let seconds = wait.as_secs().max(1);
    if seconds < 60 {
        let unit = if seconds == 1 { "second" } else { "seconds" };
        (seconds, format!("{seconds} {unit}"))
    } else {
        let minutes = seconds.div_ceil(60);
        let unit = if minutes == 1 { "minute" } else { "minutes" };
        (minutes * 60, format!("{minutes} {unit}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_address_gets_ten_failures_in_the_window() {
        let t = LoginThrottle::default();
        for i in 0..MAX_PER_ADDRESS {
            let a = t
                .reserve_at(ip("10.0.0.1"), &format!("user{i}@x.io"), 5)
                .unwrap();
            assert_eq!(a.delay.is_zero(), i < SLOW_AFTER, "attempt {i}");
        }
        let blocked = t.reserve_at(ip("10.0.0.1"), "other@x.io", 65).unwrap_err();
        assert_eq!(blocked.retry_after, Duration::from_secs(900 - 60));
        assert!(t.reserve_at(ip("10.0.0.2"), "other@x.io", 65).is_ok());
        assert!(
            t.reserve_at(ip("10.0.0.1"), "other@x.io", 905).is_ok(),
            "slid out"
        );
    }

    #[test]
    fn an_account_gets_thirty_failures_from_all_addresses() {
        let t = LoginThrottle::default();
        for i in 0..MAX_PER_ACCOUNT {
            t.reserve_at(ip(&format!("10.0.{i}.1")), "alice@x.io", 0)
                .unwrap();
        }
        assert!(t.reserve_at(ip("10.9.9.9"), "alice@x.io", 1).is_err());
        assert!(t.reserve_at(ip("10.9.9.9"), "bob@x.io", 1).is_ok());
    }

    #[test]
    fn success_clears_the_account_but_not_the_address() {
        let t = LoginThrottle::default();
        for _ in 0..9 {
            t.reserve_at(ip("10.0.0.1"), "bob@x.io", 0).unwrap();
        }
        let mine = t.reserve_at(ip("10.0.0.1"), "alice@x.io", 0).unwrap();
        t.succeeded(mine);
        // The success itself is not a failure: one more failure fits, then the address is full.
        t.reserve_at(ip("10.0.0.1"), "bob@x.io", 0).unwrap();
        assert!(t.reserve_at(ip("10.0.0.1"), "alice@x.io", 0).is_err());
        // Alice's account has no failures; Bob's still has ten.
        for i in 0..20 {
            t.reserve_at(ip(&format!("10.1.0.{i}")), "bob@x.io", 0)
                .unwrap();
        }
        assert!(t.reserve_at(ip("10.2.0.1"), "bob@x.io", 0).is_err());
        assert!(t.reserve_at(ip("10.2.0.1"), "alice@x.io", 0).is_ok());
    }

    #[test]
    fn a_cancelled_attempt_does_not_count() {
        let t = LoginThrottle::default();
        for _ in 0..20 {
            let a = t.reserve_at(ip("10.0.0.1"), "bob@x.io", 0).unwrap();
            t.cancel(a);
        }
        assert!(t.state.lock().unwrap().addresses.entries.is_empty());
        assert!(t.state.lock().unwrap().accounts.entries.is_empty());
    }

    #[test]
    fn slowdown_grows_then_stops_growing() {
        let t = LoginThrottle::default();
        let delays: Vec<Duration> = (0..MAX_PER_ACCOUNT)
            .map(|i| {
                t.reserve_at(ip(&format!("10.0.{i}.1")), "alice@x.io", 0)
                    .unwrap()
                    .delay
            })
            .collect();
        assert_eq!(delays[2], Duration::ZERO);
        assert_eq!(delays[3], SLOWDOWN_STEP);
        assert_eq!(delays[4], SLOWDOWN_STEP * 2);
        assert_eq!(delays[29], MAX_SLOWDOWN);
    }

    #[test]
    fn memory_stays_bounded() {
        let t = LoginThrottle::default();
        let n = MAX_TRACKED as u32 + 10;
        for i in 0..n {
            let a = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            t.reserve_at(a, &format!("{i}@x.io"), i / 1000).unwrap();
        }
        let state = t.state.lock().unwrap();
        assert!(state.addresses.entries.len() <= MAX_TRACKED);
        assert!(state.accounts.entries.len() <= MAX_TRACKED);
        let newest = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + n - 1));
        assert!(state.addresses.entries.contains_key(&newest));
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let t = LoginThrottle::default();
        for i in 0..MAX_PER_ADDRESS {
            t.reserve_at(ip(&format!("2001:db8:1:2::{i:x}")), "a@x.io", 0)
                .unwrap();
        }
        assert!(
            t.reserve_at(ip("2001:db8:1:2:ffff::1"), "b@x.io", 0)
                .is_err()
        );
        assert!(t.reserve_at(ip("2001:db8:1:3::1"), "b@x.io", 0).is_ok());
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

    #[test]
    fn waits_read_the_same_in_words_and_seconds() {
        assert_eq!(
            describe_wait(Duration::from_secs(0)),
            (1, "1 second".into())
        );
        assert_eq!(
            describe_wait(Duration::from_secs(42)),
            (42, "42 seconds".into())
        );
        assert_eq!(
            describe_wait(Duration::from_secs(60)),
            (60, "1 minute".into())
        );
        assert_eq!(
            describe_wait(Duration::from_secs(61)),
            (120, "2 minutes".into())
        );
        assert_eq!(describe_wait(WINDOW), (900, "15 minutes".into()));
    }
}
