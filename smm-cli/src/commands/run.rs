//! `smm run`: the main job in a store directory.

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
    let choice =
        host::LedgerChoice::from_arg(&a.ledger.unwrap_or_else(|| a.store.join(host::LEDGER_FILE)));
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
    let result = host::StoreJob::in_store(&store)
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
pub(super) fn control(cancel: &Arc<AtomicBool>, iterations: u64) -> RunControl {
    let control = RunControl::default().with_cancel(Arc::clone(cancel));
    if ProgressBar::new().visible() && iterations > 100_000 {
        control.with_progress(|p: Progress| ProgressBar::draw(p.done, p.total))
    } else {
        control
    }
}
