//! `smm policy`: evaluate, test, checksum a policy bundle.

use super::*;

pub(super) fn policy_cmd(c: PolicyCommand, json: bool) -> Outcome {
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
