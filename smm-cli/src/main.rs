//! `smm`: the main job of smm-core end to end, and a tool for each part.
//!
//! ```text
//! smm run examples/workspace.icblabs.v2.json --campaign examples/campaign.icblabs.json \
//!     --agent-run examples/agent-run.research.json --now 2025-09-01T12:00:00Z --store target/smm-run
//! ```
//!
//! Every subcommand has `--help` and `--json`; the exit code says what
//! kind of failure happened (see `smm --help`). This crate is a thin layer:
//! everything it does is a call into `smm_core`.

/// Standard output that ends the process quietly (exit 0) when the reader
/// has gone (`smm bundle list | head`), as Unix tools do, instead of the
/// standard macros' panic on a broken pipe.
mod out {
    use std::io::Write;

    pub(crate) fn write(args: std::fmt::Arguments<'_>) {
        let mut stdout = std::io::stdout().lock();
        if let Err(e) = stdout.write_fmt(args) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            eprintln!("smm: cannot write to standard output: {e}");
            std::process::exit(1);
        }
    }
}

// Shadow the standard macros in every module of the command.
macro_rules! print {
    ($($t:tt)*) => { $crate::out::write(format_args!($($t)*)) };
}
macro_rules! println {
    () => { $crate::out::write(format_args!("\n")) };
    ($($t:tt)*) => { $crate::out::write(format_args!("{}\n", format_args!($($t)*))) };
}

mod commands;
mod fail;
mod render;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Args, Parser, Subcommand};

use crate::fail::Failure;

const EXIT_CODES: &str = "\
Exit codes (one meaning each):
  0    success
  1    a failure inside smm (a bug: please report it)
  2    the command line is wrong (an unknown option, a missing argument)
  3    an input is wrong: a file, a field, a value (the message names it)
  4    integrity: a hash, signature or checksum does not match
  5    conflict with existing state (an id taken, a lifecycle rule)
  6    storage failed (a path, permissions, a full disk, a locked ledger)
  7    the signer (key file or KMS) failed or answered wrongly
  8    a policy denied the campaign
  9    a quota blocked the usage
  10   an authorization was refused
  124  a time limit was reached
  130  interrupted (Ctrl-C)";

/// smm: prove that a marketing campaign is ready, within policy and within
/// budget, with signed evidence.
#[derive(Debug, Parser)]
#[command(name = "smm", version, after_help = EXIT_CODES, propagate_version = true)]
struct Cli {
    /// Machine output: one JSON document on stdout (an error too, as
    /// {"error": {...}}).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The main job: validate the contract, simulate, evaluate the policies,
    /// decide, record the agent run's usage, sign and store the audit
    /// bundle, read it back and verify it.
    Run(RunArgs),
    /// Simulate a request and show its readiness (a progress bar on a
    /// terminal; Ctrl-C stops cleanly).
    Simulate(SimulateArgs),
    /// Workspace contracts: validate, hash, check a change, migrate v1.
    #[command(subcommand)]
    Contract(ContractCommand),
    /// Policy bundles: evaluate, run their Rego tests, checksum.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Audit bundles: sign, verify, list and show stored ones.
    #[command(subcommand)]
    Bundle(BundleCommand),
    /// The usage ledger (a SQLite file or a PostgreSQL URL): quotas,
    /// reservations, commits, a report.
    #[command(subcommand)]
    Usage(UsageCommand),
    /// A PostgreSQL database's schema: apply the migrations, or show the
    /// version it is at.
    #[command(subcommand)]
    Db(DbCommand),
    /// Write a new P-256 signing key (PKCS#8 PEM, mode 0600) and print its
    /// public key.
    Keygen(KeygenArgs),
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The workspace contract (v2 JSON).
    contract: PathBuf,
    /// A simulation request (default: the contract's own
    /// `simulationConfig` on the contract's workspace).
    #[arg(long)]
    request: Option<PathBuf>,
    /// The campaign the policies judge (`schemas/campaign.schema.json`):
    /// its workflow steps, spend, agent output.
    #[arg(long)]
    campaign: Option<PathBuf>,
    /// An agent run to record against the quotas
    /// (`schemas/agent-run.schema.json`).
    #[arg(long)]
    agent_run: Option<PathBuf>,
    /// The signing key (PKCS#8 PEM, mode 0600). Default: `STORE/signing-key.pem`,
    /// created on first use (a PostgreSQL store needs it given).
    #[arg(long)]
    key: Option<PathBuf>,
    /// Where signed bundles are kept: a directory, or a `postgresql://` URL
    /// shared by every replica (with `--key`).
    #[arg(long, default_value = "smm-store")]
    store: PathBuf,
    /// The usage ledger: a SQLite file, or a `postgresql://` URL shared by
    /// every replica. Default: `STORE/usage.sqlite`, or the store's own
    /// database when `--store` is a URL.
    #[arg(long)]
    ledger: Option<PathBuf>,
    /// A policy bundle (a directory, or an OPA `.tar.gz`). Default: the
    /// bundle shipped in smm-core.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// The time the run happens at (RFC 3339). Default: the clock. Pass it
    /// to reproduce a run byte for byte.
    #[arg(long)]
    now: Option<String>,
    /// Worker threads of the simulation (default, or 0: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Who runs it (written in the audit trail).
    #[arg(long, default_value = "smm")]
    actor: String,
}

#[derive(Debug, Args)]
struct SimulateArgs {
    /// The simulation request (JSON, `schemas/simulation-request.schema.json`).
    request: PathBuf,
    /// Iterations (overrides the request's).
    #[arg(long)]
    iterations: Option<u64>,
    /// Seed (overrides the request's).
    #[arg(long)]
    seed: Option<u64>,
    /// Worker threads (default, or 0: all cores). The report is the same on any
    /// count.
    #[arg(long)]
    threads: Option<usize>,
    /// Stop as soon as the readiness mean's confidence interval has at most
    /// this half-width (after 1,000 iterations; never past --iterations).
    #[arg(long, conflicts_with = "relative_precision")]
    precision: Option<f64>,
    /// The same, as a fraction of the mean (0.001: within 0.1 %).
    #[arg(long)]
    relative_precision: Option<f64>,
    /// The readiness model: smm-readiness-v2 (default) or smm-readiness-v1
    /// (to reproduce reports made before v2).
    #[arg(long)]
    model: Option<String>,
}

#[derive(Debug, Subcommand)]
enum ContractCommand {
    /// Check a v2 contract against its schema and rules at a time.
    Validate {
        /// The contract.
        file: PathBuf,
        /// The time the rules are checked at (RFC 3339; default: the clock).
        #[arg(long)]
        now: Option<String>,
    },
    /// Print the contract's terms hash (RFC 8785, SHA-256).
    Hash {
        /// The contract.
        file: PathBuf,
    },
    /// Check that NEW may follow OLD (same terms, or a new version chained
    /// by `previousContractRef`): a CI gate.
    CheckChange {
        /// The current contract.
        old: PathBuf,
        /// The proposed one.
        new: PathBuf,
    },
    /// Migrate a v1 contract to v2 (printed, or written with --out).
    Migrate {
        /// The v1 contract.
        file: PathBuf,
        /// Write here instead of stdout (refuses to overwrite).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Evaluate `data.smm.decision` on a policy input (exit 8 when it
    /// denies).
    Eval {
        /// The policy input (`schemas/policy-input.schema.json`).
        input: PathBuf,
        /// The bundle (a directory or an OPA `.tar.gz`; default: shipped).
        #[arg(long)]
        bundle: Option<PathBuf>,
    },
    /// Run the bundle's Rego tests (`test_*` rules) with coverage.
    Test {
        /// The bundle (a directory or an OPA `.tar.gz`; default: shipped).
        #[arg(long)]
        bundle: Option<PathBuf>,
    },
    /// Print the bundle's checksum (a contract's `policyBundleChecksum`).
    Checksum {
        /// The bundle (a directory or an OPA `.tar.gz`; default: shipped).
        #[arg(long)]
        bundle: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum BundleCommand {
    /// Sign an assembled audit bundle (JSON) into a DSSE envelope.
    Sign {
        /// The bundle (`schemas/audit-bundle.schema.json`).
        bundle: PathBuf,
        /// The signing key (PKCS#8 PEM, mode 0600).
        #[arg(long)]
        key: PathBuf,
        /// Write the envelope here instead of stdout (refuses to overwrite).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Verify a bundle offline: an envelope (DSSE JSON), a file a store
    /// wrote (`bundle-….json.gz`), or with `--store` a stored bundle's id
    /// (exit 4 when it does not verify, 3 when the file is neither).
    Verify {
        /// The envelope or stored file; with `--store`, the bundle id.
        envelope: PathBuf,
        /// A trusted key: a public key (PEM) or a private key file; its key
        /// id is its fingerprint. Repeat for several. With `--store`, the
        /// store's own `signing-key.pem` is trusted too.
        #[arg(long = "trust")]
        trust: Vec<PathBuf>,
        /// Read the bundle from this store (a directory or a
        /// `postgresql://` URL), by id.
        #[arg(long)]
        store: Option<PathBuf>,
    },
    /// List a store's bundles of a workspace, oldest first (each one
    /// verified: anything else in the store is an error naming its file).
    List {
        /// The store: a directory or a `postgresql://` URL (then give
        /// `--trust`).
        #[arg(long, default_value = "smm-store")]
        store: PathBuf,
        /// A trusted key besides the store's `signing-key.pem` (repeat).
        #[arg(long = "trust")]
        trust: Vec<PathBuf>,
        /// The workspace (needed only when the store holds several).
        #[arg(long)]
        workspace: Option<String>,
        /// Created at or after (RFC 3339).
        #[arg(long)]
        from: Option<String>,
        /// Created before this instant (RFC 3339; the bound is exclusive, so
        /// `--from A --to B` lists `[A, B)` and consecutive ranges never
        /// list a bundle twice).
        #[arg(long)]
        to: Option<String>,
        /// List one page of at most this many bundles (1 to 10,000); the
        /// next page's cursor is printed after it (on stderr, or as `next`
        /// with `--json`). Its cost grows with the page, not the store.
        #[arg(long, conflicts_with_all = ["from", "to"])]
        limit: Option<usize>,
        /// The page after this bundle id (the cursor a page printed).
        #[arg(long, requires = "limit")]
        after: Option<String>,
    },
    /// Show a stored bundle.
    Show {
        /// The bundle id (`sha256:` + 64 hex), or a prefix of its hex that
        /// only one bundle of the store has (at least 4 digits).
        id: String,
        /// The store: a directory or a `postgresql://` URL (then give
        /// `--trust`).
        #[arg(long, default_value = "smm-store")]
        store: PathBuf,
        /// A trusted key besides the store's `signing-key.pem` (repeat).
        #[arg(long = "trust")]
        trust: Vec<PathBuf>,
    },
}

/// What a usage command reserves or commits.
#[derive(Debug, Args)]
struct AmountArgs {
    /// Tokens.
    #[arg(long)]
    tokens: Option<u64>,
    /// Dollars (a decimal, e.g. 0.1134).
    #[arg(long)]
    cost_usd: Option<String>,
    /// Any other kind, as KIND=N. Repeatable.
    #[arg(long = "amount", value_name = "KIND=N")]
    amount: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum UsageCommand {
    /// Set a workspace's quota for a kind and period.
    Quota {
        /// The ledger: a SQLite file (created when missing) or a
        /// `postgresql://` URL.
        #[arg(long)]
        ledger: PathBuf,
        /// The workspace.
        #[arg(long)]
        workspace: String,
        /// `tokens`, `cost_usd` (in nano-dollars) or a custom kind.
        #[arg(long)]
        kind: String,
        /// day, month or total.
        #[arg(long)]
        period: String,
        /// The limit.
        #[arg(long)]
        limit: u64,
    },
    /// Reserve usage for a job before its model calls (exit 9 when a quota
    /// blocks it).
    Reserve {
        /// The ledger: a SQLite file (created when missing) or a
        /// `postgresql://` URL.
        #[arg(long)]
        ledger: PathBuf,
        /// The workspace.
        #[arg(long)]
        workspace: String,
        /// The job.
        #[arg(long)]
        job: String,
        #[command(flatten)]
        amounts: AmountArgs,
        /// When (RFC 3339; default: the clock).
        #[arg(long)]
        now: Option<String>,
        /// Seconds before an uncommitted reservation stops counting.
        #[arg(long, default_value_t = smm_core::usage::DEFAULT_RESERVATION_TTL_SECONDS)]
        ttl: u64,
    },
    /// Commit a reservation's actual usage (idempotent by job).
    Commit {
        /// The ledger: a SQLite file or a `postgresql://` URL.
        #[arg(long)]
        ledger: PathBuf,
        /// The reservation id (`res-…`).
        reservation: String,
        #[command(flatten)]
        amounts: AmountArgs,
        /// When (RFC 3339; default: the clock).
        #[arg(long)]
        now: Option<String>,
    },
    /// Release a reservation (the model call failed).
    Release {
        /// The ledger: a SQLite file or a `postgresql://` URL.
        #[arg(long)]
        ledger: PathBuf,
        /// The reservation id (`res-…`).
        reservation: String,
    },
    /// Every quota of a workspace (used, reserved, limit; dollars as dollars)
    /// and the tokens and dollars it used in all; an unknown workspace is an
    /// input error.
    Report {
        /// The ledger: a SQLite file or a `postgresql://` URL.
        #[arg(long)]
        ledger: PathBuf,
        /// The workspace (needed only when the ledger holds several).
        #[arg(long)]
        workspace: Option<String>,
        /// When (RFC 3339; default: the clock).
        #[arg(long)]
        now: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum DbCommand {
    /// Apply the pending migrations of the ledger's and the bundle store's
    /// tables (from an empty database or any earlier version; a newer one
    /// is refused).
    Migrate {
        /// The database (`postgresql://user:password@host:port/db`).
        url: String,
    },
    /// The schema version the database is at, and the newest this
    /// version of smm knows. Changes nothing.
    Status {
        /// The database (`postgresql://user:password@host:port/db`).
        url: String,
    },
}

#[derive(Debug, Args)]
struct KeygenArgs {
    /// The key file to create (refuses to overwrite).
    #[arg(long)]
    out: PathBuf,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with 0; usage errors exit 2.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    // Ctrl-C sets the flag; a running simulation stops at its next block.
    // A second Ctrl-C exits at once.
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&cancel);
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    });
    let json = cli.json;
    let result = commands::dispatch(cli.command, json, &cancel);
    match result {
        Ok(code) => code,
        Err(failure) => failure.report(json),
    }
}

/// A result of the CLI.
type Outcome = Result<ExitCode, Failure>;
