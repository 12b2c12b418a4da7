//! The subcommands: each reads its inputs, calls the library, prints.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};
use smm_core::audit::store::{BundleStore, FileBundleStore, StoredBundle};
use smm_core::audit::{self, AuditBundle, Envelope, LocalSigner, Signer, TrustedKey};
use smm_core::contract::{self, ChangeKind, Contract};
use smm_core::error::ErrorCategory;
use smm_core::flow::{Campaign, FlowError, FlowInputs, Step};
use smm_core::host;
use smm_core::policy::{PolicyBundle, PolicyInput, TestOutcome};
use smm_core::sim::{Progress, RunControl, RunOptions, SimulationRequest};
use smm_core::time::Timestamp;
use smm_core::usage::{
    AgentRun, Amounts, COST_USD, Period, Quota, SqliteLedger, TOKENS, UsageLedger, Usd,
};

use crate::fail::Failure;
use crate::render::{self, ProgressBar};
use crate::{
    AmountArgs, BundleCommand, Command, ContractCommand, KeygenArgs, Outcome, PolicyCommand,
    RunArgs, SimulateArgs, UsageCommand,
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
    }
}

fn read(path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path).map_err(|e| Failure::io("read", path, &e))
}

fn read_bytes(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure::io("read", path, &e))
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
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
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

fn run(a: RunArgs, json: bool, cancel: &Arc<AtomicBool>) -> Outcome {
    let now = now_or_clock(a.now)?;
    let contract = Contract::from_json(&read(&a.contract)?)
        .map_err(|e| at_step(Step::Contract, &a.contract)(e.into()))?;
    let request = match &a.request {
        Some(p) => Some(
            SimulationRequest::from_json(&read(p)?)
                .map_err(|e| at_step(Step::Simulate, p)(e.into()))?,
        ),
        None => None,
    };
    let campaign = match &a.campaign {
        Some(p) => {
            Campaign::from_json(&read(p)?).map_err(|e| at_step(Step::Policy, p)(e.into()))?
        }
        None => Campaign::default(),
    };
    let agent_run = match &a.agent_run {
        Some(p) => {
            Some(AgentRun::from_json(&read(p)?).map_err(|e| at_step(Step::Usage, p)(e.into()))?)
        }
        None => None,
    };
    // A bundle off the contract's pin is refused before its code is parsed.
    let policy = policy_bundle_pinned(
        a.policy.as_deref(),
        Some(&contract.contract().policy_bundle_checksum),
    )
    .map_err(|mut f| {
        f.step = Some(Step::Policy.as_str());
        f
    })?;
    std::fs::create_dir_all(&a.store).map_err(|e| Failure::io("create", &a.store, &e))?;
    let signer = match &a.key {
        Some(p) => existing_key(p)?,
        None => {
            let path = a.store.join(host::KEY_FILE);
            host::key_file_signer(&path, true, &host::os_entropy)
                .map_err(|e| at_step(Step::Sign, &path)(e))?
        }
    };
    let store =
        host::store_trusting(&a.store, &signer).map_err(|e| at_step(Step::Store, &a.store)(e))?;
    let ledger_path = a.ledger.unwrap_or_else(|| a.store.join(host::LEDGER_FILE));
    let ledger = host::LedgerChoice::Sqlite(ledger_path.clone())
        .open()
        .map_err(|e| at_step(Step::Usage, &ledger_path)(e))?;

    let iterations = request
        .as_ref()
        .map(|r| r.config.iterations)
        .or_else(|| {
            contract
                .contract()
                .simulation_config
                .as_ref()
                .map(|c| c.iterations)
        })
        .unwrap_or(0);
    let options = RunOptions {
        threads: a.threads,
        keep_samples: !json && iterations <= HISTOGRAM_SAMPLES_UP_TO,
        control: control(cancel, iterations),
    };
    let inputs = FlowInputs {
        contract: &contract,
        request,
        campaign,
        agent_run,
        now,
        actor: &a.actor,
        previous_bundle_ref: None,
    };
    // Chained to the store's head in one atomic step with publication.
    let result = host::StoreJob::in_store(&store)
        .signer(Some(&signer))
        .ledger(Some(ledger.as_ref()))
        .policy(Some(&policy))
        .run(inputs, &options, &host::os_entropy);
    ProgressBar::new().finish();
    let outcome = result?.outcome;
    if json {
        print_json(&to_value(&outcome)?);
    } else {
        let stored = StoredBundle::from_envelope(outcome.envelope.as_bytes())?;
        let path = store.bundle_path(&stored).map_or_else(
            |_| a.store.display().to_string(),
            |p| p.display().to_string(),
        );
        print!(
            "{}",
            render::run(&outcome, &path, &ledger_path.display().to_string())
        );
    }
    ok()
}

/// Cancellation by Ctrl-C, and a progress bar on a terminal for runs long
/// enough to need one.
fn control(cancel: &Arc<AtomicBool>, iterations: u64) -> RunControl {
    let control = RunControl::default().with_cancel(Arc::clone(cancel));
    if ProgressBar::new().visible() && iterations > 100_000 {
        control.with_progress(|p: Progress| ProgressBar::draw(p.done, p.total))
    } else {
        control
    }
}

fn simulate(a: SimulateArgs, json: bool, cancel: &Arc<AtomicBool>) -> Outcome {
    let mut req = SimulationRequest::from_json(&read(&a.request)?)
        .map_err(|e| Failure::from(e).in_file(&a.request))?;
    if let Some(n) = a.iterations {
        req.config.iterations = n;
    }
    if let Some(s) = a.seed {
        req.config.random_seed = s;
    }
    if let Some(m) = &a.model {
        req.config.model = serde_json::from_value(Value::String(m.clone())).map_err(|_| {
            Failure::input(format!(
                "--model {m:?}: use smm-readiness-v2 or smm-readiness-v1"
            ))
        })?;
    }
    let target = a
        .precision
        .map(|h| (h, false))
        .or(a.relative_precision.map(|h| (h, true)));
    if let Some((h, relative)) = target {
        req.config.enable_early_termination = true;
        req.config.stopping_rule = Some(smm_core::sim::StoppingRule::Precision);
        let p = req.config.precision.get_or_insert_with(Default::default);
        p.half_width = Some(h);
        p.relative = relative;
    }
    // Re-check the edited request (a bad value names its field).
    let req = SimulationRequest::from_value(&to_value(&req)?)
        .map_err(|e| Failure::from(e).in_file(&a.request))?;
    let iterations = req.config.iterations;
    let options = RunOptions {
        threads: a.threads,
        keep_samples: !json && iterations <= HISTOGRAM_SAMPLES_UP_TO,
        control: control(cancel, iterations),
    };
    let result = smm_core::sim::run(&req, &options);
    ProgressBar::new().finish();
    let out = match result {
        Ok(out) => out,
        Err(e) => {
            let f = Failure::from(e);
            if cancel.load(Ordering::SeqCst) {
                return Err(f.with_hint("interrupted by Ctrl-C"));
            }
            return Err(f);
        }
    };
    if json {
        println!("{}", out.report.to_json_pretty());
    } else {
        let readiness = out.samples.as_ref().map(|s| s.readiness_score.as_slice());
        print!("{}", render::report(&out.report, readiness));
    }
    ok()
}

fn contract_cmd(c: ContractCommand, json: bool) -> Outcome {
    match c {
        ContractCommand::Validate { file, now } => {
            let now = now_or_clock(now)?;
            let text = read_bytes(&file)?;
            let violations = contract::validate_document(&text, now)
                .map_err(|e| Failure::from(e).in_file(&file))?;
            let errors = violations.iter().filter(|v| v.is_error()).count();
            if json {
                print_json(&json!({"valid": errors == 0, "violations": to_value(&violations)?}));
            } else {
                for v in &violations {
                    println!(
                        "{}: {} at {}: {} ({})",
                        file.display(),
                        if v.is_error() { "error" } else { "warning" },
                        if v.pointer.is_empty() {
                            "/"
                        } else {
                            &v.pointer
                        },
                        v.message,
                        v.rule
                    );
                }
                if errors == 0 {
                    println!("{}: valid at {now}", file.display());
                }
            }
            if errors == 0 {
                ok()
            } else {
                Ok(ExitCode::from(crate::fail::exit_code(ErrorCategory::Input)))
            }
        }
        ContractCommand::Hash { file } => {
            let c =
                Contract::from_json(&read(&file)?).map_err(|e| Failure::from(e).in_file(&file))?;
            if json {
                print_json(&json!({"termsHash": c.terms_hash(), "contractId": c.contract_id()}));
            } else {
                println!("{}", c.terms_hash());
            }
            ok()
        }
        ContractCommand::CheckChange { old, new } => {
            let a =
                Contract::from_json(&read(&old)?).map_err(|e| Failure::from(e).in_file(&old))?;
            let b =
                Contract::from_json(&read(&new)?).map_err(|e| Failure::from(e).in_file(&new))?;
            let change = a
                .check_change(&b)
                .map_err(|e| Failure::from(e).in_file(&new))?;
            if json {
                print_json(&to_value(&change)?);
            } else {
                match change {
                    ChangeKind::SameTerms => println!("same terms"),
                    ChangeKind::NewVersion { from, to, changed } => {
                        println!("new version {from} -> {to}, changed terms:");
                        for p in changed {
                            println!("  {p}");
                        }
                    }
                }
            }
            ok()
        }
        ContractCommand::Migrate { file, out } => {
            let v1 = contract::parse_document(&read(&file)?)
                .map_err(|e| Failure::from(e).in_file(&file))?;
            let v2 = contract::migrate_v1(&v1).map_err(|e| Failure::from(e).in_file(&file))?;
            let text = serde_json::to_string_pretty(&v2)
                .map_err(|e| Failure::new(ErrorCategory::Internal, e.to_string()))?
                + "\n";
            match out {
                Some(p) => {
                    write_new(&p, text.as_bytes(), 0o644)?;
                    if json {
                        print_json(&json!({"written": p.display().to_string()}));
                    } else {
                        println!("wrote {}", p.display());
                    }
                }
                None => print!("{text}"),
            }
            ok()
        }
    }
}

fn policy_cmd(c: PolicyCommand, json: bool) -> Outcome {
    match c {
        PolicyCommand::Eval { input, bundle } => {
            let b = policy_bundle(bundle.as_deref())?;
            let i = PolicyInput::from_json(&read(&input)?)
                .map_err(|e| Failure::from(e).in_file(&input))?;
            let d = b.evaluate(&i)?;
            if json {
                print_json(&to_value(&d)?);
            } else {
                println!(
                    "{}{}",
                    if d.allow { "allow" } else { "deny" },
                    if d.require_human_approval {
                        " (human approval required)"
                    } else {
                        ""
                    }
                );
                for (label, codes) in [("deny", &d.deny), ("warning", &d.warnings)] {
                    for code in codes {
                        println!("  {label}: {code}");
                    }
                }
                println!(
                    "bundle {}  evaluation {}",
                    d.bundle_checksum, d.evaluation_id
                );
            }
            if d.allow {
                ok()
            } else {
                Ok(ExitCode::from(crate::fail::exit_code(
                    ErrorCategory::Denied,
                )))
            }
        }
        PolicyCommand::Test { bundle } => {
            let b = policy_bundle(bundle.as_deref())?;
            let report = b.test()?;
            if json {
                print_json(&to_value(&report)?);
            } else {
                for r in report
                    .results
                    .iter()
                    .filter(|r| matches!(r.outcome, TestOutcome::Fail | TestOutcome::Error))
                {
                    println!(
                        "FAIL {} ({}:{}){}",
                        r.name,
                        r.module,
                        r.line,
                        r.message
                            .as_deref()
                            .map_or(String::new(), |m| format!(": {m}"))
                    );
                }
                println!(
                    "{} passed, {} failed, {} skipped; coverage {:.1}%",
                    report.passed, report.failed, report.skipped, report.coverage_percent
                );
            }
            if report.ok() {
                ok()
            } else {
                Ok(ExitCode::from(crate::fail::exit_code(ErrorCategory::Input)))
            }
        }
        PolicyCommand::Checksum { bundle } => {
            let b = policy_bundle(bundle.as_deref())?;
            if json {
                print_json(&json!({"checksum": b.checksum()}));
            } else {
                println!("{}", b.checksum());
            }
            ok()
        }
    }
}

/// A trusted key from a public key (PEM, DER) or a PKCS#8 private key file.
fn trusted_key(path: &Path) -> Result<TrustedKey, Failure> {
    let bytes = read_bytes(path)?;
    let text = String::from_utf8_lossy(&bytes);
    let key = if text.contains("PRIVATE KEY") {
        *existing_key(path)?.public_key()
    } else {
        audit::parse_public_key(&bytes).map_err(|e| Failure::from(e).in_file(path))?
    };
    Ok(TrustedKey {
        key_id: audit::key_fingerprint_id(&key),
        key,
    })
}

fn bundle_cmd(c: BundleCommand, json: bool) -> Outcome {
    match c {
        BundleCommand::Sign { bundle, key, out } => {
            let signer = existing_key(&key)?;
            let text = read(&bundle)?;
            let b: AuditBundle =
                AuditBundle::from_json(&text).map_err(|e| Failure::from(e).in_file(&bundle))?;
            let envelope = audit::sign_bundle(&b, &[&signer as &dyn Signer])?;
            match out {
                Some(p) => {
                    write_new(&p, &envelope, 0o644)?;
                    let id = b.id()?;
                    if json {
                        print_json(&json!({"bundleId": id, "written": p.display().to_string()}));
                    } else {
                        println!("{id}\nwrote {}", p.display());
                    }
                }
                None => println!("{}", String::from_utf8_lossy(&envelope)),
            }
            ok()
        }
        BundleCommand::Verify {
            envelope,
            trust,
            store,
        } => {
            let (keys, bytes) = match &store {
                Some(root) => {
                    let keys = store_keys(root, &trust)?;
                    let id = envelope.display().to_string();
                    let s = FileBundleStore::open(root, keys.clone())
                        .map_err(|e| Failure::from(e).in_file(root))?;
                    let b = s.get(&id).map_err(|e| Failure::from(e).in_file(root))?;
                    let b = b.ok_or_else(|| {
                        Failure::input(format!("no bundle {id} in the store"))
                            .in_file(root)
                            .with_hint("list the store's bundles with `smm bundle list`")
                    })?;
                    (keys, b.envelope)
                }
                None => {
                    if trust.is_empty() {
                        return Err(Failure::input(
                            "no trusted key: pass --trust KEY (or --store with its signing-key.pem)",
                        ));
                    }
                    let keys = trust
                        .iter()
                        .map(|p| trusted_key(p))
                        .collect::<Result<Vec<_>, _>>()?;
                    let bytes = read_bytes(&envelope)?;
                    // A bare envelope, or a file a store wrote.
                    let bytes = if bytes.starts_with(b"{\"payload") || !looks_stored(&bytes) {
                        bytes
                    } else {
                        audit::store::read_stored_record(&bytes)
                            .map_err(|e| Failure::from(e).in_file(&envelope))?
                            .envelope
                    };
                    if Envelope::from_json(&bytes).is_err() {
                        return Err(Failure::input(
                            "neither an envelope (DSSE JSON) nor a bundle file a store wrote",
                        )
                        .in_file(&envelope)
                        .with_hint(
                            "pass an envelope, a stored bundle-….json.gz, or --store DIR ID",
                        ));
                    }
                    (keys, bytes)
                }
            };
            let v = audit::verify_envelope(&bytes, &keys, None);
            if json {
                print_json(&to_value(&v)?);
            } else {
                for c in &v.checks {
                    println!(
                        "{} {:<14} {}",
                        if c.ok { "ok  " } else { "FAIL" },
                        c.name,
                        c.detail
                    );
                }
                println!(
                    "{}",
                    if v.verified {
                        format!(
                            "verified: {} signed by {}",
                            v.bundle_id.as_deref().unwrap_or("?"),
                            v.key_id.as_deref().unwrap_or("?")
                        )
                    } else {
                        "NOT verified".to_string()
                    }
                );
            }
            if v.verified {
                ok()
            } else {
                Ok(ExitCode::from(crate::fail::exit_code(
                    ErrorCategory::Integrity,
                )))
            }
        }
        BundleCommand::List {
            store,
            trust,
            workspace,
            from,
            to,
        } => {
            let s = open_store_read_only(&store, &trust)?;
            let list = s.list(&workspace, from.as_deref(), to.as_deref())?;
            if json {
                let rows: Vec<Value> = list
                    .iter()
                    .map(|b| {
                        json!({
                            "bundleId": b.bundle_id,
                            "workspaceId": b.workspace_id,
                            "createdAt": b.created_at,
                        })
                    })
                    .collect();
                print_json(&Value::Array(rows));
            } else {
                for b in &list {
                    println!("{}  {}", b.created_at, b.bundle_id);
                }
            }
            ok()
        }
        BundleCommand::Show { id, store, trust } => {
            let s = open_store_read_only(&store, &trust)?;
            let b = s.get(&id)?.ok_or_else(|| {
                Failure::input(format!("no bundle {id} in the store"))
                    .in_file(&store)
                    .with_hint("list the store's bundles with `smm bundle list`")
            })?;
            let bundle = b.bundle()?;
            if json {
                print_json(&to_value(&bundle)?);
            } else {
                let v = to_value(&bundle)?;
                println!("bundle       {}", b.bundle_id);
                println!("workspace    {}", b.workspace_id);
                println!("created      {}", b.created_at);
                for (label, pointer) in [
                    ("contract", "/contractHash"),
                    ("policy", "/policyBundleChecksum"),
                    ("decision", "/decisionCard/action"),
                    ("readiness", "/simulationSummary/readinessScore/mean"),
                    ("previous", "/previousBundleRef"),
                ] {
                    if let Some(x) = v.pointer(pointer) {
                        println!(
                            "{label:<12} {}",
                            x.as_str().map_or_else(|| x.to_string(), str::to_string)
                        );
                    }
                }
                println!("agent runs   {}", bundle.agent_runs.len());
                println!("trail        {} events", bundle.audit_trail.len());
                if let Ok(p) = s.bundle_path(&b) {
                    println!("file         {}", p.display());
                }
            }
            ok()
        }
    }
}

/// A store opened to read (it publishes nothing: no trusted keys).
/// A store opened to read: it returns only bundles that verify under its
/// own `signing-key.pem` and the `--trust` keys.
fn open_store_read_only(
    root: &Path,
    trust: &[std::path::PathBuf],
) -> Result<FileBundleStore, Failure> {
    if !root.join("audit-bundles").is_dir() {
        return Err(
            Failure::input("not a bundle store (no audit-bundles directory)")
                .in_file(root)
                .with_hint("pass the --store that `smm run` wrote to"),
        );
    }
    let keys = store_keys(root, trust)?;
    FileBundleStore::open(root, keys).map_err(|e| Failure::from(e).in_file(root))
}

/// The keys a store's bundles are checked against: its `signing-key.pem`
/// (when there is one) and the `--trust` keys; none is an error (a store's
/// files are not trusted unread).
fn store_keys(root: &Path, trust: &[std::path::PathBuf]) -> Result<Vec<TrustedKey>, Failure> {
    let mut keys = trust
        .iter()
        .map(|p| trusted_key(p))
        .collect::<Result<Vec<_>, _>>()?;
    let own = root.join(host::KEY_FILE);
    if own.is_file() {
        keys.push(trusted_key(&own)?);
    }
    if keys.is_empty() {
        return Err(Failure::input(
            "no key to verify the store's bundles with (no signing-key.pem in the store)",
        )
        .in_file(root)
        .with_hint("pass --trust KEY with the public key that signed them"));
    }
    Ok(keys)
}

/// A gzip file, or JSON that names the stored-record format.
fn looks_stored(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b]) || bytes.windows(20).any(|w| w == b"smm-stored-bundle/v1")
}

fn amounts(a: &AmountArgs) -> Result<Amounts, Failure> {
    let mut out = Amounts::new();
    if let Some(t) = a.tokens {
        out.insert(TOKENS.into(), t);
    }
    if let Some(c) = &a.cost_usd {
        let usd: Usd = c
            .parse()
            .map_err(|e| Failure::input(format!("--cost-usd {c:?}: {e}")))?;
        out.insert(COST_USD.into(), usd.nanos());
    }
    for pair in &a.amount {
        let (kind, n) = pair
            .split_once('=')
            .ok_or_else(|| Failure::input(format!("--amount {pair:?} is not KIND=N")))?;
        let n: u64 = n.parse().map_err(|_| {
            Failure::input(format!("--amount {pair:?}: {n:?} is not a whole number"))
        })?;
        out.insert(kind.into(), n);
    }
    if out.is_empty() {
        return Err(Failure::input(
            "nothing to record: give --tokens, --cost-usd or --amount KIND=N",
        ));
    }
    Ok(out)
}

fn ledger(path: &Path, create: bool) -> Result<SqliteLedger, Failure> {
    let l = if create {
        SqliteLedger::open(path)
    } else {
        SqliteLedger::open_existing(path)
    };
    l.map_err(|e| Failure::from(e).in_file(path))
}

fn usage_cmd(c: UsageCommand, json: bool) -> Outcome {
    match c {
        UsageCommand::Quota {
            ledger: path,
            workspace,
            kind,
            period,
            limit,
        } => {
            let period = Period::parse(&period).ok_or_else(|| {
                Failure::input(format!("--period {period:?}: use day, month or total"))
            })?;
            let q = Quota {
                workspace_id: workspace,
                kind,
                period,
                limit,
            };
            ledger(&path, true)?.set_quota(&q)?;
            if json {
                print_json(&to_value(&q)?);
            } else {
                println!(
                    "quota set: {} {} per {} ≤ {}",
                    q.workspace_id,
                    q.kind,
                    q.period.as_str(),
                    render::thousands(q.limit)
                );
            }
            ok()
        }
        UsageCommand::Reserve {
            ledger: path,
            workspace,
            job,
            amounts: a,
            now,
            ttl,
        } => {
            let now = now_or_clock(now)?;
            let amounts = amounts(&a)?;
            let r = ledger(&path, true)?.reserve(&workspace, &job, &amounts, now, ttl)?;
            if json {
                print_json(&to_value(&r)?);
            } else {
                println!("{} {}", r.outcome.as_str(), r.id);
                for reason in &r.reasons {
                    println!("  {reason}");
                }
                if r.allowed() {
                    println!("expires {}", r.expires_at);
                }
            }
            if r.allowed() {
                ok()
            } else {
                Ok(ExitCode::from(crate::fail::exit_code(ErrorCategory::Quota)))
            }
        }
        UsageCommand::Commit {
            ledger: path,
            reservation,
            amounts: a,
            now,
        } => {
            let now = now_or_clock(now)?;
            let amounts = amounts(&a)?;
            let r = ledger(&path, false)?.commit(&reservation, &amounts, now)?;
            if json {
                print_json(&to_value(&r)?);
            } else {
                println!(
                    "committed job {}{}",
                    r.job_id,
                    if r.already_committed {
                        " (already committed: unchanged)"
                    } else {
                        ""
                    }
                );
                for b in &r.breached {
                    println!("  BREACH: {b} is past its limit");
                }
            }
            ok()
        }
        UsageCommand::Release {
            ledger: path,
            reservation,
        } => {
            ledger(&path, false)?.release(&reservation)?;
            if json {
                print_json(&json!({"released": reservation}));
            } else {
                println!("released {reservation}");
            }
            ok()
        }
        UsageCommand::Report {
            ledger: path,
            workspace,
            now,
        } => {
            let now = now_or_clock(now)?;
            let status = ledger(&path, false)?.status(&workspace, now)?;
            if json {
                print_json(&to_value(&status)?);
            } else {
                println!(
                    "{:<12} {:<6} {:>16} {:>16} {:>16}",
                    "kind", "period", "used", "reserved", "limit"
                );
                for s in &status {
                    println!(
                        "{:<12} {:<6} {:>16} {:>16} {:>16}{}",
                        s.quota.kind,
                        s.quota.period.as_str(),
                        render::thousands(s.used),
                        render::thousands(s.reserved),
                        render::thousands(s.quota.limit),
                        if s.breached() { "  BREACHED" } else { "" }
                    );
                }
            }
            ok()
        }
    }
}

fn keygen(a: KeygenArgs, json: bool) -> Outcome {
    let secret = entropy()?;
    let signer = LocalSigner::from_secret_bytes("local", &secret)?;
    let pem = signer.to_pkcs8_pem()?;
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Failure::io("create", dir, &e))?;
    }
    write_new(&a.out, pem.as_bytes(), 0o600)?;
    let key_id = audit::key_fingerprint_id(signer.public_key());
    if json {
        print_json(&json!({
            "keyId": key_id,
            "publicKeyPem": signer.public_key_pem(),
            "written": a.out.display().to_string(),
        }));
    } else {
        print!("{}", signer.public_key_pem());
        eprintln!("wrote {} (mode 0600); key id {key_id}", a.out.display());
    }
    ok()
}
