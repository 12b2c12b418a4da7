//! A PostgreSQL server for the tests: the one `SMM_TEST_PG_URL` names
//! (`scripts/test` starts a throwaway server and sets it), or else a
//! throwaway server of this test's own (initdb into a temp directory, a
//! free port on 127.0.0.1, stopped and removed when the guard drops).
//! Each test gets a fresh database of its own on it. A machine without
//! the server's programs fails the test, naming what to install: no
//! PostgreSQL test is ever skipped.
//!
//! [`NetHost`] makes a second host for a test: a network namespace joined
//! to this one by a veth pair, whose processes reach a server of the
//! test's own over it ([`PgServer::start_own_with`] listening there too).

#![allow(dead_code, reason = "each test file uses part of it")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A server the tests may create databases on.
pub struct PgServer {
    /// `postgresql://user@127.0.0.1:port` (no database).
    base: String,
    /// The data directory of a server this guard started (stopped on drop).
    own: Option<PathBuf>,
    /// The server's own options (`-c name=value ...`), for a restart.
    opts: String,
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

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Run a server program, as the `postgres` user when we are root
/// (initdb and postgres refuse to run as root); its output, or why it
/// did not start.
fn try_run(bin: &Path, prog: &str, args: &[&str]) -> std::io::Result<Output> {
    let exe = bin.join(prog);
    if is_root() {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(&exe)
            .args(args)
            .output()
    } else {
        Command::new(&exe).args(args).output()
    }
}

fn run(bin: &Path, prog: &str, args: &[&str]) {
    let out = try_run(bin, prog, args).unwrap_or_else(|e| panic!("{prog}: {e}"));
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

/// Make `path` (and what is under it) the server user's when we are root.
pub fn give_to_server(path: &Path) {
    if is_root() {
        let ok = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(path)
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

impl PgServer {
    /// The shared server, or a new one.
    pub fn start() -> PgServer {
        if let Ok(url) = std::env::var("SMM_TEST_PG_URL") {
            return PgServer {
                base: url.trim_end_matches('/').to_string(),
                own: None,
                opts: String::new(),
                bin: bin_dir(),
            };
        }
        PgServer::start_own()
    }

    /// A new server of the caller's own, whatever `SMM_TEST_PG_URL` says.
    pub fn start_own() -> PgServer {
        PgServer::start_own_with(&[], |_| {})
    }

    /// A new server of the caller's own with more options (`name=value`,
    /// each passed as `-c`; `listen_addresses` adds to 127.0.0.1), after
    /// `prepare` has written what it needs into the data directory (its
    /// argument; a line for `pg_hba.conf`, a certificate). The port is
    /// free on 127.0.0.1.
    pub fn start_own_with(options: &[&str], prepare: impl FnOnce(&Path)) -> PgServer {
        let bin = bin_dir();
        let dir =
            std::env::temp_dir().join(format!("smm-pg-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        give_to_server(&dir);
        let data = dir.join("data");
        let port = free_port();
        let d = data.to_str().unwrap();
        run(
            &bin,
            "initdb",
            &["-D", d, "-A", "trust", "-U", "smm", "--no-sync"],
        );
        prepare(&data);
        give_to_server(&dir);
        let mut listen = "127.0.0.1".to_string();
        let mut opts = format!("-p {port} -k {} -c max_connections=200", dir.display());
        for o in options {
            match o.strip_prefix("listen_addresses=") {
                Some(more) => listen = format!("{listen},{more}"),
                None => opts.push_str(&format!(" -c {o}")),
            }
        }
        opts.push_str(&format!(" -c listen_addresses={listen}"));
        let server = PgServer {
            base: format!("postgresql://smm@127.0.0.1:{port}"),
            own: Some(dir),
            opts,
            bin,
        };
        server.pg_ctl_start();
        server
    }

    fn pg_ctl_start(&self) {
        let dir = self.own.as_ref().expect("a server of the test's own");
        let data = dir.join("data");
        let log = dir.join("log");
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
                &self.opts,
                "start",
            ],
        );
    }

    /// The server's base URL (no database).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.base.rsplit(':').next().unwrap().parse().unwrap()
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
        run(
            &self.bin,
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", "fast", "-w", "stop"],
        );
        self.pg_ctl_start();
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
            let _ = try_run(
                &self.bin,
                "pg_ctl",
                &["-D", data.to_str().unwrap_or(""), "-m", "immediate", "stop"],
            );
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A second host on this machine: a network namespace joined to this one
/// by a veth pair (a /30 of 10.231.0.0/16 chosen from the process id), its
/// loopback up. Made with `ip` (iproute2) as root; removed on drop.
pub struct NetHost {
    name: String,
    link: String,
    /// This host's address on the pair (where a server listens for it).
    pub here: String,
    /// The other host's address.
    pub there: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {args:?}: {e} (install iproute2)"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl NetHost {
    /// Make the second host; `tag` tells apart the hosts of one process.
    /// It needs root (CAP_NET_ADMIN): the test fails, naming that, when it
    /// cannot make one; it is never skipped.
    pub fn create(tag: u32) -> NetHost {
        let n = (std::process::id() * 4 + tag) % 16_384;
        let (a, b) = (n / 64, (n % 64) * 4);
        let host = NetHost {
            name: format!("smm-h{n}"),
            link: format!("smmv{n}"),
            here: format!("10.231.{a}.{}", b + 1),
            there: format!("10.231.{a}.{}", b + 2),
        };
        let peer = format!("smmp{n}");
        let steps: Vec<Vec<String>> = vec![
            vec!["netns".into(), "add".into(), host.name.clone()],
            vec![
                "link".into(),
                "add".into(),
                host.link.clone(),
                "type".into(),
                "veth".into(),
                "peer".into(),
                "name".into(),
                peer.clone(),
            ],
            vec![
                "link".into(),
                "set".into(),
                peer.clone(),
                "netns".into(),
                host.name.clone(),
            ],
            vec![
                "addr".into(),
                "add".into(),
                format!("{}/30", host.here),
                "dev".into(),
                host.link.clone(),
            ],
            vec!["link".into(), "set".into(), host.link.clone(), "up".into()],
            vec![
                "-n".into(),
                host.name.clone(),
                "addr".into(),
                "add".into(),
                format!("{}/30", host.there),
                "dev".into(),
                peer.clone(),
            ],
            vec![
                "-n".into(),
                host.name.clone(),
                "link".into(),
                "set".into(),
                peer,
                "up".into(),
            ],
            vec![
                "-n".into(),
                host.name.clone(),
                "link".into(),
                "set".into(),
                "lo".into(),
                "up".into(),
            ],
        ];
        for step in steps {
            let args: Vec<&str> = step.iter().map(String::as_str).collect();
            if let Err(e) = ip(&args) {
                panic!(
                    "cannot make a second host for this test (a network namespace and a veth \
                     pair need root, as CI runs): {e}"
                );
            }
        }
        host
    }

    /// `exe` to run on the second host.
    pub fn command(&self, exe: &Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(exe);
        c
    }

    /// The `pg_hba.conf` line that lets the second host in.
    pub fn hba_line(&self) -> String {
        format!("host all all {}/30 trust\n", self.there)
    }
}

impl Drop for NetHost {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.link]);
        let _ = ip(&["netns", "del", &self.name]);
    }
}
