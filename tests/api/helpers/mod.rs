//! Test harness: the real server on a random port against a fresh database, talked to over
//! real HTTP and socket.io, with Twilio replaced by a real HTTP server on loopback.
//!
//! - [`app`]: [`TestApp`], its builder, and the HTTP helpers a test calls,
//! - [`socket`]: the socket.io client,
//! - [`fake_twilio`]: the fake Messages API and media server,
//! - [`db`]: a fresh database per test, SQLite or PostgreSQL,
//! - [`process`]: the server as its own process, for `kill -9`,
//! - [`pictures`]: pictures to upload, and multipart bodies,
//! - [`redis`]: a private `redis-server` per test, for several instances,
//! - [`nginx`]: nginx with `deploy/`'s configuration in front of two instances,
//!
//! and here: running a test on a backend ([`on_both_backends!`]) and waiting ([`wait_until`]).

mod app;
mod db;
mod fake_twilio;
mod nginx;
mod pictures;
mod process;
mod redis;
mod socket;

use std::fmt::Display;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::Instant;

pub use app::{Agent, Mode, TestApp, TestAppBuilder, assert_error, read, read_as};
pub use db::{Backend, ci, with_database};
pub use fake_twilio::{
    FAKE_ACCOUNT, FAKE_TOKEN, FakeTwilio, PUBLIC_URL, PUBLIC_URL_WITH_PORT, Script, post_signed,
};
pub use nginx::{Nginx, nginx_binary};
pub use pictures::{FIVE_MB, GIF, PNG, Part, jpeg, multipart};
pub use process::ServerProcess;
pub use redis::{RedisClient, RedisServer};
pub use socket::{Socket, SocketAuth};

/// How long a wait lasts unless the test says otherwise.
pub const WAIT: Duration = Duration::from_secs(10);
/// [`wait_until`] looks again after a tenth of the time it has waited, within these bounds:
/// within milliseconds of the change for what takes milliseconds (a burst that must be
/// caught midway), and at most 20 looks a second for what takes longer.
const MIN_PAUSE: Duration = Duration::from_millis(1);
const MAX_PAUSE: Duration = Duration::from_millis(50);

/// Server logs in the test output, only when `TEST_LOG` is set.
pub fn init_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "info".into()),
                )
                .with_test_writer()
                .try_init();
        }
    });
}

/// Runs `test` against a server built by `app` on a fresh database of `backend`.
pub async fn run(backend: Backend, app: TestAppBuilder, test: impl AsyncFnOnce(TestApp)) {
    with_database(backend, async move |url| test(app.spawn(&url).await).await).await
}

/// Declares `mod NAME { fn sqlite(); fn postgres(); }` for each `NAME: MODE`, where `MODE` is
/// a [`Mode`] followed by any [`TestAppBuilder`] calls, e.g.
/// `FakeTwilio.env("SEND_RATE_PER_NUMBER", "5")`. Their arguments resolve as in the test file.
#[macro_export]
macro_rules! on_both_backends {
    ($($test:ident : $mode:ident $(. $option:ident ( $($arg:expr),* ))* ),* $(,)?) => { $(
        mod $test {
            #[allow(unused_imports)]
            use super::*;

            fn app() -> $crate::helpers::TestAppBuilder {
                $crate::helpers::TestApp::builder()
                    .mode($crate::helpers::Mode::$mode)
                    $(.$option($($arg),*))*
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::helpers::run($crate::helpers::Backend::Sqlite, app(), super::$test).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::helpers::run($crate::helpers::Backend::Postgres, app(), super::$test).await
            }
        }
    )* };
}

/// What one look of [`wait_until`] found: done, with what was waited for, or not yet, with
/// what it saw instead (for the panic message; empty when there is nothing to say).
pub trait Ready {
    type Output;
    fn ready(self) -> Result<Self::Output, String>;
}

impl Ready for bool {
    type Output = ();
    fn ready(self) -> Result<(), String> {
        if self { Ok(()) } else { Err(String::new()) }
    }
}

impl<T> Ready for Option<T> {
    type Output = T;
    fn ready(self) -> Result<T, String> {
        self.ok_or_else(String::new)
    }
}

impl<T, E: Display> Ready for Result<T, E> {
    type Output = T;
    fn ready(self) -> Result<T, String> {
        self.map_err(|seen| seen.to_string())
    }
}

/// Looks with `check` until it is [`Ready`], for at most [`WAIT`]; panics naming `what`
/// (what the test waited for) otherwise. For anything a socket event announces, await the
/// event instead (as [`TestApp::wait_status`] does).
pub async fn wait_until<R: Ready>(what: &str, check: impl AsyncFnMut() -> R) -> R::Output {
    wait_until_within(what, WAIT, check).await
}

/// [`wait_until`] for waits that take longer than [`WAIT`] by design.
pub async fn wait_until_within<R: Ready>(
    what: &str,
    within: Duration,
    mut check: impl AsyncFnMut() -> R,
) -> R::Output {
    let started = Instant::now();
    let deadline = started + within;
    loop {
        let seen = match tokio::time::timeout_at(deadline, check()).await {
            Ok(found) => match found.ready() {
                Ok(done) => return done,
                Err(seen) => seen,
            },
            Err(_) => "a look that did not finish".to_owned(),
        };
        let now = Instant::now();
        if now >= deadline {
            if seen.is_empty() {
                panic!("waited {within:?} for {what}");
            }
            panic!("waited {within:?} for {what}; last seen: {seen}");
        }
        let pause = ((now - started) / 10).clamp(MIN_PAUSE, MAX_PAUSE);
        tokio::time::sleep(pause.min(deadline - now)).await;
    }
}

/// A loopback port free at the time of asking, for a server started as its own process.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A Twilio message sid no test has used.
pub fn new_sid() -> String {
    format!("SM{:032x}", rand::random::<u128>())
}

/// Twilio's `201` to a claimed message's create, with `sid` and `status`, as a worker
/// records it (no status check planned).
pub fn answer(sid: &str, status: smsdesk::model::Status) -> smsdesk::store::Acceptance {
    smsdesk::store::Acceptance {
        sid: sid.to_owned(),
        status,
        error_code: None,
        created: true,
        check_at: None,
    }
}

/// As [`answer`], for a message found in Twilio's Messages list: it may be another's.
pub fn listed(sid: &str, status: smsdesk::model::Status) -> smsdesk::store::Acceptance {
    smsdesk::store::Acceptance {
        created: false,
        ..answer(sid, status)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn wait_until_returns_what_the_check_found() {
        let looks = AtomicUsize::new(0);
        let found = wait_until("the third look", async || {
            let n = looks.fetch_add(1, Ordering::SeqCst) + 1;
            (n == 3).then_some(n)
        })
        .await;
        assert_eq!(found, 3);
    }

    #[tokio::test]
    #[should_panic(expected = "waited 50ms for the queue to empty; last seen: depth 2")]
    async fn wait_until_names_what_it_waited_for_and_what_it_saw() {
        wait_until_within(
            "the queue to empty",
            Duration::from_millis(50),
            async || -> Result<(), String> { Err("depth 2".into()) },
        )
        .await
    }

    #[tokio::test]
    #[should_panic(
        expected = "waited 50ms for a look that never ends; last seen: a look that did not finish"
    )]
    async fn wait_until_bounds_a_look_that_hangs() {
        wait_until_within(
            "a look that never ends",
            Duration::from_millis(50),
            async || std::future::pending::<bool>().await,
        )
        .await
    }
}
