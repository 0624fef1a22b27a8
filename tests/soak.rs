//! The soak, scaled down to 3 minutes for CI: two instances behind nginx on a PostgreSQL and
//! a Redis of its own, 100 webhooks a second, 200 sockets and a send a second, through two
//! Redis restarts, a PostgreSQL restart and a `kill -9` (`tests/soak/harness.rs`). It asserts
//! on counts only: nothing lost, nothing twice. Its own binary, since it restarts servers
//! of its own for minutes. The 30-minute run is `benches/soak.rs`.
//!
//! Needs `nginx`, `redis-server` and PostgreSQL's `initdb`; without one of them it says so and
//! is skipped, except under `CI`, where that is a failure.

#[path = "soak/client.rs"]
mod client;
#[path = "soak/harness.rs"]
mod harness;
#[allow(dead_code, unused_imports)]
#[path = "api/helpers/mod.rs"]
mod helpers;
#[path = "soak/postgres.rs"]
mod postgres;

use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_minutes_of_load_and_faults_lose_nothing_and_do_nothing_twice() {
    let Some(r) = harness::run(harness::Config {
        duration: Duration::from_secs(180),
        webhooks_per_second: 100,
        sockets: 200,
        send_every: Duration::from_secs(1),
        rss_every: Duration::from_secs(10),
    })
    .await
    else {
        return;
    };
    eprintln!("{r}");
    assert!(r.settled, "the run settled once the load stopped:\n{r}");
    assert!(r.webhooks > 0 && r.sends > 0, "{r}");
    assert_eq!(
        r.webhooks_answered, r.webhooks,
        "every webhook answered 2xx:\n{r}"
    );
    assert_eq!(r.webhooks_refused, 0, "{r}");
    let webhooks = r.webhooks as i64;
    assert_eq!(
        (r.stored, r.stored_sids, r.stored_bodies),
        (webhooks, webhooks, webhooks),
        "each message stored exactly once:\n{r}"
    );
    assert_eq!(
        r.missing(),
        0,
        "every socket saw every message of its agent:\n{r}"
    );
    assert_eq!(
        (r.sends_taken, r.sends_refused),
        (r.sends, 0),
        "every send taken:\n{r}"
    );
    assert_eq!(
        (r.twilio_creates, r.twilio_distinct),
        (r.sends, r.sends),
        "Twilio got each send exactly once:\n{r}"
    );
    let sends = r.sends as i64;
    assert_eq!(
        (r.outbound, r.outbound_client_ids, r.delivered),
        (sends, sends, sends),
        "each send stored once and delivered:\n{r}"
    );
    assert!(
        r.rss.iter().all(|(_, a, b)| *a > 0 || *b > 0),
        "RSS was sampled:\n{r}"
    );
}
