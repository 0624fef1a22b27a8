//! A PostgreSQL cluster of the soak's own (`tests/soak/harness.rs`).

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::helpers::free_port;

/// The directory of PostgreSQL's `initdb` and `pg_ctl`: Debian's newest, or the PATH's.
pub fn postgres_bin_dir() -> Option<PathBuf> {
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").is_file())
        .collect();
    debian.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str()?.parse::<u32>().ok())
    });
    debian.pop().or_else(|| {
        std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .find(|dir| dir.join("initdb").is_file())
    })
}

/// A PostgreSQL cluster of the soak's own, in a temp dir on a free port (never the machine's:
/// other tests use it), which the soak may restart. PostgreSQL refuses to run as root, so as
/// root it runs as the `postgres` user.
pub struct Postgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl Postgres {
    pub fn start(bin: PathBuf) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pg = Self {
            bin,
            dir,
            port: free_port(),
        };
        if pg.as_root() {
            let owned = Command::new("chown")
                .arg("postgres:")
                .arg(pg.dir.path())
                .status()
                .unwrap();
            assert!(owned.success(), "chown the cluster's dir to postgres");
        }
        let data = pg.data();
        pg.run(
            "initdb",
            &[
                "-U".as_ref(),
                "postgres".as_ref(),
                "--auth=trust".as_ref(),
                "--no-sync".as_ref(),
                "-D".as_ref(),
                data.as_os_str(),
            ],
        );
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            pg.port,
            pg.dir.path().display()
        );
        pg.pg_ctl(&["-o", &options, "start"]);
        pg
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `pg_ctl restart -m fast`: every connection is cut, and it is back on the same port.
    pub fn restart(&self) {
        self.pg_ctl(&["-m", "fast", "restart"]);
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn as_root(&self) -> bool {
        Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
    }

    /// `pg_ctl -w` on the cluster, its log in the temp dir.
    fn pg_ctl(&self, args: &[&str]) {
        let (data, log) = (self.data(), self.dir.path().join("log"));
        let mut all: Vec<&OsStr> = vec!["-w".as_ref(), "-D".as_ref(), data.as_os_str()];
        all.extend(["-l".as_ref(), log.as_os_str()]);
        all.extend(args.iter().map(OsStr::new));
        self.run("pg_ctl", &all);
    }

    /// One of PostgreSQL's programs, as `postgres` when root.
    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if self.as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    /// Runs one of PostgreSQL's programs, which must succeed.
    fn run(&self, program: &str, args: &[&OsStr]) {
        let mut cmd = self.command(program);
        let status = cmd.args(args).stdout(Stdio::null()).status().unwrap();
        assert!(status.success(), "{cmd:?}");
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["-w", "-m", "immediate", "stop", "-D"])
            .arg(self.data())
            .stdout(Stdio::null())
            .status();
    }
}
