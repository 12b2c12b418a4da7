//! A PostgreSQL server for the tests: the one `SMM_TEST_PG_URL` names
//! (`scripts/test` starts a throwaway server and sets it), or else a
//! throwaway server of this test's own (initdb into a temp directory, a
//! free port on 127.0.0.1, stopped and removed when the guard drops).
//! Each test gets a fresh database of its own on it. A machine without
//! the server's programs fails the test, naming what to install: no
//! PostgreSQL test is ever skipped.

#![allow(dead_code, reason = "each test file uses part of it")]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A server the tests may create databases on.
pub struct PgServer {
    /// `postgresql://user@127.0.0.1:port` (no database).
    base: String,
    /// The data directory of a server this guard started (stopped on drop).
    own: Option<PathBuf>,
    bin: PathBuf,
}

fn bin_dir() -> PathBuf {
    if let Ok(d) = std::env::var("SMM_PG_BIN") {
        return PathBuf::from(d);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    found.retain(|p| p.join("initdb").exists());
    found.sort();
    found.pop().unwrap_or_else(|| {
        panic!(
            "no PostgreSQL server programs (initdb) under /usr/lib/postgresql: install them \
             (apt-get install -y postgresql) or set SMM_TEST_PG_URL; scripts/test does both"
        )
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Run a server program, as the `postgres` user when we are root
/// (initdb and postgres refuse to run as root).
fn run(bin: &Path, prog: &str, args: &[&str]) {
    let exe = bin.join(prog);
    let out = if is_root() {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(&exe)
            .args(args)
            .output()
    } else {
        Command::new(&exe).args(args).output()
    }
    .unwrap_or_else(|e| panic!("{}: {e}", exe.display()));
    assert!(
        out.status.success(),
        "{prog} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

impl PgServer {
    /// The shared server, or a new one.
    pub fn start() -> PgServer {
        if let Ok(url) = std::env::var("SMM_TEST_PG_URL") {
            return PgServer {
                base: url.trim_end_matches('/').to_string(),
                own: None,
                bin: bin_dir(),
            };
        }
        PgServer::start_own()
    }

    /// A new server of the caller's own, whatever `SMM_TEST_PG_URL` says.
    pub fn start_own() -> PgServer {
        let bin = bin_dir();
        let dir =
            std::env::temp_dir().join(format!("smm-pg-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .unwrap();
            assert!(ok.success());
        }
        let data = dir.join("data");
        let port = free_port();
        let d = data.to_str().unwrap();
        run(
            &bin,
            "initdb",
            &["-D", d, "-A", "trust", "-U", "smm", "--no-sync"],
        );
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            dir.display()
        );
        let log = dir.join("log");
        run(
            &bin,
            "pg_ctl",
            &[
                "-D",
                d,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-o",
                &opts,
                "start",
            ],
        );
        PgServer {
            base: format!("postgresql://smm@127.0.0.1:{port}"),
            own: Some(dir),
            bin,
        }
    }

    /// The server's base URL (no database).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A new, empty database; its URL.
    pub fn database(&self, name: &str) -> String {
        let name = format!("{name}_{}", std::process::id());
        let mut admin =
            postgres::Client::connect(&format!("{}/postgres", self.base), postgres::NoTls)
                .unwrap_or_else(|e| panic!("cannot reach the test server {}: {e}", self.base));
        for sql in [
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            format!("CREATE DATABASE {name}"),
        ] {
            admin.batch_execute(&sql).unwrap();
        }
        format!("{}/{name}", self.base)
    }

    /// Stop the server (`-m fast` waits for no client) and start it again
    /// on the same port, as a restart of the database host.
    pub fn restart(&self) {
        let dir = self
            .own
            .as_ref()
            .expect("a restart needs a server of the test's own");
        let data = dir.join("data");
        let log = dir.join("log");
        let port = self.base.rsplit(':').next().unwrap();
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            dir.display()
        );
        run(
            &self.bin,
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", "fast", "-w", "stop"],
        );
        run(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-o",
                &opts,
                "start",
            ],
        );
    }

    /// Whether this guard owns the server (and may restart it).
    pub fn owned(&self) -> bool {
        self.own.is_some()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if let Some(dir) = &self.own {
            let data = dir.join("data");
            let exe = self.bin.join("pg_ctl");
            let args = ["-D", data.to_str().unwrap_or(""), "-m", "immediate", "stop"];
            let _ = if is_root() {
                Command::new("runuser")
                    .args(["-u", "postgres", "--"])
                    .arg(&exe)
                    .args(args)
                    .output()
            } else {
                Command::new(&exe).args(args).output()
            };
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
