//! The subcommands, one file each: each reads its inputs, calls the
//! library, prints. This file holds what they share.

mod bundle_cmd;
mod contract_cmd;
mod db_cmd;
mod keygen;
mod policy_cmd;
mod run;
mod simulate;
mod usage_cmd;

use bundle_cmd::bundle_cmd;
use contract_cmd::contract_cmd;
use db_cmd::db_cmd;
use keygen::keygen;
use policy_cmd::policy_cmd;
use run::{control, run};
use simulate::simulate;
use usage_cmd::usage_cmd;

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};
use smm_core::audit::store::StoredBundle;
use smm_core::audit::{self, AuditBundle, Envelope, LocalSigner, Signer, TrustedKey};
use smm_core::contract::{self, ChangeKind, Contract};
use smm_core::error::ErrorCategory;
use smm_core::flow::{Campaign, FlowError, FlowInputs, Step};
use smm_core::host;
use smm_core::policy::{PolicyBundle, PolicyInput, TestOutcome};
use smm_core::sim::{Progress, RunControl, RunOptions, SimulationRequest};
use smm_core::time::Timestamp;
use smm_core::usage::{AgentRun, Amounts, COST_USD, Period, Quota, TOKENS, Usd};

use crate::fail::Failure;
use crate::render::{self, ProgressBar};
use crate::{
    AmountArgs, BundleCommand, Command, ContractCommand, DbCommand, KeygenArgs, Outcome,
    PolicyCommand, RunArgs, SimulateArgs, UsageCommand,
};

/// Samples are kept for the histogram up to this many iterations (six
/// metrics × 8 bytes each: 48 MB at the limit).
const HISTOGRAM_SAMPLES_UP_TO: u64 = 1_000_000;

/// Run a command.
pub fn dispatch(command: Command, json: bool, cancel: &Arc<AtomicBool>) -> Outcome {
    match command {
        Command::Run(a) => run(a, json, cancel),
        Command::Simulate(a) => simulate(a, json, cancel),
        Command::Contract(c) => contract_cmd(c, json),
        Command::Policy(c) => policy_cmd(c, json),
        Command::Bundle(c) => bundle_cmd(c, json),
        Command::Usage(c) => usage_cmd(c, json),
        Command::Keygen(a) => keygen(a, json),
        Command::Db(c) => db_cmd(c, json),
    }
}

/// An input document as text, at most `MAX_DOCUMENT_BYTES` read.
fn read(path: &Path) -> Result<String, Failure> {
    smm_core::limits::read_document_text(path).map_err(|e| read_failure(path, &e))
}

/// An input document as bytes, at most `MAX_DOCUMENT_BYTES` read.
fn read_bytes(path: &Path) -> Result<Vec<u8>, Failure> {
    smm_core::limits::read_document_file(path).map_err(|e| read_failure(path, &e))
}

/// A file too long or not text is the input's fault; the rest is I/O.
fn read_failure(path: &Path, e: &std::io::Error) -> Failure {
    use std::io::ErrorKind::{FileTooLarge, InvalidData};
    match e.kind() {
        FileTooLarge | InvalidData => Failure::input(format!("{}: {e}", path.display()))
            .in_file(path)
            .with_hint("give the document itself, within the limit (smm_core LIMITS)"),
        _ => Failure::io("read", path, e),
    }
}

/// Create `path` with `bytes` (never replacing a file), flushed to disk.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Failure> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = options.open(path).map_err(|e| {
        let f = Failure::io("create", path, &e);
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Failure {
                category: ErrorCategory::Conflict,
                ..f
            }
            .with_hint("choose another path: smm never overwrites a file")
        } else {
            f
        }
    })?;
    let written = f.write_all(bytes).and_then(|()| f.sync_all());
    if let Err(e) = written {
        let _ = std::fs::remove_file(path);
        return Err(Failure::io("write", path, &e));
    }
    Ok(())
}

/// `--now`, or the clock (whole seconds, UTC).
/// `--now`, parsed once here (the library takes a [`Timestamp`]), or the
/// clock.
fn now_or_clock(now: Option<String>) -> Result<Timestamp, Failure> {
    match now {
        Some(n) => Timestamp::parse(&n).ok_or_else(|| {
            Failure::input(format!(
                "--now {n:?} is not an RFC 3339 time (like 2025-09-01T12:00:00Z)"
            ))
        }),
        None => {
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_err(|e| Failure::new(ErrorCategory::Internal, format!("the clock: {e}")))?
                .as_secs();
            Ok(Timestamp {
                seconds: i64::try_from(secs).unwrap_or(i64::MAX),
                nanos: 0,
            })
        }
    }
}

/// 32 bytes from the operating system (the host layer's source).
fn entropy() -> Result<[u8; 32], Failure> {
    Ok(host::os_entropy()?)
}

/// A key file that must exist (mode 0600), its key id its fingerprint.
fn existing_key(path: &Path) -> Result<LocalSigner, Failure> {
    if !path.exists() {
        return Err(Failure::input("no such key file")
            .in_file(path)
            .with_hint(format!(
                "create one with `smm keygen --out {}`",
                path.display()
            )));
    }
    host::key_file_signer(path, false, &host::os_entropy)
        .map_err(|e| Failure::from(e).in_file(path))
}

fn policy_bundle(path: Option<&Path>) -> Result<PolicyBundle, Failure> {
    policy_bundle_pinned(path, None)
}

/// The bundle at `path` (default: the shipped one); with `pin`, its
/// checksum is compared with the pin before any of its source is parsed.
fn policy_bundle_pinned(path: Option<&Path>, pin: Option<&str>) -> Result<PolicyBundle, Failure> {
    let bundle = match (path, pin) {
        (None, _) => PolicyBundle::default_bundle(),
        (Some(p), Some(pin)) if p.is_dir() => PolicyBundle::from_dir_pinned(p, pin),
        (Some(p), Some(pin)) => PolicyBundle::from_archive_pinned(p, pin),
        (Some(p), None) if p.is_dir() => PolicyBundle::from_dir(p),
        (Some(p), None) => PolicyBundle::from_archive(p),
    };
    bundle.map_err(|e| {
        let f = Failure::from(e);
        match path {
            Some(p) => f.in_file(p),
            None => f,
        }
    })
}

fn print_json(value: &Value) {
    // `{:#}` is serde_json's pretty printer; a `Value` always prints.
    println!("{value:#}");
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<Value, Failure> {
    serde_json::to_value(v).map_err(|e| Failure::new(ErrorCategory::Internal, e.to_string()))
}

fn ok() -> Outcome {
    Ok(ExitCode::SUCCESS)
}

/// A failure of the flow's step `step` about `file`.
fn at_step(step: Step, file: &Path) -> impl Fn(smm_core::Error) -> Failure + '_ {
    move |e| {
        Failure::from(FlowError {
            step,
            error: Box::new(e),
        })
        .in_file(file)
    }
}
