//! `smm run`: the main job in a store directory or a PostgreSQL store.

use super::*;

pub(super) fn run(a: RunArgs, json: bool, cancel: &Arc<AtomicBool>) -> Outcome {
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
    // A directory (made when missing, with its own key and SQLite ledger),
    // or a PostgreSQL store (which needs --key, and keeps the books in the
    // same database unless --ledger says otherwise).
    let store_url = a
        .store
        .to_str()
        .filter(|s| host::is_store_url(s))
        .map(str::to_string);
    let store_shown = match &store_url {
        Some(u) => smm_core::usage::redact_postgres_url(u),
        None => a.store.display().to_string(),
    };
    let signer = match (&a.key, &store_url) {
        (Some(p), _) => existing_key(p)?,
        (None, Some(_)) => {
            return Err(Failure::input(
                "a PostgreSQL store needs the key that signs its bundles: pass --key KEY",
            )
            .in_file(Path::new(&store_shown))
            .with_hint("make one with `smm keygen --out KEY` and pass it to every replica"));
        }
        (None, None) => {
            std::fs::create_dir_all(&a.store).map_err(|e| Failure::io("create", &a.store, &e))?;
            let path = a.store.join(host::KEY_FILE);
            host::key_file_signer(&path, true, &host::os_entropy)
                .map_err(|e| at_step(Step::Sign, &path)(e))?
        }
    };
    let store = host::Store::open(
        &a.store,
        vec![TrustedKey {
            key_id: signer.key_id().to_string(),
            key: *signer.public_key(),
        }],
    )
    .map_err(|e| at_step(Step::Store, Path::new(&store_shown))(e))?;
    let ledger_arg = match (&a.ledger, &store_url) {
        (Some(l), _) => l.clone(),
        (None, Some(u)) => std::path::PathBuf::from(u),
        (None, None) => a.store.join(host::LEDGER_FILE),
    };
    let choice = host::LedgerChoice::from_arg(&ledger_arg);
    // A URL is named without its password.
    let ledger_path = std::path::PathBuf::from(choice.describe());
    let ledger = choice
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
    let result = host::StoreJob::in_store(store.as_dyn())
        .signer(Some(&signer))
        .ledger(Some(ledger.as_dyn()))
        .policy(Some(&policy))
        .run(inputs, &options, &host::os_entropy);
    ProgressBar::new().finish();
    let outcome = result?.outcome;
    if json {
        print_json(&to_value(&outcome)?);
    } else {
        let stored = StoredBundle::from_envelope(outcome.envelope.as_bytes())?;
        let path = store.location_of(&stored);
        print!(
            "{}",
            render::run(&outcome, &path, &ledger_path.display().to_string())
        );
    }
    ok()
}

/// Cancellation by Ctrl-C, and a progress bar on a terminal for runs long
/// enough to need one.
pub(super) fn control(cancel: &Arc<AtomicBool>, iterations: u64) -> RunControl {
    let control = RunControl::default().with_cancel(Arc::clone(cancel));
    if ProgressBar::new().visible() && iterations > 100_000 {
        control.with_progress(|p: Progress| ProgressBar::draw(p.done, p.total))
    } else {
        control
    }
}
