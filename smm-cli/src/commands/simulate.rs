//! `smm simulate`: a simulation request, with a progress bar on a terminal.

use super::*;

pub(super) fn simulate(a: SimulateArgs, json: bool, cancel: &Arc<AtomicBool>) -> Outcome {
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
        println!("{}", out.report.to_json_pretty().map_err(Failure::from)?);
    } else {
        let readiness = out.samples.as_ref().map(|s| s.readiness_score.as_slice());
        print!("{}", render::report(&out.report, readiness));
    }
    ok()
}
