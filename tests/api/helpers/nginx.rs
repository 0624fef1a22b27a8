//! nginx in front of two instances, with the very configuration `deploy/` ships.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::{free_port, wait_until};

const TEMPLATE: &str = include_str!("../../../deploy/nginx.conf.template");

/// `nginx` on the PATH or where Debian puts it.
pub fn nginx_binary() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("nginx"))
        .find(|p| p.is_file())
}

/// nginx running `deploy/nginx.conf.template`, rendered for these ports, inside an `http`
/// block of the test's own (its pid, logs and temp files in a temp dir), each worker taking up to `connections`
/// connections (a socket through nginx takes two).
pub struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
    pub url: String,
}

impl Nginx {
    pub async fn start(binary: &Path, upstreams: [u16; 2], connections: usize) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let site = TEMPLATE
            .replace(
                "${SMSDESK_UPSTREAM_1}",
                &format!("127.0.0.1:{}", upstreams[0]),
            )
            .replace(
                "${SMSDESK_UPSTREAM_2}",
                &format!("127.0.0.1:{}", upstreams[1]),
            )
            .replace("${NGINX_LISTEN}", &format!("127.0.0.1:{port}"));
        assert!(
            !site
                .lines()
                .any(|l| !l.trim_start().starts_with('#') && l.contains("${")),
            "every placeholder of the template is filled in"
        );
        let d = dir.path().display();
        std::fs::write(dir.path().join("smsdesk.conf"), site).unwrap();
        std::fs::write(
            dir.path().join("nginx.conf"),
            format!(
                "worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
                 events {{ worker_connections {connections}; }}\n\
                 http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  \
                 proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  \
                 uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  \
                 include {d}/smsdesk.conf;\n}}\n"
            ),
        )
        .unwrap();
        let child = Command::new(binary)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start nginx");
        let url = format!("http://127.0.0.1:{port}");
        let nginx = Nginx { child, dir, url };
        wait_until("nginx to listen", async || {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        })
        .await;
        nginx
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    /// Stops the master with `SIGTERM`, which stops its worker first: a master killed with
    /// `SIGKILL` leaves the worker running on its own, still serving (or spinning on) its
    /// sockets after the test.
    fn drop(&mut self) {
        let term = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        if term.is_ok_and(|s| s.success()) {
            let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while std::time::Instant::now() < until {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
