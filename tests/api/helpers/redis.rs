//! A private `redis-server` per test, on a free port (never the shared 6379: tests run in
//! parallel), without persistence; it can be stopped and started again on the same port, and
//! told things through a connection of the test's own ([`RedisClient`]). Without
//! `redis-server` the tests that need it skip, except under `CI`, where they fail.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use super::{ci, free_port, wait_until};

const BINARY: &str = "redis-server";

pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts one, or `None` (with a printed line) when `redis-server` is not installed
    /// outside CI.
    pub async fn start() -> Option<Self> {
        if Command::new(BINARY)
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            assert!(
                !ci(),
                "{BINARY} is not installed, but CI is: the Redis tests must run in CI \
                 (apt-get install redis-server, as .ci/run does)"
            );
            eprintln!("skipped: {BINARY} is not installed, so Redis fan-out is not tested here");
            return None;
        }
        let port = free_port();
        let mut redis = Self { port, child: None };
        redis.restart().await;
        Some(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Stops the server (as SIGKILL would: every connection drops at once).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("stop redis-server");
            child.wait().expect("redis-server exits");
        }
    }

    /// Starts the server on its port and waits until it answers `PING`.
    pub async fn restart(&mut self) {
        self.stop();
        let child = Command::new(BINARY)
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let port = self.port;
        wait_until(&format!("redis-server on port {port}"), async || {
            tokio::task::spawn_blocking(move || pong(port))
                .await
                .unwrap()
        })
        .await;
    }
}

impl RedisServer {
    /// A connection of the test's own.
    pub async fn client(&self) -> RedisClient {
        let conn = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .expect("connect to redis-server");
        RedisClient(BufReader::new(conn))
    }
}

/// A connection to a [`RedisServer`] that sends commands and reads their answers.
pub struct RedisClient(BufReader<tokio::net::TcpStream>);

impl RedisClient {
    /// Sends a command; its answer as text (a simple or bulk string, an integer), or
    /// `Err` with Redis's error.
    pub async fn command(&mut self, args: &[&str]) -> Result<String, String> {
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        self.0
            .get_mut()
            .write_all(request.as_bytes())
            .await
            .unwrap();
        let mut line = String::new();
        self.0.read_line(&mut line).await.unwrap();
        let (kind, rest) = line.trim_end().split_at(1);
        match kind {
            "+" | ":" => Ok(rest.to_owned()),
            "-" => Err(rest.to_owned()),
            "$" => {
                let Ok(length) = rest.parse::<usize>() else {
                    return Ok(String::new());
                };
                let mut bulk = vec![0u8; length + 2];
                self.0.read_exact(&mut bulk).await.unwrap();
                bulk.truncate(length);
                Ok(String::from_utf8(bulk).unwrap())
            }
            _ => panic!("an answer this client does not read: {line:?}"),
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether a Redis on `port` answers `PING`.
fn pong(port: u16) -> bool {
    let Ok(mut conn) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(1)));
    let mut answer = [0u8; 7];
    conn.write_all(b"PING\r\n").is_ok()
        && conn.read_exact(&mut answer).is_ok()
        && &answer == b"+PONG\r\n"
}
