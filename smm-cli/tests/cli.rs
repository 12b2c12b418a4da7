//! The `smm` binary as a user runs it: outputs, exit codes, files.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const NOW: &str = "2025-09-01T12:00:00Z";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn example(name: &str) -> String {
    root().join("examples").join(name).display().to_string()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("smm-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn smm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smm"))
        .args(args)
        .output()
        .unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn run_args<'a>(store: &'a str, extra: &[&'a str]) -> Vec<String> {
    run_at(NOW, store, extra)
}

fn run_at<'a>(now: &str, store: &'a str, extra: &[&'a str]) -> Vec<String> {
    let mut v: Vec<String> = vec![
        "run".into(),
        example("workspace.icblabs.v2.json"),
        "--campaign".into(),
        example("campaign.icblabs.json"),
        "--agent-run".into(),
        example("agent-run.research.json"),
        "--now".into(),
        now.into(),
        "--store".into(),
        store.into(),
    ];
    v.extend(extra.iter().map(|s| (*s).to_string()));
    v
}

fn smm_owned(args: &[String]) -> Output {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    smm(&refs)
}

#[test]
fn the_main_job_runs_and_reads_at_a_glance() {
    let d = tmp("run");
    let store = d.join("store").display().to_string();
    let o = smm_owned(&run_args(&store, &[]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    for needle in [
        "readiness    0.",
        "95% CI",
        "│█",
        "decision     human_approval",
        "usage        job research-2025-09-01-launch: 5,770 tokens, $0.1134, recorded",
        "bundle       sha256:",
        "verified     signed by local-",
    ] {
        assert!(out.contains(needle), "{needle:?} missing in\n{out}");
    }
    assert!(out.lines().count() < 40, "{out}");
    // The key was made once, private to its owner.
    let key = d.join("store/signing-key.pem");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Piped: no progress bar, no carriage returns.
    assert!(!stderr(&o).contains('\r'));

    // Machine output: the run result, schema-shaped.
    let o = smm_owned(&run_args(&store, &["--json"]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["verification"]["verified"], true);
    assert_eq!(v["usage"]["alreadyRecorded"], true);
    // The second run chains to the first.
    let bundle = &v["bundleId"];
    let listed = smm(&[
        "bundle",
        "list",
        "--json",
        "--store",
        &store,
        "--workspace",
        "ws-icblabs-0001",
    ]);
    let rows: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2);
    let show = smm(&[
        "bundle",
        "show",
        "--json",
        bundle.as_str().unwrap(),
        "--store",
        &store,
    ]);
    assert_eq!(code(&show), 0, "{}", stderr(&show));
    let b: Value = serde_json::from_slice(&show.stdout).unwrap();
    assert!(
        b["previousBundleRef"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );

    // The ledger kept the run once (the contract's cap bounded the run
    // without being written to the ledger: the operator's quota here).
    let quota = smm(&[
        "usage",
        "quota",
        "--ledger",
        &format!("{store}/usage.sqlite"),
        "--workspace",
        "ws-icblabs-0001",
        "--kind",
        "cost_usd",
        "--period",
        "total",
        "--limit",
        "5000000000000",
    ]);
    assert_eq!(code(&quota), 0, "{}", stderr(&quota));
    let report = smm(&[
        "usage",
        "report",
        "--json",
        "--ledger",
        &format!("{store}/usage.sqlite"),
        "--workspace",
        "ws-icblabs-0001",
        "--now",
        NOW,
    ]);
    let r: Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(r[0]["used"], 113_400_000u64);
    // In text: dollars as `smm run` says them, a tokens row, no nano-dollars.
    let ledger = format!("{store}/usage.sqlite");
    // One workspace in the ledger: --workspace is not needed.
    let text = smm(&["usage", "report", "--ledger", &ledger, "--now", NOW]);
    assert_eq!(code(&text), 0, "{}", stderr(&text));
    let out = stdout(&text);
    assert!(out.contains("$0.1134") && out.contains("$5,000"), "{out}");
    assert!(!out.contains("113,400,000"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("tokens") && l.contains("no quota")),
        "{out}"
    );
    // An unknown workspace is an input error that says so, not an empty table.
    let unknown = smm(&[
        "usage",
        "report",
        "--ledger",
        &ledger,
        "--workspace",
        "ws-nobody",
        "--now",
        NOW,
    ]);
    assert_eq!(code(&unknown), 3, "{}", stdout(&unknown));
    assert!(stderr(&unknown).contains("no quota and no usage for workspace \"ws-nobody\""));
    // Two: the report names them and asks for one.
    let q = smm(&[
        "usage",
        "quota",
        "--ledger",
        &ledger,
        "--workspace",
        "ws-other",
        "--kind",
        "tokens",
        "--period",
        "day",
        "--limit",
        "10",
    ]);
    assert_eq!(code(&q), 0, "{}", stderr(&q));
    let both = smm(&["usage", "report", "--ledger", &ledger, "--now", NOW]);
    assert_eq!(code(&both), 3, "{}", stderr(&both));
    assert!(
        stderr(&both).contains("2 workspaces (ws-icblabs-0001, ws-other)")
            && stderr(&both).contains("--workspace"),
        "{}",
        stderr(&both)
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn each_failure_has_its_exit_code_and_one_line() {
    let d = tmp("fail");
    let store = d.join("store").display().to_string();
    // An expired contract: input (3), named step and field.
    let o = smm_owned(&run_at("2027-01-01T00:00:00Z", &store, &[]));
    assert_eq!(code(&o), 3);
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("smm: contract step failed"), "{err}");
    assert!(
        err.contains("/consentRecords/0/expiresAt") && err.contains("fix:"),
        "{err}"
    );
    assert!(!err.contains("panicked") && !err.contains("backtrace"));

    // A quota block: 9, and the JSON error names the step.
    let ledger = d.join("ledger.sqlite").display().to_string();
    let q = smm(&[
        "usage",
        "quota",
        "--ledger",
        &ledger,
        "--workspace",
        "ws-icblabs-0001",
        "--kind",
        "tokens",
        "--period",
        "day",
        "--limit",
        "1000",
    ]);
    assert_eq!(code(&q), 0, "{}", stderr(&q));
    let o = smm_owned(&run_args(&store, &["--ledger", &ledger, "--json"]));
    assert_eq!(code(&o), 9, "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["error"]["step"], "usage");
    assert_eq!(v["error"]["category"], "quota");
    assert_eq!(v["error"]["kind"], "SMM_QUOTA_EXCEEDED");
    // Nothing stored.
    let listed = smm(&[
        "bundle",
        "list",
        "--store",
        &store,
        "--workspace",
        "ws-icblabs-0001",
    ]);
    assert_eq!(stdout(&listed), "");

    // A halted workspace: denied (8).
    let mut doc: Value = serde_json::from_str(
        &std::fs::read_to_string(example("workspace.icblabs.v2.json")).unwrap(),
    )
    .unwrap();
    doc["emergencyFlags"]["halted"] = Value::Bool(true);
    doc["emergencyFlags"]["reason"] = Value::String("incident 42".into());
    let halted = d.join("halted.json");
    std::fs::write(&halted, doc.to_string()).unwrap();
    let mut args = run_args(&store, &[]);
    args[1] = halted.display().to_string();
    let o = smm_owned(&args);
    assert_eq!(code(&o), 8, "{}", stderr(&o));
    assert!(stderr(&o).contains("decision step failed"));
    assert!(stderr(&o).contains("workspace_halted"));

    // A key others can read: the signer (7) refuses it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = d.join("open.pem");
        let o = smm(&["keygen", "--out", key.to_str().unwrap()]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let o = smm_owned(&run_args(&store, &["--key", key.to_str().unwrap()]));
        assert_ne!(code(&o), 0);
        assert!(stderr(&o).contains("chmod 600"), "{}", stderr(&o));
    }

    // A bad flag: clap's usage error (2).
    assert_eq!(code(&smm(&["run", "--no-such-flag"])), 2);
    // A bad --now: input (3).
    let o = smm_owned(&run_at("yesterday", &store, &[]));
    assert_eq!(code(&o), 3);

    // An input that never ends (/dev/zero) or is not text: input (3), read
    // no further than the document limit, the file named.
    #[cfg(unix)]
    {
        let o = smm(&["simulate", "/dev/zero"]);
        assert_eq!(code(&o), 3, "{}", stderr(&o));
        assert!(stderr(&o).contains("/dev/zero") && stderr(&o).contains("MAX_DOCUMENT_BYTES"));
        let mut args = run_args(&store, &[]);
        args[1] = "/dev/zero".into();
        assert_eq!(code(&smm_owned(&args)), 3);
    }
    let latin1 = d.join("latin1.json");
    std::fs::write(&latin1, b"{\"a\": \"caf\xe9\"}").unwrap();
    let o = smm(&["contract", "hash", latin1.to_str().unwrap(), "--json"]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["error"]["category"], "input", "{v}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn keygen_sign_and_verify_round_trip() {
    let d = tmp("keys");
    let key = d.join("k.pem");
    let o = smm(&["keygen", "--out", key.to_str().unwrap(), "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let k: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(k["publicKeyPem"].as_str().unwrap().contains("PUBLIC KEY"));
    // Never overwritten.
    let o = smm(&["keygen", "--out", key.to_str().unwrap()]);
    assert_eq!(code(&o), 5, "{}", stderr(&o));
    let public = d.join("k.pub");
    std::fs::write(&public, k["publicKeyPem"].as_str().unwrap()).unwrap();

    // A run with that key; its envelope verifies under the public key.
    let store = d.join("store").display().to_string();
    let o = smm_owned(&run_args(
        &store,
        &["--key", key.to_str().unwrap(), "--json"],
    ));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["verification"]["keyId"], k["keyId"]);
    let env = d.join("env.json");
    std::fs::write(&env, v["envelope"].as_str().unwrap()).unwrap();
    let o = smm(&[
        "bundle",
        "verify",
        env.to_str().unwrap(),
        "--trust",
        public.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("verified: sha256:"));

    // Altered: integrity (4).
    let text = v["envelope"]
        .as_str()
        .unwrap()
        .replacen("\"sig\":\"M", "\"sig\":\"N", 1);
    std::fs::write(&env, text).unwrap();
    let o = smm(&[
        "bundle",
        "verify",
        env.to_str().unwrap(),
        "--trust",
        public.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 4, "{}", stdout(&o));
    assert!(stdout(&o).contains("FAIL"));

    // Re-sign the bundle from the store with `bundle sign`: the same bytes.
    let show = smm(&[
        "bundle",
        "show",
        "--json",
        v["bundleId"].as_str().unwrap(),
        "--store",
        &store,
        "--trust",
        public.to_str().unwrap(),
    ]);
    assert_eq!(code(&show), 0, "{}", stderr(&show));
    let bundle = d.join("bundle.json");
    std::fs::write(&bundle, &show.stdout).unwrap();
    let out = d.join("resigned.json");
    let o = smm(&[
        "bundle",
        "sign",
        bundle.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        v["envelope"].as_str().unwrap()
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn contract_policy_and_usage_tools() {
    let d = tmp("tools");
    let v1 = example("workspace.icblabs.v1.json");
    let v2 = example("workspace.icblabs.v2.json");
    let o = smm(&["contract", "validate", &v2, "--now", NOW]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = smm(&["contract", "validate", &v2, "--now", "2027-01-01T00:00:00Z"]);
    assert_eq!(code(&o), 3);
    assert!(stdout(&o).contains("error at /consentRecords/0/expiresAt"));
    let o = smm(&["contract", "hash", &v2]);
    assert!(stdout(&o).starts_with("sha256:"));
    let migrated = d.join("m.json");
    let o = smm(&[
        "contract",
        "migrate",
        &v1,
        "--out",
        migrated.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = smm(&["contract", "check-change", &v2, &v2]);
    assert_eq!(stdout(&o).trim(), "same terms");

    let o = smm(&["policy", "checksum"]);
    let checksum = stdout(&o).trim().to_string();
    assert!(std::fs::read_to_string(&v2).unwrap().contains(&checksum));
    let o = smm(&[
        "policy",
        "eval",
        &example("policy-input.icblabs.json"),
        "--json",
    ]);
    assert!(matches!(code(&o), 0 | 8), "{}", stderr(&o));
    let dec: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(dec["allow"].as_bool().unwrap(), code(&o) == 0);
    let o = smm(&["policy", "test"]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert!(stdout(&o).contains("0 failed"));

    let ledger = d.join("l.sqlite").display().to_string();
    let ws = "ws-icblabs-0001";
    let o = smm(&[
        "usage",
        "quota",
        "--ledger",
        &ledger,
        "--workspace",
        ws,
        "--kind",
        "tokens",
        "--period",
        "day",
        "--limit",
        "100",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = smm(&[
        "usage",
        "reserve",
        "--json",
        "--ledger",
        &ledger,
        "--workspace",
        ws,
        "--job",
        "j1",
        "--tokens",
        "60",
        "--now",
        NOW,
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    let id = r["id"].as_str().unwrap().to_string();
    // A second job would pass the limit: blocked (9), nothing held.
    let o = smm(&[
        "usage",
        "reserve",
        "--ledger",
        &ledger,
        "--workspace",
        ws,
        "--job",
        "j2",
        "--tokens",
        "60",
        "--now",
        NOW,
    ]);
    assert_eq!(code(&o), 9, "{}", stdout(&o));
    let o = smm(&[
        "usage", "commit", "--ledger", &ledger, &id, "--tokens", "55", "--now", NOW,
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = smm(&[
        "usage",
        "report",
        "--json",
        "--ledger",
        &ledger,
        "--workspace",
        ws,
        "--now",
        NOW,
    ]);
    let s: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s[0]["used"], 55);
    assert_eq!(s[0]["reserved"], 0);
    // Bad amounts and a missing ledger are input errors, not panics.
    let o = smm(&[
        "usage",
        "reserve",
        "--ledger",
        &ledger,
        "--workspace",
        ws,
        "--job",
        "j3",
        "--cost-usd",
        "abc",
    ]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let missing = d.join("none.sqlite").display().to_string();
    let o = smm(&["usage", "report", "--ledger", &missing, "--workspace", ws]);
    assert_ne!(code(&o), 0);
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(&d);
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_a_long_simulation_cleanly() {
    use std::time::{Duration, Instant};
    let d = tmp("ctrlc");
    let mut req: Value = serde_json::from_str(
        &std::fs::read_to_string(example("icblabs-seed42.request.json")).unwrap(),
    )
    .unwrap();
    req["simulationConfig"]["enableEarlyTermination"] = Value::Bool(false);
    let path = d.join("long.json");
    std::fs::write(&path, req.to_string()).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_smm"))
        .args([
            "simulate",
            path.to_str().unwrap(),
            "--iterations",
            "2000000000",
            "--threads",
            "1",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Let it start.
    std::thread::sleep(Duration::from_millis(700));
    let sent = Instant::now();
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let took = sent.elapsed();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("cancelled"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(out.stdout.is_empty());
    // Not a timing assertion: a generous bound only against a hang.
    assert!(took < Duration::from_secs(60));
    let _ = std::fs::remove_dir_all(&d);
}

/// `smm bundle verify` reads what the store writes: a stored file, or an
/// id with `--store`; `| head` ends the command quietly.
#[test]
fn bundle_verify_reads_the_store_and_pipes_close_quietly() {
    let d = tmp("verify-stored");
    let store = d.join("store").display().to_string();
    let o = smm_owned(&run_args(&store, &["--json"]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let id = v["bundleId"].as_str().unwrap();
    let key = format!("{store}/signing-key.pem");
    let day = std::path::Path::new(&store).join("audit-bundles/2025-09-01");
    let file = std::fs::read_dir(&day)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".json.gz"))
        .unwrap();
    let o = smm(&["bundle", "verify", file.to_str().unwrap(), "--trust", &key]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let o = smm(&["bundle", "verify", id, "--store", &store]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    // Neither an envelope nor a stored file: exit 3.
    let junk = d.join("junk.json");
    std::fs::write(&junk, "{\"x\": 1}").unwrap();
    let o = smm(&["bundle", "verify", junk.to_str().unwrap(), "--trust", &key]);
    assert_eq!(code(&o), 3, "{}{}", stdout(&o), stderr(&o));
    // A reader that goes away: no panic, exit 0.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_smm"))
        .args([
            "bundle",
            "list",
            "--store",
            &store,
            "--workspace",
            "ws-icblabs-0001",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.code() == Some(0),
        "{:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    let _ = std::fs::remove_dir_all(&d);
}

/// Racing `smm run`s on one workspace and store form one linear chain
/// (they forked it 10 times out of 10 before).
#[test]
fn racing_runs_form_one_chain() {
    let d = tmp("race");
    let store = d.join("store").display().to_string();
    let children: Vec<_> = (0..4)
        .map(|i| {
            let mut args = vec![
                "run".to_string(),
                example("workspace.icblabs.v2.json"),
                "--campaign".into(),
                example("campaign.icblabs.json"),
                "--now".into(),
                NOW.into(),
                "--store".into(),
                store.clone(),
                "--actor".into(),
                format!("racer-{i}"),
                "--json".into(),
            ];
            args.shrink_to_fit();
            std::process::Command::new(env!("CARGO_BIN_EXE_smm"))
                .args(&args)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let listed = smm(&[
        "bundle",
        "list",
        "--json",
        "--store",
        &store,
        "--workspace",
        "ws-icblabs-0001",
    ]);
    assert_eq!(code(&listed), 0, "{}", stderr(&listed));
    let rows: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 4);
    assert_one_chain(&store, rows, &[]);
    let _ = std::fs::remove_dir_all(&d);
}

/// `--threads 0` means every core, as in C and Python (one meaning).
#[test]
fn threads_zero_is_every_core() {
    let req = example("icblabs-seed42.request.json");
    let zero = smm(&["simulate", &req, "--threads", "0", "--json"]);
    assert_eq!(code(&zero), 0, "{}", stderr(&zero));
    let one = smm(&["simulate", &req, "--threads", "1", "--json"]);
    assert_eq!(zero.stdout, one.stdout);
}

/// A missing file is an input error whose hint is about the file, not a
/// field; the line names the file once and no empty pointer.
#[test]
fn a_missing_file_says_what_fixes_it() {
    let d = tmp("missing-file");
    let missing = d.join("nope.json").display().to_string();
    let o = smm(&["contract", "validate", &missing]);
    assert_eq!(code(&o), 3);
    let err = stderr(&o);
    assert!(err.contains(&missing), "{err}");
    assert!(
        err.contains("(fix: check the path: no file is there)"),
        "{err}"
    );
    assert!(
        !err.contains("field named") && !err.contains("at :"),
        "{err}"
    );
}

/// `bundle list` needs `--workspace` only when the store holds several;
/// `bundle show` takes a unique prefix of the id.
#[test]
fn bundle_list_and_show_need_only_what_is_ambiguous() {
    let d = tmp("prefix");
    let store = d.join("store").display().to_string();
    let o = smm_owned(&run_at(NOW, &store, &["--json"]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let id = serde_json::from_slice::<Value>(&o.stdout).unwrap()["bundleId"]
        .as_str()
        .unwrap()
        .to_string();
    let list = smm(&["bundle", "list", "--store", &store]);
    assert_eq!(code(&list), 0, "{}", stderr(&list));
    assert!(stdout(&list).contains(&id), "{}", stdout(&list));
    let hex = id.trim_start_matches("sha256:");
    for given in [&hex[..8], &format!("sha256:{}", &hex[..6]), &id] {
        let show = smm(&["bundle", "show", given, "--store", &store]);
        assert_eq!(code(&show), 0, "{given}: {}", stderr(&show));
        assert!(stdout(&show).contains(&id), "{}", stdout(&show));
    }
    for bad in ["zzzz", "ab", "0000000000"] {
        let show = smm(&["bundle", "show", bad, "--store", &store]);
        assert_eq!(code(&show), 3, "{bad}: {}", stderr(&show));
        assert!(!stderr(&show).contains("at :"), "{}", stderr(&show));
    }
    let _ = std::fs::remove_dir_all(&d);
}

/// `bundle list --limit N [--after ID]` pages through a workspace: the pages
/// put together are the whole list, the last page has no cursor, and a
/// cursor that is not a bundle of the workspace is refused naming it.
#[test]
fn bundle_list_pages_with_a_cursor() {
    let d = tmp("pages");
    let store = d.join("store").display().to_string();
    for _ in 0..3 {
        let o = smm_owned(&run_at(NOW, &store, &["--json"]));
        assert_eq!(code(&o), 0, "{}", stderr(&o));
    }
    let all = smm(&["bundle", "list", "--store", &store, "--json"]);
    let all: Vec<String> = serde_json::from_slice::<Value>(&all.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["bundleId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(all.len(), 3);
    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut args = vec![
            "bundle", "list", "--store", &store, "--json", "--limit", "2",
        ];
        if let Some(a) = &after {
            args.extend(["--after", a.as_str()]);
        }
        let o = smm(&args);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        for b in v["bundles"].as_array().unwrap() {
            paged.push(b["bundleId"].as_str().unwrap().to_string());
        }
        match v["next"].as_str() {
            Some(n) => after = Some(n.to_string()),
            None => break,
        }
    }
    assert_eq!(paged, all);
    let text = smm(&["bundle", "list", "--store", &store, "--limit", "1"]);
    assert_eq!(stdout(&text).lines().count(), 1, "{}", stdout(&text));
    assert!(
        stderr(&text).contains(&format!("--after {}", all[0])),
        "{}",
        stderr(&text)
    );
    let unknown = format!("sha256:{}", "ab".repeat(32));
    for (args, says) in [
        (vec!["--limit", "2", "--after", unknown.as_str()], "/after"),
        (vec!["--limit", "0"], "/limit"),
        (vec!["--limit", "2", "--after", "sha256:zz"], "sha256:zz"),
    ] {
        let mut full = vec!["bundle", "list", "--store", &store];
        full.extend(args);
        let o = smm(&full);
        assert_eq!(code(&o), 3, "{full:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{full:?}: {}", stderr(&o));
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[path = "../../smm-core/tests/support/pg_server.rs"]
mod pg_server;

/// The ledger on PostgreSQL from the command line: `smm db status` and
/// `migrate`, eight processes racing `smm run` on one workspace with one
/// store and one database (one chain; the agent run's job counted once),
/// the report, and a URL's password in no error.
#[test]
fn runs_on_a_postgres_ledger() {
    let server = pg_server::PgServer::start();
    let url = server.database("cli_runs");
    let st = smm(&["db", "status", "--json", &url]);
    assert_eq!(code(&st), 0, "{}", stderr(&st));
    let v: Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(v["current"].as_bool(), Some(false), "{v}");
    for (i, component) in ["ledger", "store"].iter().enumerate() {
        assert_eq!(v["components"][i]["component"], *component, "{v}");
        assert_eq!(v["components"][i]["version"].as_i64(), Some(0), "{v}");
    }
    let m = smm(&["db", "migrate", &url]);
    assert_eq!(code(&m), 0, "{}", stderr(&m));
    for (component, version) in [
        ("ledger", smm_core::usage::POSTGRES_LEDGER_SCHEMA_VERSION),
        (
            "store",
            smm_core::audit::store::POSTGRES_STORE_SCHEMA_VERSION,
        ),
    ] {
        assert!(
            stdout(&m).contains(&format!(
                "the {component}'s schema migrated from version 0 to {version}"
            )),
            "{}",
            stdout(&m)
        );
    }
    let st = smm(&["db", "status", "--json", &url]);
    let v: Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(v["current"].as_bool(), Some(true), "{v}");
    let again = smm(&["db", "migrate", &url]);
    assert!(
        stdout(&again).contains("nothing to do"),
        "{}",
        stdout(&again)
    );

    let d = tmp("pg-race");
    let store = d.join("store").display().to_string();
    let children: Vec<_> = (0..8)
        .map(|i| {
            let mut args = run_args(&store, &["--ledger", &url, "--json", "--actor"]);
            args.push(format!("racer-{i}"));
            std::process::Command::new(env!("CARGO_BIN_EXE_smm"))
                .args(&args)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let listed = smm(&["bundle", "list", "--json", "--store", &store]);
    let rows: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let n = rows.as_array().unwrap().len();
    assert_eq!(n, 8, "{rows}");
    assert_one_chain(&store, rows, &[]);
    // The agent run's job is one job: recorded once, whoever raced.
    let report = smm(&[
        "usage",
        "report",
        "--json",
        "--ledger",
        &url,
        "--workspace",
        "ws-icblabs-0001",
        "--now",
        NOW,
    ]);
    assert_eq!(code(&report), 0, "{}", stderr(&report));
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let (jobs, tokens): (i64, i64) = c
        .query_one(
            "SELECT count(DISTINCT job_id), coalesce(sum(amount), 0)::BIGINT FROM model_usage
             WHERE workspace_id = 'ws-icblabs-0001' AND kind = 'tokens'",
            &[],
        )
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert_eq!((jobs, tokens), (1, 5_770));

    // The store on PostgreSQL too: eight processes racing `smm run
    // --store URL --key KEY` (the books in the same database) form one
    // chain, which `smm bundle list|show|verify --store URL` read back.
    let both = server.database("cli_store");
    let key = d.join("replica-key.pem").display().to_string();
    let k = smm(&["keygen", "--out", &key]);
    assert_eq!(code(&k), 0, "{}", stderr(&k));
    let no_key = smm_owned(&run_args(&both, &[]));
    assert_eq!(code(&no_key), 3, "{}", stderr(&no_key));
    assert!(stderr(&no_key).contains("--key"), "{}", stderr(&no_key));
    let children: Vec<_> = (0..8)
        .map(|i| {
            let mut args = run_args(&both, &["--key", &key, "--json", "--actor"]);
            args.push(format!("replica-{i}"));
            std::process::Command::new(env!("CARGO_BIN_EXE_smm"))
                .args(&args)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let listed = smm(&[
        "bundle", "list", "--json", "--store", &both, "--trust", &key,
    ]);
    assert_eq!(code(&listed), 0, "{}", stderr(&listed));
    let rows: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 8, "{rows}");
    let first = rows[0]["bundleId"].as_str().unwrap().to_string();
    assert_one_chain(&both, rows, &["--trust", &key]);
    let v = smm(&[
        "bundle", "verify", &first, "--store", &both, "--trust", &key,
    ]);
    assert_eq!(code(&v), 0, "{}", stderr(&v));
    let short = &first["sha256:".len()..][..8];
    let show = smm(&["bundle", "show", short, "--store", &both, "--trust", &key]);
    assert_eq!(code(&show), 0, "{}", stderr(&show));
    assert!(stdout(&show).contains(&first), "{}", stdout(&show));
    let no_trust = smm(&["bundle", "list", "--store", &both]);
    assert_eq!(code(&no_trust), 3, "{}", stderr(&no_trust));
    let mut c = postgres::Client::connect(&both, postgres::NoTls).unwrap();
    let jobs: i64 = c
        .query_one("SELECT count(DISTINCT job_id) FROM model_usage", &[])
        .map(|r| r.get(0))
        .unwrap();
    assert_eq!(
        jobs, 1,
        "the books are in the store's database, the job once"
    );

    // The password shows nowhere, not even for an unreachable server.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bad = format!("postgresql://smm:hunter2-secret@127.0.0.1:{port}/x?connect_timeout=2");
    for args in [
        vec!["usage", "report", "--ledger", &bad, "--workspace", "w"],
        vec!["db", "status", &bad],
        vec!["db", "migrate", &bad],
    ] {
        let o = smm(&args);
        assert_eq!(code(&o), 6, "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("hunter2"), "{}", stderr(&o));
        assert!(stderr(&o).contains("try again"), "{}", stderr(&o));
    }
    let o = smm_owned(&run_args(&store, &["--ledger", &bad]));
    assert_eq!(code(&o), 6, "{}", stderr(&o));
    assert!(!stderr(&o).contains("hunter2"), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(&d);
}

/// The listed bundles of a store form one chain: one first bundle, and
/// each other names a different one before it (no fork).
fn assert_one_chain(store: &str, rows: Value, trust: &[&str]) {
    let ids: Vec<String> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["bundleId"].as_str().unwrap().to_string())
        .collect();
    // Each bundle names the one before it: one chain, no fork.
    let mut previous = std::collections::BTreeMap::new();
    for id in &ids {
        let mut args = vec!["bundle", "show", "--json", id, "--store", store];
        args.extend_from_slice(trust);
        let show = smm(&args);
        assert_eq!(code(&show), 0, "{}", stderr(&show));
        let b: Value = serde_json::from_slice(&show.stdout).unwrap();
        previous.insert(
            id.clone(),
            b["previousBundleRef"].as_str().map(str::to_string),
        );
    }
    let firsts = previous.values().filter(|p| p.is_none()).count();
    let named: std::collections::BTreeSet<_> = previous.values().flatten().collect();
    assert_eq!(firsts, 1, "{previous:?}");
    assert_eq!(
        named.len(),
        ids.len() - 1,
        "a bundle named twice is a fork: {previous:?}"
    );
}

/// A FIFO planted in the store (as the workspace's lock file, as its head)
/// fails a run, named, instead of making it wait forever: the run opened
/// the lock for writing, which waits for a reader of a FIFO.
#[cfg(unix)]
#[test]
fn a_fifo_planted_in_the_store_fails_a_run_instead_of_hanging() {
    let d = tmp("fifo");
    let store = d.join("store");
    let store_arg = store.display().to_string();
    let o = smm_owned(&run_args(&store_arg, &[]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let only = |dir: &str, prefix: &str| {
        let found: Vec<PathBuf> = std::fs::read_dir(store.join(dir))
            .unwrap()
            .map(|f| f.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(prefix))
            })
            .collect();
        assert_eq!(found.len(), 1, "{found:?}");
        found.into_iter().next().unwrap()
    };
    let plant = |path: &Path| {
        std::fs::remove_file(path).unwrap();
        let made = Command::new("mkfifo").arg(path).status().unwrap();
        assert!(made.success());
    };
    for (dir, prefix) in [("locks", "ws-"), ("heads", "ws-")] {
        let path = only(dir, prefix);
        let kept = std::fs::read(&path).unwrap();
        plant(&path);
        let mut child = Command::new(env!("CARGO_BIN_EXE_smm"))
            .args(run_args(&store_arg, &[]))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > std::time::Duration::from_secs(120) {
                let _ = child.kill();
                panic!("smm run hung on a FIFO planted at {}", path.display());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let o = child.wait_with_output().unwrap();
        let err = stderr(&o);
        assert_eq!(code(&o), 4, "{dir}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("regular file"), "{dir}: {err}");
        // Put back, the store serves the next run.
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, kept).unwrap();
    }
    let o = smm_owned(&run_args(&store_arg, &[]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(&d);
}
