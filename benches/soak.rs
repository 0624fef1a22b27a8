//! The soak at full size (`tests/soak/harness.rs`): two instances behind nginx on a
//! PostgreSQL and a Redis of its own, through two Redis restarts, a PostgreSQL restart and a
//! `kill -9`; prints the counts and the RSS of each instance over time (a Markdown table).
//!
//! `cargo bench --bench soak`; `SOAK_MINUTES` (30), `SOAK_RATE` (webhooks a second, 300),
//! `SOAK_SOCKETS` (1000), `SOAK_SEND_EVERY_MS` (1000), `SOAK_RSS_EVERY_S` (30).

#[path = "../tests/soak/client.rs"]
mod client;
#[path = "../tests/soak/harness.rs"]
mod harness;
#[allow(dead_code, unused_imports)]
#[path = "../tests/api/helpers/mod.rs"]
mod helpers;
#[path = "../tests/soak/postgres.rs"]
mod postgres;

use std::time::Duration;

fn env(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} is a number: {v:?}"))
        })
        .unwrap_or(default)
}

fn main() {
    let config = harness::Config {
        duration: Duration::from_secs_f64(env("SOAK_MINUTES", 30.0) * 60.0),
        webhooks_per_second: env("SOAK_RATE", 300.0) as u32,
        sockets: env("SOAK_SOCKETS", 1000.0) as usize,
        send_every: Duration::from_millis(env("SOAK_SEND_EVERY_MS", 1000.0) as u64),
        rss_every: Duration::from_secs_f64(env("SOAK_RSS_EVERY_S", 30.0)),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let Some(report) = runtime.block_on(harness::run(config)) else {
        return;
    };
    println!("{report}");
}
