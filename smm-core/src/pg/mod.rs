//! PostgreSQL connections (feature `postgres`), shared by the ledger and
//! the bundle store: a checked URL, a small pool, timeouts, the schema
//! version table and the migration lock, and errors sorted into "retry"
//! and "give up". The password never leaves the [`postgres::Config`]: what
//! errors, logs and `Debug` show is [`PgTarget::shown`], the URL without it.
//!
//! TLS: libpq's `sslmode` and `sslrootcert` in the URL (see `tls.rs`).
//!
//! The client is the synchronous `postgres` crate. Each of its clients
//! drives its connection on a runtime of its own, so it must not be called
//! from inside an async task; from tokio, call it through
//! `tokio::task::spawn_blocking` (the crate docs show the pattern).

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use postgres::error::SqlState;
use postgres::{Client, Config, NoTls, Statement};

use crate::kind::Cause;

mod tls;
use tls::{RustlsConnect, SslMode};

/// How long a connection attempt may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one statement may run (the server cancels it after that).
pub(crate) const STATEMENT_TIMEOUT_MS: u64 = 10_000;
/// How long a caller waits for a free connection of the pool.
const POOL_WAIT: Duration = Duration::from_secs(10);
/// Connections a pool opens at most.
pub(crate) const POOL_SIZE: usize = 4;

/// Why a PostgreSQL step failed, sorted for the caller.
#[derive(Debug)]
pub(crate) enum PgFailure {
    /// The URL is not one we take (the message says why).
    Url(String),
    /// The server is unreachable, restarting, or asked us to retry
    /// (a serialization failure, a deadlock, a statement timeout, a
    /// lost connection): nothing was committed, and a retry may pass.
    Retry(String, Cause),
    /// A row or a table is not what this library writes.
    Corrupt(String),
    /// Anything else the server answered.
    Other(String, Cause),
}

/// Sort a client error.
pub(crate) fn failure(e: postgres::Error) -> PgFailure {
    let retry = match e.code() {
        None => true, // I/O, a closed connection, a timeout while connecting
        Some(c) => {
            *c == SqlState::T_R_SERIALIZATION_FAILURE
                || *c == SqlState::T_R_DEADLOCK_DETECTED
                || *c == SqlState::LOCK_NOT_AVAILABLE
                || *c == SqlState::QUERY_CANCELED
                || *c == SqlState::ADMIN_SHUTDOWN
                || *c == SqlState::CRASH_SHUTDOWN
                || *c == SqlState::CANNOT_CONNECT_NOW
                || *c == SqlState::TOO_MANY_CONNECTIONS
                || c.code().starts_with("08") // connection exceptions
        }
    };
    // The server's own words (the client's Display says only "db error").
    let message = match e.as_db_error() {
        Some(d) => format!("{}: {}", d.severity(), d.message()),
        None => e.to_string(),
    };
    if retry {
        PgFailure::Retry(message, Cause::new(e))
    } else if e.code().is_some_and(|c| {
        *c == SqlState::UNDEFINED_TABLE
            || *c == SqlState::UNDEFINED_COLUMN
            || *c == SqlState::DATATYPE_MISMATCH
    }) {
        PgFailure::Corrupt(message)
    } else {
        PgFailure::Other(message, Cause::new(e))
    }
}

/// A checked connection target: the client configuration (with the
/// password) and the URL as it may be shown (without it).
pub(crate) struct PgTarget {
    config: Config,
    shown: String,
    /// The TLS connector (`None`: `sslmode=disable`).
    tls: Option<RustlsConnect>,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

/// Whether `s` names a PostgreSQL database (`postgresql://` or `postgres://`).
pub fn is_postgres_url(s: &str) -> bool {
    s.starts_with("postgresql://") || s.starts_with("postgres://")
}

/// A PostgreSQL URL as it may be shown: without its password (and
/// without its query); a URL that does not parse shows as its scheme.
pub fn redact_url(url: &str) -> String {
    // What is shown has no query: parse the URL without it (nothing is
    // read or checked beyond that).
    let base = url.split_once('?').map_or(url, |(b, _)| b);
    match Config::from_str(base) {
        Ok(c) => shown(&c),
        Err(_) => "postgresql://(a URL that does not parse)".into(),
    }
}

/// Take libpq's TLS settings (`sslmode`, `sslrootcert`) out of a URL's
/// query, which the client crate does not read: the URL without them, the
/// mode (libpq's default `prefer` when absent) and the CA file.
fn split_tls(url: &str) -> Result<(String, SslMode, Option<PathBuf>), PgFailure> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), SslMode::Prefer, None));
    };
    let mut mode = SslMode::Prefer;
    let mut root = None;
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "sslmode" => {
                mode = SslMode::parse(value).ok_or_else(|| {
                    PgFailure::Url(format!(
                        "sslmode={} is not one of disable, prefer, require, verify-ca, verify-full",
                        value.chars().take(20).collect::<String>()
                    ))
                })?;
            }
            "sslrootcert" => root = Some(PathBuf::from(percent_decode(value)?)),
            "sslcert" | "sslkey" | "sslpassword" | "sslcrl" | "sslcrldir" => {
                return Err(PgFailure::Url(format!(
                    "{key} (a client certificate) is not supported: authenticate with a password"
                )));
            }
            _ => rest.push(pair),
        }
    }
    let url = if rest.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    Ok((url, mode, root))
}

/// `%XX` escapes of a URL's query value.
fn percent_decode(s: &str) -> Result<String, PgFailure> {
    let bad = || PgFailure::Url("sslrootcert has a malformed %-escape".into());
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex = [bytes.next().ok_or_else(bad)?, bytes.next().ok_or_else(bad)?];
            let hex = std::str::from_utf8(&hex).map_err(|_| bad())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

impl PgTarget {
    /// Check a `postgresql://user:pass@host:port/db?sslmode=...` URL.
    pub(crate) fn parse(url: &str) -> Result<PgTarget, PgFailure> {
        if !is_postgres_url(url) {
            return Err(PgFailure::Url(
                "a PostgreSQL URL starts with postgresql:// (postgresql://user:password@host:port/database)"
                    .into(),
            ));
        }
        let (client_url, mode, root) = split_tls(url)?;
        // The parser's own message may quote the URL: never pass it on.
        let mut config = Config::from_str(&client_url).map_err(|_| {
            PgFailure::Url(
                "not a valid PostgreSQL URL (postgresql://user:password@host:port/database?sslmode=verify-full&sslrootcert=ca.pem)"
                    .into(),
            )
        })?;
        config.ssl_mode(mode.client_mode());
        let tls = match mode {
            SslMode::Disable => None,
            _ => Some(RustlsConnect::new(mode, root.as_deref()).map_err(PgFailure::Url)?),
        };
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        // Generic plans for the ledger's functions: their statements take
        // arrays, whose custom plans the server would otherwise make anew
        // on every call (a quarter of a write's time). A generic plan is
        // made once per connection, maybe while a table is still small and
        // a scan looks cheap; every statement here looks rows up by key, so
        // the planner is told to prefer the index.
        let ours = format!(
            "-c statement_timeout={STATEMENT_TIMEOUT_MS} -c plan_cache_mode=force_generic_plan \
             -c enable_seqscan=off"
        );
        let options = match config.get_options() {
            Some(o) => format!("{o} {ours}"),
            None => ours,
        };
        config.options(&options);
        if config.get_application_name().is_none() {
            config.application_name("smm-core");
        }
        let shown = shown(&config);
        Ok(PgTarget { config, shown, tls })
    }

    /// The URL without its password.
    pub(crate) fn shown(&self) -> &str {
        &self.shown
    }

    /// A new connection (over TLS as the URL's `sslmode` says).
    pub(crate) fn connect(&self) -> Result<Client, PgFailure> {
        let connected = match &self.tls {
            None => self.config.connect(NoTls),
            Some(tls) => self.config.connect(tls.clone()),
        };
        connected.map_err(|e| match tls::tls_refusal(&e) {
            Some(why) => PgFailure::Other(
                format!("{why} (check sslmode and sslrootcert)"),
                Cause::new(e),
            ),
            None => failure(e),
        })
    }
}

/// `postgresql://user@host:port/db`, never the password.
fn shown(c: &Config) -> String {
    let host = c
        .get_hosts()
        .iter()
        .map(|h| match h {
            postgres::config::Host::Tcp(s) => s.clone(),
            #[cfg(unix)]
            postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .collect::<Vec<_>>()
        .join(",");
    let port = c
        .get_ports()
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let user = c.get_user().map(|u| format!("{u}@")).unwrap_or_default();
    let port = if port.is_empty() {
        String::new()
    } else {
        format!(":{port}")
    };
    let db = c.get_dbname().unwrap_or("");
    format!("postgresql://{user}{host}{port}/{db}")
}

/// A pooled connection, with the statements it has prepared (a statement
/// prepared once runs in one round trip after that).
pub(crate) struct Conn {
    pub(crate) client: Client,
    prepared: Vec<(&'static str, Statement)>,
}

impl Conn {
    /// The prepared form of `sql` on this connection (prepared on first use).
    pub(crate) fn statement(&mut self, sql: &'static str) -> Result<Statement, postgres::Error> {
        if let Some((_, s)) = self.prepared.iter().find(|(q, _)| *q == sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.prepared.push((sql, s.clone()));
        Ok(s)
    }
}

/// A small pool: at most `size` connections, opened when first needed; a
/// connection that broke is dropped, not returned.
pub(crate) struct Pool {
    target: PgTarget,
    size: usize,
    idle: Mutex<(Vec<Conn>, usize)>,
    freed: Condvar,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("url", &self.target)
            .field("size", &self.size)
            .finish()
    }
}

impl Pool {
    pub(crate) fn new(target: PgTarget) -> Pool {
        Pool::with_size(target, POOL_SIZE)
    }

    /// A pool of at most `size` connections (at least one).
    pub(crate) fn with_size(target: PgTarget, size: usize) -> Pool {
        Pool {
            target,
            size: size.max(1),
            idle: Mutex::new((Vec::new(), 0)),
            freed: Condvar::new(),
        }
    }

    pub(crate) fn target(&self) -> &PgTarget {
        &self.target
    }

    fn poisoned() -> PgFailure {
        PgFailure::Corrupt("the connection pool's lock is poisoned".into())
    }

    /// Run `f` on a pooled connection. A connection that is closed after
    /// `f` is not kept.
    pub(crate) fn with<T, E: From<PgFailure>>(
        &self,
        f: impl FnOnce(&mut Conn) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut conn = {
            let mut g = self.idle.lock().map_err(|_| Self::poisoned())?;
            let deadline = std::time::Instant::now() + POOL_WAIT;
            loop {
                if let Some(c) = g.0.pop() {
                    break Some(c);
                }
                if g.1 < self.size {
                    g.1 += 1;
                    break None;
                }
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    return Err(PgFailure::Retry(
                        "every connection of the pool stayed busy".into(),
                        Cause::new(std::io::Error::from(std::io::ErrorKind::TimedOut)),
                    )
                    .into());
                }
                g = self
                    .freed
                    .wait_timeout(g, left)
                    .map_err(|_| Self::poisoned())?
                    .0;
            }
        };
        let mut c = match conn.take() {
            Some(c) if !c.client.is_closed() => c,
            _ => match self.target.connect() {
                Ok(client) => Conn {
                    client,
                    prepared: Vec::new(),
                },
                Err(e) => {
                    self.give_back(None);
                    return Err(e.into());
                }
            },
        };
        let out = f(&mut c);
        self.give_back((!c.client.is_closed()).then_some(c));
        out
    }

    fn give_back(&self, c: Option<Conn>) {
        if let Ok(mut g) = self.idle.lock() {
            match c {
                Some(c) => g.0.push(c),
                None => g.1 = g.1.saturating_sub(1),
            }
        }
        self.freed.notify_one();
    }
}

impl Drop for Pool {
    /// A client closes its connection on the runtime it drives it with,
    /// which panics on a thread that runs async tasks (the last owner of a
    /// ledger may be dropped in an `async fn`). So the clients are closed
    /// on a thread of their own.
    fn drop(&mut self) {
        let conns = match self.idle.get_mut() {
            Ok(g) => std::mem::take(&mut g.0),
            Err(p) => std::mem::take(&mut p.into_inner().0),
        };
        if conns.is_empty() {
            return;
        }
        if let Ok(h) = std::thread::Builder::new()
            .name("smm-pg-close".into())
            .spawn(move || drop(conns))
        {
            let _ = h.join();
        }
    }
}

/// The schema version table: one row per component (`ledger`, `store`).
pub(crate) const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS smm_schema_version (
    component TEXT PRIMARY KEY,
    version INTEGER NOT NULL CHECK (version > 0),
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)";

/// The advisory lock key migrations take (any two writers of the schema
/// take turns).
const MIGRATION_LOCK: i64 = 0x736d_6d5f_6d69_6772; // "smm_migr"

/// What a migration found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Migrated {
    pub(crate) from: i64,
    pub(crate) to: i64,
}

/// A component's schema version (0: none yet).
pub(crate) fn version_of(client: &mut Client, component: &str) -> Result<i64, PgFailure> {
    let exists: bool = client
        .query_one("SELECT to_regclass('smm_schema_version') IS NOT NULL", &[])
        .and_then(|r| r.try_get(0))
        .map_err(failure)?;
    if !exists {
        return Ok(0);
    }
    let row = client
        .query_opt(
            "SELECT version FROM smm_schema_version WHERE component = $1",
            &[&component],
        )
        .map_err(failure)?;
    match row {
        None => Ok(0),
        Some(r) => r
            .try_get::<_, i32>(0)
            .map(i64::from)
            .map_err(|e| PgFailure::Corrupt(e.to_string())),
    }
}

/// Bring `component`'s tables to the newest of `migrations` (each
/// `(version, sql)`, in order), in one transaction under the migration
/// lock. A version newer than the newest known is `Err(Ok(found))`.
pub(crate) fn migrate(
    client: &mut Client,
    component: &str,
    migrations: &[(i64, &str)],
) -> Result<Result<Migrated, i64>, PgFailure> {
    let newest = migrations.last().map_or(0, |m| m.0);
    let mut tx = client.transaction().map_err(failure)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(failure)?;
    tx.batch_execute(VERSION_TABLE).map_err(failure)?;
    let from = tx
        .query_opt(
            "SELECT version FROM smm_schema_version WHERE component = $1",
            &[&component],
        )
        .map_err(failure)?
        .map(|r| r.try_get::<_, i32>(0))
        .transpose()
        .map_err(|e| PgFailure::Corrupt(e.to_string()))?
        .map_or(0, i64::from);
    if from > newest {
        return Ok(Err(from));
    }
    for (v, sql) in migrations {
        if *v > from {
            tx.batch_execute(sql).map_err(failure)?;
        }
    }
    if newest > from {
        let v = i32::try_from(newest).map_err(|_| PgFailure::Corrupt("version".into()))?;
        tx.execute(
            "INSERT INTO smm_schema_version (component, version) VALUES ($1, $2)
             ON CONFLICT (component) DO UPDATE SET version = excluded.version, applied_at = now()",
            &[&component, &v],
        )
        .map_err(failure)?;
    }
    tx.commit().map_err(failure)?;
    Ok(Ok(Migrated { from, to: newest }))
}
