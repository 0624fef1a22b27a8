//! A login that races an admin's disable (docs/security.md, "Sessions"): it never yields a usable
//! session, and no session of the race comes back when the agent is enabled again.

use futures_util::future::join_all;
use serde_json::{Value, json};
use sqlx::Connection;

use crate::helpers::{Agent, Backend, TestApp, read, run, wait_until};
use crate::on_both_backends;

on_both_backends! {
    logins_racing_a_disable_keep_no_session: Simulator.env("TRUSTED_PROXIES", "127.0.0.1"),
}

const NUMBER: &str = "+15550001000";
const EMAIL: &str = "agent@example.com";
const PASSWORD: &str = "password123";

/// Rounds of logins side by side with a disable: each is a chance for a login's session to
/// be written after the disable ended the agent's sessions.
const ROUNDS: usize = 16;
const LOGINS_PER_ROUND: usize = 3;

async fn set_disabled(app: &TestApp, admin: &Agent, id: &str, disabled: bool) {
    let r = app
        .http
        .patch(app.url(&format!("/api/admin/agents/{id}")))
        .bearer_auth(&admin.token)
        .json(&json!({"disabled": disabled}))
        .send()
        .await
        .unwrap();
    let (status, body) = read(r).await;
    assert_eq!(
        (status, &body["disabled"]),
        (200, &json!(disabled)),
        "{body}"
    );
}

/// The agent's login from `address` (through `X-Forwarded-For`, so that the rounds' refused
/// logins do not add up against one address).
async fn login(app: &TestApp, address: String) -> (u16, Value) {
    let r = app
        .http
        .post(app.url("/api/auth/login"))
        .header("X-Forwarded-For", address)
        .json(&json!({"email": EMAIL, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    read(r).await
}

async fn me(app: &TestApp, token: &str) -> u16 {
    let r = app
        .http
        .get(app.url("/api/auth/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    r.status().as_u16()
}

async fn logins_racing_a_disable_keep_no_session(app: TestApp) {
    let admin = app.agent("admin@example.com", &[NUMBER]).await;
    let agent = app.agent(EMAIL, &[NUMBER]).await;
    for round in 0..ROUNDS {
        let logins = (0..LOGINS_PER_ROUND).map(|n| login(&app, format!("10.77.{round}.{n}")));
        let (answers, ()) = tokio::join!(
            join_all(logins),
            set_disabled(&app, &admin, &agent.id, true)
        );
        let mut tokens = Vec::new();
        for (status, body) in answers {
            match status {
                200 => tokens.push(body["token"].as_str().unwrap().to_owned()),
                401 => assert_eq!(body["error"]["code"], "account_disabled", "{body}"),
                _ => panic!("round {round}: {status} {body}"),
            }
        }
        for token in &tokens {
            assert_eq!(
                me(&app, token).await,
                401,
                "round {round}: usable while disabled"
            );
        }
        set_disabled(&app, &admin, &agent.id, false).await;
        for token in &tokens {
            assert_eq!(
                me(&app, token).await,
                401,
                "round {round}: the login answered 200 and its session came back with the agent"
            );
        }
        // Enabled, they sign in anew (which also clears the account's refused logins).
        let (status, body) = login(&app, format!("10.78.{round}.1")).await;
        assert_eq!(status, 200, "round {round}: {body}");
        assert_eq!(me(&app, body["token"].as_str().unwrap()).await, 200);
    }
    assert_eq!(
        me(&app, &agent.token).await,
        401,
        "the first session ended for good"
    );
}

/// PostgreSQL runs its statements side by side: a session insert that read the agent as
/// enabled just before a disable committed must not commit after the disable ended the
/// agent's sessions. Here the disable is held open, its row written, while a session is
/// asked for: the insert waits for it, then sees the agent disabled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_waits_for_a_disable_in_flight_postgres() {
    run(
        Backend::Postgres,
        TestApp::builder(),
        async |app: TestApp| {
            let agent = app.agent(EMAIL, &[NUMBER]).await;
            let id: smsdesk::model::AgentId = agent.id.parse().unwrap();
            let mut disabling = sqlx::PgConnection::connect(&app.database_url)
                .await
                .unwrap();
            let mut watching = sqlx::PgConnection::connect(&app.database_url)
                .await
                .unwrap();
            let mut disable = disabling.begin().await.unwrap();
            sqlx::query("UPDATE agents SET disabled = true WHERE id = $1")
                .bind(id)
                .execute(&mut *disable)
                .await
                .unwrap();

            let (_, hash) = smsdesk::auth::new_token();
            let expires = chrono::Utc::now() + chrono::Duration::days(1);
            let store = app.store.clone();
            let session_hash = hash.clone();
            let starting =
                tokio::spawn(async move { store.create_session(&session_hash, id, expires).await });
            let waited = wait_until("the session insert to wait or to finish", async || {
                if starting.is_finished() {
                    return Some(false);
                }
                let waiting: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM pg_stat_activity \
                     WHERE datname = current_database() AND wait_event_type = 'Lock'",
                )
                .fetch_one(&mut watching)
                .await
                .unwrap();
                (waiting > 0).then_some(true)
            })
            .await;
            assert!(
                waited,
                "the session was written while the disable was in flight: {:?}",
                starting.is_finished()
            );

            sqlx::query("DELETE FROM sessions WHERE agent_id = $1")
                .bind(id)
                .execute(&mut *disable)
                .await
                .unwrap();
            disable.commit().await.unwrap();
            let started = starting.await.unwrap().unwrap();
            assert!(!started, "a disabled agent got a session");
            sqlx::query("UPDATE agents SET disabled = false WHERE id = $1")
                .bind(id)
                .execute(&mut disabling)
                .await
                .unwrap();
            assert!(app.store.session(&hash).await.unwrap().is_none());
        },
    )
    .await
}
