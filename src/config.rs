//! Typed settings read from the environment (and `.env`), with defaults that make a bare
//! `cargo run` work. Every problem is reported as one line naming the variable.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

mod twilio;

pub use twilio::{TwilioLive, TwilioMode};

/// How long a worker's claim on a queued message lasts unless `SEND_LEASE_SECONDS` says
/// otherwise: longer than the longest attempt, so that even a worker whose renewals fail is
/// out of its Twilio calls before anyone else can start theirs (`send_queue.rs` checks it).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(80);
/// The shortest `SEND_LEASE_SECONDS`: a worker renews its lease every quarter of it.
const MIN_LEASE_SECONDS: u64 = 2;

/// A configuration problem, rendered as the one line printed before exiting.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

fn bad(var: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        message: message.into(),
    }
}

/// Where the data lives. `Debug` and `Display` never show a password.
#[derive(Clone)]
pub struct DatabaseUrl(SecretString);

impl DatabaseUrl {
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        let lower = raw.to_ascii_lowercase();
        if lower.starts_with("sqlite:") {
            if raw
                .trim_start_matches("sqlite:")
                .trim_start_matches("//")
                .is_empty()
            {
                return Err(bad("DATABASE_URL", "the sqlite URL names no file"));
            }
        } else if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            let url = Url::parse(raw)
                .map_err(|e| bad("DATABASE_URL", format!("not a valid postgres URL ({e})")))?;
            if url.host_str().is_none_or(str::is_empty) {
                return Err(bad("DATABASE_URL", "the postgres URL names no host"));
            }
        } else {
            return Err(bad(
                "DATABASE_URL",
                "unknown scheme: use sqlite://path/to/file.db or postgres://user@host/db",
            ));
        }
        Ok(Self(SecretString::from(raw.to_owned())))
    }

    pub fn is_postgres(&self) -> bool {
        !self.expose().to_ascii_lowercase().starts_with("sqlite:")
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The URL with any password replaced, for logs and the banner.
    pub fn redacted(&self) -> String {
        redact(self.expose())
    }
}

/// `raw` with any password replaced by `***`.
fn redact(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        _ => raw.to_owned(),
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// The Redis that carries socket.io events between instances (`REDIS_URL`). `Debug` and
/// `Display` never show a password.
#[derive(Clone)]
pub struct RedisUrl(SecretString);

impl RedisUrl {
    /// `redis://[[user]:password@]host[:port][/db]`, or `rediss://…` for TLS.
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        let url = Url::parse(raw).map_err(|e| {
            bad(
                "REDIS_URL",
                format!("not a valid URL ({e}): use redis://host:6379/0 or rediss://…"),
            )
        })?;
        if !matches!(url.scheme(), "redis" | "rediss") {
            return Err(bad(
                "REDIS_URL",
                "unknown scheme: use redis://host:6379/0, or rediss://… for TLS",
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("REDIS_URL", "the redis URL names no host"));
        }
        let db = url.path().trim_start_matches('/');
        if !db.is_empty() && db.parse::<u8>().is_err() {
            return Err(bad(
                "REDIS_URL",
                "the path must be a database number, e.g. redis://host:6379/0",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("REDIS_URL", "must not carry a query or fragment"));
        }
        Ok(Self(SecretString::from(raw.to_owned())))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The URL with any password replaced, for logs and the banner.
    pub fn redacted(&self) -> String {
        redact(self.expose())
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// The proxies whose `X-Forwarded-For` is believed (`TRUSTED_PROXIES`): addresses or CIDRs.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// A comma-separated list such as `127.0.0.1, ::1, 10.0.0.0/8`; the message names the bad entry.
    pub fn parse(raw: &str) -> Result<Self, String> {
        raw.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!(
                            "`{entry}` is not an IP address or CIDR (e.g. 127.0.0.1 or 10.0.0.0/8)"
                        )
                    })
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }
}

/// When a sent message whose status is not final yet is fetched from Twilio, in case its
/// status callbacks were lost (a balancer that answered 502 while the instances restarted,
/// a callback URL Twilio could not reach): once after each of `after`, counted from when
/// Twilio took it, then no more. Each instance fetches one message at a time, `pace` apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusChecks {
    pub after: Vec<Duration>,
    pub pace: Duration,
}

impl Default for StatusChecks {
    /// At 2, 10 and 30 minutes and 2 hours: a status is normally final within seconds, and
    /// a carrier's delivery receipt within minutes. At most 5 fetches a second per instance,
    /// far below Twilio's API limits.
    fn default() -> Self {
        let minutes = |m: u64| Duration::from_secs(60 * m);
        Self {
            after: vec![minutes(2), minutes(10), minutes(30), minutes(120)],
            pace: Duration::from_millis(200),
        }
    }
}

/// Sockets an agent may hold at once unless `MAX_SOCKETS_PER_AGENT` says otherwise.
pub const DEFAULT_MAX_SOCKETS_PER_AGENT: usize = 50;
/// engine.io sessions that have not yet joined the namespace, at most, at once.
pub const DEFAULT_MAX_UNCONNECTED_SESSIONS: usize = 10_000;
/// And at most this many of them per client address.
pub const DEFAULT_MAX_UNCONNECTED_PER_ADDRESS: usize = 100;
/// How often an instance asks the database whether the sessions of its sockets still hold,
/// so a socket whose session ended is disconnected within 30 s even when the event that
/// should have disconnected it never arrived (Redis down, or its subscriber dropped).
pub const DEFAULT_SESSION_CHECK_PERIOD: Duration = Duration::from_secs(20);
/// How often an instance reopens the conversations whose snooze ran out, so each reopens
/// within 60 s of its time.
pub const DEFAULT_SNOOZE_CHECK_PERIOD: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub host: IpAddr,
    pub port: u16,
    pub database_url: DatabaseUrl,
    /// Set: events reach the sockets of every instance through Redis. Unset: one instance.
    pub redis_url: Option<RedisUrl>,
    /// `None` means `http://localhost:<bound port>`, decided once the listener is bound.
    pub public_url: Option<Url>,
    pub twilio: TwilioMode,
    /// Segments per second per sending number; `None`: no pacing (Twilio queues excess).
    pub send_rate_per_number: Option<f64>,
    /// How long a worker's claim on a queued message lasts (renewed while it runs).
    pub send_lease: Duration,
    pub log_format: LogFormat,
    pub trusted_proxies: TrustedProxies,
    pub max_sockets_per_agent: usize,
    /// `METRICS_TOKEN`: set, `/metrics` wants it as a Bearer token; unset, it is open.
    pub metrics_token: Option<SecretString>,
    /// Not read from the environment: [`DEFAULT_MAX_UNCONNECTED_SESSIONS`] (tests lower it).
    pub max_unconnected_sessions: usize,
    /// Not read from the environment: [`StatusChecks::default`] (tests shorten it).
    pub status_checks: StatusChecks,
    /// Not read from the environment: [`DEFAULT_MAX_UNCONNECTED_PER_ADDRESS`].
    pub max_unconnected_per_address: usize,
    /// Not read from the environment: [`DEFAULT_SESSION_CHECK_PERIOD`] (tests change it).
    pub session_check_period: Duration,
    /// Not read from the environment: [`DEFAULT_SNOOZE_CHECK_PERIOD`] (tests shorten it).
    pub snooze_check_period: Duration,
}

impl Settings {
    /// Reads the process environment; `.env` must already be loaded.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads settings through `get`, so tests can supply their own values.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| {
            get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };

        let port = match get("PORT") {
            None => 3000,
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| bad("PORT", format!("`{p}` is not a port number (0-65535)")))?,
        };
        let host = match get("HOST") {
            None => IpAddr::from([127, 0, 0, 1]),
            Some(h) if h == "localhost" => IpAddr::from([127, 0, 0, 1]),
            Some(h) => h
                .parse()
                .map_err(|_| bad("HOST", format!("`{h}` is not an IP address")))?,
        };
        let database_url = DatabaseUrl::parse(
            &get("DATABASE_URL").unwrap_or_else(|| "sqlite://data/smsdesk.db".into()),
        )?;
        let redis_url = get("REDIS_URL")
            .map(|raw| RedisUrl::parse(&raw))
            .transpose()?;
        if redis_url.is_some() && !database_url.is_postgres() {
            return Err(bad(
                "REDIS_URL",
                "several instances need PostgreSQL: set DATABASE_URL to a postgres:// URL, or unset REDIS_URL for one instance on SQLite",
            ));
        }
        let public_url = get("PUBLIC_URL")
            .map(|raw| parse_base_url("PUBLIC_URL", &raw))
            .transpose()?;

        let twilio = TwilioMode::from_lookup(get)?;

        let send_rate_per_number = match get("SEND_RATE_PER_NUMBER") {
            None => None,
            Some(r) => Some(
                r.parse::<f64>()
                    .ok()
                    .filter(|r| r.is_finite() && *r > 0.0 && *r <= 10_000.0)
                    .ok_or_else(|| {
                        bad(
                            "SEND_RATE_PER_NUMBER",
                            format!("`{r}` is not a rate: give segments per second, e.g. 1 for a US long code"),
                        )
                    })?,
            ),
        };
        let send_lease = match get("SEND_LEASE_SECONDS") {
            None => DEFAULT_LEASE,
            Some(n) => n
                .parse::<u64>()
                .ok()
                .filter(|n| (MIN_LEASE_SECONDS..=3600).contains(n))
                .map(Duration::from_secs)
                .ok_or_else(|| {
                    bad(
                        "SEND_LEASE_SECONDS",
                        format!(
                            "`{n}` is not a lease: give whole seconds from {MIN_LEASE_SECONDS} to 3600 (default {})",
                            DEFAULT_LEASE.as_secs()
                        ),
                    )
                })?,
        };
        let trusted_proxies = match get("TRUSTED_PROXIES") {
            None => TrustedProxies::default(),
            Some(raw) => {
                TrustedProxies::parse(&raw).map_err(|message| bad("TRUSTED_PROXIES", message))?
            }
        };
        let max_sockets_per_agent = match get("MAX_SOCKETS_PER_AGENT") {
            None => DEFAULT_MAX_SOCKETS_PER_AGENT,
            Some(n) => n
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=100_000).contains(n))
                .ok_or_else(|| {
                    bad(
                        "MAX_SOCKETS_PER_AGENT",
                        format!("`{n}` is not a number of sockets from 1 to 100000"),
                    )
                })?,
        };
        let log_format = match get("LOG_FORMAT").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(bad(
                    "LOG_FORMAT",
                    format!("`{other}` is not a log format (text or json)"),
                ));
            }
        };

        Ok(Self {
            host,
            port,
            database_url,
            redis_url,
            public_url,
            twilio,
            send_rate_per_number,
            send_lease,
            log_format,
            trusted_proxies,
            max_sockets_per_agent,
            metrics_token: get("METRICS_TOKEN").map(SecretString::from),
            max_unconnected_sessions: DEFAULT_MAX_UNCONNECTED_SESSIONS,
            status_checks: StatusChecks::default(),
            max_unconnected_per_address: DEFAULT_MAX_UNCONNECTED_PER_ADDRESS,
            session_check_period: DEFAULT_SESSION_CHECK_PERIOD,
            snooze_check_period: DEFAULT_SNOOZE_CHECK_PERIOD,
        })
    }
}

/// An http(s) URL without a trailing slash, query or fragment, to which paths are appended.
fn parse_base_url(var: &'static str, raw: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(raw).map_err(|e| bad(var, format!("`{raw}` is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(bad(
            var,
            format!("`{raw}` must be an http:// or https:// URL"),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad(var, "must not carry a query or fragment"));
    }
    let trimmed = url.as_str().trim_end_matches('/').to_owned();
    Url::parse(&trimmed).map_err(|e| bad(var, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_need_nothing() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.port, 3000);
        assert_eq!(s.host.to_string(), "127.0.0.1");
        assert!(!s.database_url.is_postgres());
        assert!(matches!(s.twilio, TwilioMode::Simulated));
    }

    #[test]
    fn bad_values_name_their_variable() {
        assert_eq!(settings(&[("PORT", "http")]).unwrap_err().var, "PORT");
        assert_eq!(
            settings(&[("DATABASE_URL", "mysql://x/y")])
                .unwrap_err()
                .var,
            "DATABASE_URL"
        );
        assert_eq!(
            settings(&[("PUBLIC_URL", "ftp://x")]).unwrap_err().var,
            "PUBLIC_URL"
        );
        for rate in ["0", "-1", "fast", "NaN"] {
            assert_eq!(
                settings(&[("SEND_RATE_PER_NUMBER", rate)]).unwrap_err().var,
                "SEND_RATE_PER_NUMBER"
            );
        }
        let s = settings(&[("SEND_RATE_PER_NUMBER", "0.5")]).unwrap();
        assert_eq!(s.send_rate_per_number, Some(0.5));
        for lease in ["0", "1", "-5", "2.5", "3601", "long"] {
            let err = settings(&[("SEND_LEASE_SECONDS", lease)]).unwrap_err();
            assert_eq!(err.var, "SEND_LEASE_SECONDS", "{lease}");
        }
        assert_eq!(settings(&[]).unwrap().send_lease, DEFAULT_LEASE);
        let s = settings(&[("SEND_LEASE_SECONDS", "3")]).unwrap();
        assert_eq!(s.send_lease, Duration::from_secs(3));
        for proxies in ["localhost", "10.0.0.0/33", "127.0.0.1, nope", "1.2.3"] {
            let err = settings(&[("TRUSTED_PROXIES", proxies)]).unwrap_err();
            assert_eq!(err.var, "TRUSTED_PROXIES", "{proxies}");
        }
        for n in ["0", "-1", "many", "100001"] {
            assert_eq!(
                settings(&[("MAX_SOCKETS_PER_AGENT", n)]).unwrap_err().var,
                "MAX_SOCKETS_PER_AGENT"
            );
        }
    }

    #[test]
    fn connection_limits_have_defaults() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.max_sockets_per_agent, 50);
        assert_eq!(s.max_unconnected_sessions, 10_000);
        assert_eq!(s.max_unconnected_per_address, 100);
        assert!(s.session_check_period <= Duration::from_secs(30));
        assert!(s.snooze_check_period < Duration::from_secs(60));
        assert!(!s.trusted_proxies.contains("127.0.0.1".parse().unwrap()));
        let s = settings(&[("MAX_SOCKETS_PER_AGENT", "200")]).unwrap();
        assert_eq!(s.max_sockets_per_agent, 200);
    }

    #[test]
    fn trusted_proxies_are_addresses_or_cidrs() {
        let s = settings(&[("TRUSTED_PROXIES", " 127.0.0.1, ::1 ,10.0.0.0/8,")]).unwrap();
        let t = &s.trusted_proxies;
        for yes in ["127.0.0.1", "::1", "10.200.3.4", "::ffff:127.0.0.1"] {
            assert!(t.contains(yes.parse().unwrap()), "{yes}");
        }
        for no in ["127.0.0.2", "11.0.0.1", "::2"] {
            assert!(!t.contains(no.parse().unwrap()), "{no}");
        }
    }

    #[test]
    fn database_password_is_never_shown() {
        let url = DatabaseUrl::parse("postgres://bob:hunter2@db.example/app").unwrap();
        assert!(!format!("{url:?} {url}").contains("hunter2"));
        let s = settings(&[
            ("TWILIO_ACCOUNT_SID", "AC0123456789abcdef0123456789abcdef"),
            ("TWILIO_AUTH_TOKEN", "topsecret"),
        ])
        .unwrap();
        assert!(!format!("{s:?}").contains("topsecret"));
    }

    #[test]
    fn redis_needs_postgres_and_a_redis_url() {
        let pg = ("DATABASE_URL", "postgres://db.example/app");
        let s = settings(&[pg, ("REDIS_URL", "redis://127.0.0.1:6379/0")]).unwrap();
        assert_eq!(s.redis_url.unwrap().expose(), "redis://127.0.0.1:6379/0");
        for ok in [
            "rediss://cache.example",
            "redis://:pw@cache.example:6380/15",
        ] {
            assert!(settings(&[pg, ("REDIS_URL", ok)]).is_ok(), "{ok}");
        }
        assert!(settings(&[]).unwrap().redis_url.is_none());
        for bad in [
            "http://cache.example",
            "cache.example:6379",
            "redis://",
            "redis://cache.example/zero",
            "redis://cache.example/0?protocol=resp2",
        ] {
            let err = settings(&[pg, ("REDIS_URL", bad)]).unwrap_err();
            assert_eq!(err.var, "REDIS_URL", "{bad}");
        }
        let err = settings(&[("REDIS_URL", "redis://127.0.0.1")]).unwrap_err();
        assert_eq!(err.var, "REDIS_URL");
        assert!(err.message.contains("PostgreSQL"), "{err}");
    }

    #[test]
    fn redis_password_is_never_shown() {
        let s = settings(&[
            ("DATABASE_URL", "postgres://db.example/app"),
            ("REDIS_URL", "rediss://default:hunter2@cache.example:6380/0"),
        ])
        .unwrap();
        let url = s.redis_url.as_ref().unwrap();
        assert!(!format!("{s:?} {url}").contains("hunter2"));
        assert_eq!(url.redacted(), "rediss://default:***@cache.example:6380/0");
    }

    #[test]
    fn public_url_loses_its_trailing_slash() {
        let s = settings(&[("PUBLIC_URL", "https://abc.ngrok.io/")]).unwrap();
        assert_eq!(s.public_url.unwrap().as_str(), "https://abc.ngrok.io/");
        let s = settings(&[("PUBLIC_URL", "https://abc.ngrok.io/crm/")]).unwrap();
        assert_eq!(s.public_url.unwrap().as_str(), "https://abc.ngrok.io/crm");
    }
}
