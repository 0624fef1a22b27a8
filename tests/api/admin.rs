//! Administration (docs/api.md): roles, the admin API, invite links, editing and
//! disabling agents, and the last active admin.

use serde_json::{Value, json};
use smsdesk::api::admin::{Agents, Invited};
use smsdesk::api::session::SessionStarted;
use smsdesk::domain::NewAgent;
use smsdesk::model::{ManagedAgent, Role};
use smsdesk::store::Invite;

use crate::helpers::{Agent, Backend, TestApp, read, with_database};
use crate::on_both_backends;

on_both_backends! {
    every_agent_object_carries_its_role: Simulator,
    only_admins_reach_the_admin_api: Simulator,
    an_invited_agent_chooses_a_password_once: Simulator,
    an_expired_invite_is_refused: Simulator,
    invites_are_validated: Simulator,
    an_admin_edits_name_numbers_and_role: Simulator,
    disabling_ends_sessions_and_disconnects_sockets_at_once: Simulator,
    the_last_active_admin_stays: Simulator,
    concurrent_demotions_leave_one_admin: Simulator,
}

const NUMBER: &str = "+15550001000";

async fn patch(app: &TestApp, by: &Agent, id: &str, body: Value) -> (u16, Value) {
    let r = app
        .http
        .patch(app.url(&format!("/api/admin/agents/{id}")))
        .bearer_auth(&by.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    read(r).await
}

async fn managed(app: &TestApp, admin: &Agent) -> Vec<ManagedAgent> {
    let (status, list) = app.get_as::<Agents>("/api/admin/agents", Some(admin)).await;
    assert_eq!(status, 200);
    list.agents
}

async fn invite(app: &TestApp, admin: &Agent, email: &str) -> Invited {
    let (status, invited) = app
        .post_json_as::<Invited>(
            "/api/admin/agents",
            Some(admin),
            json!({"email": email, "name": "New One", "numbers": ["(555) 000-1000"]}),
        )
        .await;
    assert_eq!(status, 201);
    invited
}

fn token_of(invite_url: &str) -> String {
    invite_url.split("token=").nth(1).unwrap().to_owned()
}

async fn login(app: &TestApp, email: &str, password: &str) -> u16 {
    app.post_json(
        "/api/auth/login",
        None,
        json!({"email": email, "password": password}),
    )
    .await
    .0
}

async fn every_agent_object_carries_its_role(app: TestApp) {
    // The first agent is the admin while there is none; the next ones are agents.
    let admin = app.agent("admin@example.com", &[NUMBER]).await;
    let agent = app.agent("agent@example.com", &[NUMBER]).await;
    let (_, me) = app.get("/api/auth/me", Some(&admin)).await;
    assert_eq!(me["agent"]["role"], "admin");
    let (_, me) = app.get("/api/auth/me", Some(&agent)).await;
    assert_eq!(me["agent"]["role"], "agent");
    let (status, started) = app
        .post_json_as::<SessionStarted>(
            "/api/auth/login",
            None,
            json!({"email": "agent@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(started.agent.role, Role::Agent);

    let list = managed(&app, &admin).await;
    assert_eq!(list.len(), 2);
    let first = &list[0];
    assert_eq!(
        (first.email.as_str(), first.role, first.disabled),
        ("admin@example.com", Role::Admin, false)
    );
    assert!(!first.invite_pending);
    assert_eq!(first.numbers, [NUMBER]);
    let (_, raw) = app.get("/api/admin/agents", Some(&admin)).await;
    let keys: Vec<&str> = raw["agents"][1]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for key in [
        "id",
        "email",
        "name",
        "role",
        "numbers",
        "disabled",
        "invitePending",
        "createdAt",
    ] {
        assert!(keys.contains(&key), "{key} in {keys:?}");
    }
    assert!(raw["agents"][1].get("passwordHash").is_none());
}

async fn only_admins_reach_the_admin_api(app: TestApp) {
    let admin = app.agent("admin@example.com", &[NUMBER]).await;
    let agent = app.agent("agent@example.com", &[NUMBER]).await;
    let (status, error) = app.get("/api/admin/agents", Some(&agent)).await;
    assert_eq!(status, 403, "{error}");
    assert_eq!(error["error"]["code"], "forbidden");
    let body = json!({"email": "x@example.com", "name": "X", "numbers": [NUMBER]});
    let (status, _) = app
        .post_json("/api/admin/agents", Some(&agent), body.clone())
        .await;
    assert_eq!(status, 403);
    let (status, _) = patch(&app, &agent, &agent.id, json!({"role": "admin"})).await;
    assert_eq!(status, 403, "an agent cannot promote themselves");
    let (status, _) = app
        .post_json(
            &format!("/api/admin/agents/{}/invite", agent.id),
            Some(&agent),
            json!({}),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = app.get("/api/admin/agents", None).await;
    assert_eq!(status, 401);

    // A cookie-carried change needs our Origin, as everywhere.
    let r = app
        .http
        .post(app.url("/api/admin/agents"))
        .header("cookie", format!("smsdesk_session={}", admin.token))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = app
        .http
        .post(app.url("/api/admin/agents"))
        .header("cookie", format!("smsdesk_session={}", admin.token))
        .header("origin", app.origin())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

async fn an_invited_agent_chooses_a_password_once(app: TestApp) {
    let admin = app.agent("admin@example.com", &[NUMBER]).await;
    let invited = invite(&app, &admin, "New@Example.com").await;
    assert!(
        invited
            .invite_url
            .starts_with(&format!("{}/invite?token=", app.public_url)),
        "{}",
        invited.invite_url
    );
    assert_eq!(invited.agent.email, "new@example.com");
    assert_eq!(invited.agent.numbers, [NUMBER]);
    assert_eq!(invited.agent.role, Role::Agent);
    assert!(invited.agent.invite_pending);
    // No password yet: nothing signs in.
    assert_eq!(login(&app, "new@example.com", "").await, 401);

    let token = token_of(&invited.invite_url);
    let page_text = async |token: &str| {
        let url = app.url(&format!("/invite?token={token}"));
        let r = app.http.get(url).send().await.unwrap();
        (r.status(), r.text().await.unwrap())
    };
    let page = async |token: String| page_text(&token).await.0;
    let (status, open) = page_text(&token).await;
    assert_eq!(status, 200);
    assert!(
        open.contains("new@example.com"),
        "the page names the invited email"
    );
    let (status, unknown) = page_text("unknown").await;
    assert_eq!(status, 404);
    assert!(
        unknown.contains("This invite link can’t be used"),
        "{unknown}"
    );
    assert!(unknown.contains(r#"href="/login""#), "{unknown}");
    assert_eq!(
        app.http
            .get(app.url("/invite"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    let (status, short) = app
        .post_json(
            "/api/invite",
            None,
            json!({"token": token, "password": "seven77"}),
        )
        .await;
    assert_eq!(status, 422, "{short}");
    let (status, _) = app
        .post_json(
            "/api/invite",
            None,
            json!({"token": "unknown", "password": "long enough"}),
        )
        .await;
    assert_eq!(status, 404);

    let r = app
        .http
        .post(app.url("/api/invite"))
        .json(&json!({"token": token, "password": "long enough"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("smsdesk_session="),
        "signed in by cookie"
    );
    let started: SessionStarted = r.json().await.unwrap();
    assert_eq!(started.agent.email, "new@example.com");
    assert_eq!(started.agent.role, Role::Agent);
    let me = Agent {
        id: started.agent.id.to_string(),
        token: started.token,
    };
    let (status, _) = app.get("/api/auth/me", Some(&me)).await;
    assert_eq!(status, 200);
    assert_eq!(login(&app, "new@example.com", "long enough").await, 200);

    // Used: the link and the page are gone, and the password stays.
    let (status, _) = app
        .post_json(
            "/api/invite",
            None,
            json!({"token": token, "password": "another password"}),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(page(token).await, 404);
    assert_eq!(
        login(&app, "new@example.com", "another password").await,
        401
    );
    let list = managed(&app, &admin).await;
    assert!(!list[1].invite_pending);

    // A new link only for an agent who has not chosen a password.
    let (status, error) = app
        .post_json(
            &format!("/api/admin/agents/{}/invite", me.id),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(status, 409, "{error}");
}

async fn an_expired_invite_is_refused(app: TestApp) {
    let admin = app.agent("admin@example.com", &[NUMBER]).await;
    let (token, hash) = smsdesk::auth::new_token();
    let yesterday = chrono::Utc::now() - chrono::Duration::days(1);
    let late = app
        .store
        .invite_agent(
            &NewAgent::parse_invited("late@example.com", "Late", &[NUMBER.to_owned()]).unwrap(),
            Role::Agent,
            Invite {
                token_hash: &hash,
                expires_at: yesterday,
            },
        )
        .await
        .unwrap()
        .unwrap();
    let r = app
        .http
        .get(app.url(&format!("/invite?token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let (status, _) = app
        .post_json(
            "/api/invite",
            None,
            json!({"token": token, "password": "long enough"}),
        )
        .await;
    assert_eq!(status, 404);

    // The admin sends a new link; the old one stays dead.
    let (status, renewed) = app
        .post_json_as::<Invited>(
            &format!("/api/admin/agents/{}/invite", late.id),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _) = app
        .post_json(
            "/api/invite",
            None,
            json!({"token": token_of(&renewed.invite_url), "password": "long enough"}),
        )
        .await;
    assert_eq!(status, 200);
    assert!(app.store.prune_invites().await.is_ok());
}

async fn invites_are_validated(app: TestApp) {
    let admin = app.agent("admin@example.com", &[NUMBER]).await;
    for (body, field) in [
        (
            json!({"email": "nope", "name": "X", "numbers": [NUMBER]}),
            "email",
        ),
        (
            json!({"email": "x@example.com", "name": " ", "numbers": [NUMBER]}),
            "name",
        ),
        (
            json!({"email": "x@example.com", "name": "X", "numbers": []}),
            "numbers",
        ),
        (
            json!({"email": "x@example.com", "name": "X", "numbers": ["12"]}),
            "numbers",
        ),
        (
            json!({"email": "x@example.com", "name": "X", "numbers": [NUMBER], "role": "root"}),
            "role",
        ),
    ] {
        let (status, error) = app.post_json("/api/admin/agents", Some(&admin), body).await;
        assert_eq!(status, 422, "{error}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "{field}: {message}");
    }
    let (status, _) = app
        .post_json("/api/admin/agents", Some(&admin), json!({"email": 1}))
        .await;
    assert_eq!(status, 422);

    let (status, invited) = app
        .post_json_as::<Invited>(
            "/api/admin/agents",
            Some(&admin),
            json!({"email": "boss2@example.com", "name": "Boss", "numbers": [NUMBER], "role": "admin"}),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(invited.agent.role, Role::Admin);
    for email in ["boss2@example.com", "ADMIN@example.com"] {
        let (status, error) = app
            .post_json(
                "/api/admin/agents",
                Some(&admin),
                json!({"email": email, "name": "Again", "numbers": [NUMBER]}),
            )
            .await;
        assert_eq!(status, 409);
        assert_eq!(error["error"]["code"], "email_taken");
    }
}

async fn an_admin_edits_name_numbers_and_role(app: TestApp) {
    let admin = app.agent("admin@example.com", &[NUMBER]).await;
    let agent = app.agent("agent@example.com", &[NUMBER]).await;
    let (status, changed) = patch(
        &app,
        &admin,
        &agent.id,
        json!({"name": " Agent Smith ", "numbers": ["(555) 000-2000", "+1 555 000 3000"]}),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["name"], "Agent Smith");
    assert_eq!(changed["numbers"], json!(["+15550002000", "+15550003000"]));
    assert_eq!(changed["role"], "agent");
    let (_, me) = app.get("/api/auth/me", Some(&agent)).await;
    assert_eq!(
        me["agent"]["numbers"],
        json!(["+15550002000", "+15550003000"])
    );

    for (body, field) in [
        (json!({"name": ""}), "name"),
        (json!({"numbers": []}), "numbers"),
        (json!({"numbers": ["+1 555"]}), "numbers"),
        (json!({"role": "owner"}), "role"),
    ] {
        let (status, error) = patch(&app, &admin, &agent.id, body).await;
        assert_eq!(status, 422, "{error}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "{field}: {message}");
    }
    let (status, _) = patch(&app, &admin, &agent.id, json!({"disabled": "yes"})).await;
    assert_eq!(status, 422);
    let (status, _) = patch(&app, &admin, &agent.id, json!({"email": "x@y.z"})).await;
    assert_eq!(status, 422, "unknown fields are refused");
    for id in ["999999", "abc"] {
        let (status, _) = patch(&app, &admin, id, json!({"name": "X"})).await;
        assert_eq!(status, 404);
    }

    // Promoted: the admin API opens to them at once, on the session they hold.
    let (status, _) = app.get("/api/admin/agents", Some(&agent)).await;
    assert_eq!(status, 403);
    let (status, changed) = patch(&app, &admin, &agent.id, json!({"role": "admin"})).await;
    assert_eq!((status, &changed["role"]), (200, &json!("admin")));
    let (status, _) = app.get("/api/admin/agents", Some(&agent)).await;
    assert_eq!(status, 200);
}

async fn disabling_ends_sessions_and_disconnects_sockets_at_once(app: TestApp) {
    let admin = app.agent("admin@example.com", &[NUMBER]).await;
    let agent = app.agent("agent@example.com", &[NUMBER]).await;
    let mut sockets = [app.socket(&agent).await, app.socket(&agent).await];
    let mut admins_socket = app.socket(&admin).await;

    let (status, changed) = patch(&app, &admin, &agent.id, json!({"disabled": true})).await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["disabled"], true);
    for s in &mut sockets {
        s.closed().await;
    }
    let (status, _) = app.get("/api/auth/me", Some(&agent)).await;
    assert_eq!(status, 401);
    // The right password learns why; a wrong one learns nothing about the account.
    let sign_in = async |password: &str| {
        let body = json!({"email": "agent@example.com", "password": password});
        app.post_json("/api/auth/login", None, body).await
    };
    let (status, refused) = sign_in("password123").await;
    assert_eq!(status, 401);
    assert_eq!(refused["error"]["code"], "account_disabled", "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("disabled") && message.contains("admin"),
        "{message}"
    );
    let (status, wrong) = sign_in("not the password").await;
    assert_eq!(status, 401);
    assert_eq!(wrong["error"]["code"], "unauthorized", "{wrong}");
    assert!(!wrong.to_string().contains("disabled"), "{wrong}");
    assert!(
        crate::helpers::Socket::connect(
            &app,
            crate::helpers::SocketAuth::Token(agent.token.clone())
        )
        .await
        .is_err()
    );
    // Only theirs: the admin's socket still hears.
    let sid = app.inbound("+14155550123", NUMBER, "still here?").await;
    assert_eq!(admins_socket.next("message:new").await["twilioSid"], sid);

    // Enabled again, they sign in anew.
    let (status, changed) = patch(&app, &admin, &agent.id, json!({"disabled": false})).await;
    assert_eq!((status, &changed["disabled"]), (200, &json!(false)));
    assert_eq!(login(&app, "agent@example.com", "password123").await, 200);
}

async fn the_last_active_admin_stays(app: TestApp) {
    let admin = app.agent("admin@example.com", &[NUMBER]).await;
    let agent = app.agent("agent@example.com", &[NUMBER]).await;
    for body in [
        json!({"role": "agent"}),
        json!({"disabled": true}),
        json!({"role": "agent", "disabled": true}),
    ] {
        let (status, error) = patch(&app, &admin, &admin.id, body).await;
        assert_eq!(status, 409, "{error}");
        assert_eq!(error["error"]["code"], "last_admin");
    }
    // A disabled admin does not count.
    let (status, _) = patch(
        &app,
        &admin,
        &agent.id,
        json!({"role": "admin", "disabled": true}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = patch(&app, &admin, &admin.id, json!({"role": "agent"})).await;
    assert_eq!(status, 409);
    // With another active admin, stepping down is fine.
    let (status, _) = patch(&app, &admin, &agent.id, json!({"disabled": false})).await;
    assert_eq!(status, 200);
    let (status, changed) = patch(&app, &admin, &admin.id, json!({"role": "agent"})).await;
    assert_eq!((status, &changed["role"]), (200, &json!("agent")));
    let (status, _) = app.get("/api/admin/agents", Some(&admin)).await;
    assert_eq!(status, 403);
}

/// Two admins demote each other at the same moment, again and again: each time one
/// demotion wins and one admin remains.
async fn concurrent_demotions_leave_one_admin(app: TestApp) {
    let a = app.agent("a@example.com", &[NUMBER]).await;
    let b = app.agent("b@example.com", &[NUMBER]).await;
    let mut admin = a.clone();
    for round in 0..6 {
        let other = if admin.id == a.id { &b } else { &a };
        let (status, _) = patch(&app, &admin, &other.id, json!({"role": "admin"})).await;
        assert_eq!(status, 200);
        // Half the rounds cross (each demotes the other), half one admin demotes both.
        let (first, second) = if round % 2 == 0 {
            (
                patch(&app, &a, &b.id, json!({"role": "agent"})),
                patch(&app, &b, &a.id, json!({"role": "agent"})),
            )
        } else {
            (
                patch(&app, &a, &b.id, json!({"role": "agent"})),
                patch(&app, &a, &a.id, json!({"role": "agent"})),
            )
        };
        let (first, second) = tokio::join!(first, second);
        let mut statuses = [first.0, second.0];
        statuses.sort();
        assert!(
            statuses == [200, 403] || statuses == [200, 409],
            "round {round}: {statuses:?}"
        );
        let agents = app.store.managed_agents().await.unwrap();
        let admins: Vec<&ManagedAgent> = agents.iter().filter(|m| m.role == Role::Admin).collect();
        assert_eq!(admins.len(), 1, "round {round}: {agents:?}");
        admin = if admins[0].id.to_string() == a.id {
            a.clone()
        } else {
            b.clone()
        };
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrading_makes_the_oldest_agent_admin_sqlite() {
    with_database(Backend::Sqlite, upgrade_makes_the_oldest_agent_admin).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrading_makes_the_oldest_agent_admin_postgres() {
    with_database(Backend::Postgres, upgrade_makes_the_oldest_agent_admin).await
}

/// A database from before roles (the migrations up to 0006), with two agents: once the
/// server's migrations have run, the oldest is the admin.
async fn upgrade_makes_the_oldest_agent_admin(url: String) {
    let backend = if url.starts_with("postgres") {
        "postgres"
    } else {
        "sqlite"
    };
    let old = tempfile::tempdir().unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.as_str() < "0007" {
            std::fs::copy(&path, old.path().join(&name)).unwrap();
        }
    }
    let migrator = sqlx::migrate::Migrator::new(old.path()).await.unwrap();
    let insert =
        "INSERT INTO agents (email, name, password_hash, created_at) VALUES ($1, $2, 'x', $3)";
    let now = chrono::Utc::now();
    let agents = [
        ("new@example.com", now),
        ("old@example.com", now - chrono::Duration::days(30)),
    ];
    if backend == "postgres" {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        migrator.run(&pool).await.unwrap();
        for (email, at) in agents {
            sqlx::query(insert)
                .bind(email)
                .bind(email)
                .bind(at)
                .execute(&pool)
                .await
                .unwrap();
        }
        pool.close().await;
    } else {
        let options: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
        let pool = sqlx::SqlitePool::connect_with(options.create_if_missing(true))
            .await
            .unwrap();
        migrator.run(&pool).await.unwrap();
        for (email, at) in agents {
            sqlx::query(insert)
                .bind(email)
                .bind(email)
                .bind(at)
                .execute(&pool)
                .await
                .unwrap();
        }
        pool.close().await;
    }

    let settings =
        smsdesk::config::Settings::from_lookup(|k| (k == "DATABASE_URL").then(|| url.clone()))
            .unwrap();
    let store = smsdesk::startup::connect_store(&settings.database_url)
        .await
        .unwrap();
    let roles: Vec<(String, Role)> = store
        .managed_agents()
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.email, a.role))
        .collect();
    assert_eq!(
        roles,
        [
            ("new@example.com".to_owned(), Role::Agent),
            ("old@example.com".to_owned(), Role::Admin)
        ]
    );
}
