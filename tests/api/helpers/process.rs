//! The server as a process of its own, for what only a process can show: `kill -9`.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, wait_until_within};

const BIN: &str = env!("CARGO_BIN_EXE_smsdesk");

/// The smsdesk binary with a given environment, on a port of its own.
pub struct ServerProcess {
    env: Vec<(&'static str, String)>,
    child: Option<Child>,
    pub addr: String,
}

impl ServerProcess {
    /// A server (not started yet) with `env` besides `PORT`, which is chosen here.
    pub fn new(env: Vec<(&'static str, String)>) -> Self {
        let port = free_port();
        let mut env = env;
        env.push(("PORT", port.to_string()));
        Self {
            env,
            child: None,
            addr: format!("http://127.0.0.1:{port}"),
        }
    }

    /// The binary with this server's environment and nothing else.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "warn")
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null());
        cmd
    }

    /// Adds an agent with the CLI (password `password123`).
    pub fn add_agent(&self, email: &str, number: &str) {
        let mut add = self
            .command()
            .args([
                "agent", "add", "--email", email, "--name", "A", "--number", number,
            ])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(add.stdin.as_mut().unwrap(), b"password123\n").unwrap();
        assert!(add.wait().unwrap().success(), "agent add");
    }

    /// Starts the server and waits until it is ready.
    pub async fn start(&mut self) {
        self.child = Some(self.command().spawn().expect("start smsdesk"));
        let http = reqwest::Client::new();
        let readyz = format!("{}/readyz", self.addr);
        wait_until_within("smsdesk to be ready", Duration::from_secs(20), async || {
            http.get(&readyz)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
    }

    /// The process id while it runs (for its memory in `/proc`).
    #[allow(
        dead_code,
        reason = "the soak (tests/soak.rs) reads it, the api tests do not"
    )]
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn kill_9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            child.wait().unwrap();
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill_9();
    }
}
