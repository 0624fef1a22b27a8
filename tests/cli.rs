//! The binary as a user starts it: banner and setup link, agent commands, bad
//! configuration, a port in use, and SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_smsdesk");

fn smsdesk(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn");
    cmd
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Reads the child's stdout until a line contains `needle`; returns everything read.
fn read_until(child: &mut Child, needle: &str) -> String {
    let stdout = child.stdout.as_mut().expect("piped stdout");
    let mut reader = BufReader::new(stdout);
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
        seen.push_str(&line);
        if line.contains(needle) {
            return seen;
        }
    }
    panic!("`{needle}` never printed; got:\n{seen}");
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "the process did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn first_start_prints_the_banner_and_a_setup_link_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = smsdesk(dir.path())
        .env("PORT", port.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = read_until(&mut child, "/setup?token=");
    for expected in [
        "Server ready!",
        &format!("Local:    http://localhost:{port}"),
        "Socket.io: Enabled",
        "[Socket.io] 🚀 Server initialized",
        "Database:   sqlite",
        "Twilio:     simulated",
        &format!("http://localhost:{port}/api/crm/sms/webhook"),
        &format!("http://localhost:{port}/api/crm/sms/status-webhook"),
    ] {
        assert!(out.contains(expected), "missing `{expected}` in:\n{out}");
    }
    assert!(
        dir.path().join("data/smsdesk.db").exists(),
        "./data/smsdesk.db is created"
    );

    let token = out
        .split("/setup?token=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let setup = |t: &str| {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            s,
            "GET /setup?token={t} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        s.read_to_string(&mut response).unwrap();
        response
    };
    assert!(setup("nope").starts_with("HTTP/1.1 404"));
    assert!(setup(&token).starts_with("HTTP/1.1 200"));

    // SAFETY-free signal: `kill` is the tool a user has.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(wait_exit(&mut child).success(), "a clean exit on SIGTERM");
}

#[test]
fn agent_add_list_and_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let mut add = smsdesk(dir.path())
        .args([
            "agent",
            "add",
            "--email",
            "Ana@Example.com",
            "--name",
            "Ana",
            "--number",
            "(415) 555-0100",
            "--number",
            "+1 415 555 0101",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    add.stdin
        .as_mut()
        .unwrap()
        .write_all(b"correct horse\n")
        .unwrap();
    let out = add.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");

    let list = smsdesk(dir.path())
        .args(["agent", "list"])
        .output()
        .unwrap();
    let text = String::from_utf8(list.stdout).unwrap();
    assert!(
        text.contains("ana@example.com\tAna\tadmin\t+14155550100,+14155550101"),
        "{text}"
    );

    let changed = smsdesk(dir.path())
        .args([
            "agent",
            "numbers",
            "ana@example.com",
            "--add",
            "415-555-0102",
            "--remove",
            "+14155550100",
        ])
        .output()
        .unwrap();
    assert!(changed.status.success(), "{changed:?}");
    let text = String::from_utf8(changed.stdout).unwrap();
    assert!(text.contains("+14155550101,+14155550102"), "{text}");

    let mut short = smsdesk(dir.path())
        .args([
            "agent",
            "add",
            "--email",
            "b@x.io",
            "--name",
            "B",
            "--number",
            "+14155550100",
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    short.stdin.as_mut().unwrap().write_all(b"short\n").unwrap();
    let out = short.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("password"));

    // The first agent became the admin; others are agents unless `--admin` says otherwise.
    for (email, admin) in [("bo@x.io", false), ("cy@x.io", true)] {
        let mut args = vec!["agent", "add", "--email", email, "--name", "N"];
        args.extend(["--number", "+14155550100"]);
        if admin {
            args.push("--admin");
        }
        let mut add = smsdesk(dir.path())
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        add.stdin
            .as_mut()
            .unwrap()
            .write_all(b"correct horse\n")
            .unwrap();
        assert!(add.wait_with_output().unwrap().status.success());
    }
    let list = smsdesk(dir.path())
        .args(["agent", "list"])
        .output()
        .unwrap();
    let text = String::from_utf8(list.stdout).unwrap();
    assert!(text.contains("bo@x.io\tN\tagent\t"), "{text}");
    assert!(text.contains("cy@x.io\tN\tadmin\t"), "{text}");
}

#[test]
fn agent_add_refuses_control_bidi_and_invisible_characters() {
    let dir = tempfile::tempdir().unwrap();
    for (email, name, field) in [
        ("a@x.io", "Ann\u{1b}[2J", "name"),
        ("a@x.io", "\u{200B}", "name"),
        ("a@x.io", "Ann\u{202E}gpj.exe", "name"),
        ("a@x.io", "\u{2067}Ann", "name"),
        ("a\u{7}@x.io", "Ann", "email"),
    ] {
        let mut add = smsdesk(dir.path())
            .args([
                "agent",
                "add",
                "--email",
                email,
                "--name",
                name,
                "--number",
                "+14155550100",
            ])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        add.stdin
            .as_mut()
            .unwrap()
            .write_all(b"correct horse\n")
            .unwrap();
        let out = add.wait_with_output().unwrap();
        assert!(!out.status.success(), "{name:?} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(field), "{stderr}");
    }
    let list = smsdesk(dir.path())
        .args(["agent", "list"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&list.stdout).contains("x.io"));
}

#[test]
fn bad_configuration_stops_with_one_line_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    // A database that never answers: were the SIDs accepted, the start would end naming it.
    let live = [
        ("TWILIO_ACCOUNT_SID", "AC0123456789abcdef0123456789abcdef"),
        ("TWILIO_AUTH_TOKEN", "token"),
        ("DATABASE_URL", "postgres://127.0.0.1:1/nowhere"),
    ];
    for (named, env) in [
        ("PORT", &[("PORT", "http")][..]),
        ("DATABASE_URL", &[("DATABASE_URL", "mysql://db/app")]),
        ("PUBLIC_URL", &[("PUBLIC_URL", "not a url")]),
        ("TWILIO_AUTH_TOKEN", &[live[0]]),
        (
            "TWILIO_ACCOUNT_SID",
            &[("TWILIO_ACCOUNT_SID", "ACnotvalid"), live[1], live[2]],
        ),
        (
            "TWILIO_MESSAGING_SERVICE_SID",
            &[
                live[0],
                live[1],
                live[2],
                ("TWILIO_MESSAGING_SERVICE_SID", "MG123"),
            ],
        ),
        ("TRUSTED_PROXIES", &[("TRUSTED_PROXIES", "localhost")]),
        ("MAX_SOCKETS_PER_AGENT", &[("MAX_SOCKETS_PER_AGENT", "0")]),
    ] {
        let out = smsdesk(dir.path())
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{env:?} must not start");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(err.contains(named), "{env:?}: {err}");
    }

    let out = smsdesk(dir.path())
        .env(
            "DATABASE_URL",
            "postgres://smsdesk:s3cret-pw@127.0.0.1:1/nowhere",
        )
        .env("PORT", free_port().to_string())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("DATABASE_URL"), "{err}");
    assert!(
        !err.contains("s3cret-pw"),
        "the password is never printed: {err}"
    );
}

#[test]
fn redis_needs_postgres_and_its_password_is_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let out = smsdesk(dir.path())
        .env("REDIS_URL", "redis://:s3cret-pw@127.0.0.1:6379/0")
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "SQLite with REDIS_URL must not start"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("REDIS_URL") && err.contains("several instances need PostgreSQL"),
        "{err}"
    );
    assert!(!err.contains("s3cret-pw"), "{err}");

    let out = smsdesk(dir.path())
        .env("DATABASE_URL", "postgres://127.0.0.1:1/nowhere")
        .env("REDIS_URL", "http://:s3cret-pw@127.0.0.1:6379")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains("REDIS_URL"), "{err}");
    assert!(!err.contains("s3cret-pw"), "{err}");
}

#[test]
fn a_port_in_use_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = smsdesk(dir.path())
        .env("PORT", port.to_string())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("PORT") && err.contains("already in use"),
        "{err}"
    );
}
