//! `smm contract`: validate, hash, check a change, migrate.

use super::*;

pub(super) fn contract_cmd(c: ContractCommand, json: bool) -> Outcome {
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
