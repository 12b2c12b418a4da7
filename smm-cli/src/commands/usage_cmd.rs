//! `smm usage`: quotas, reservations, commits and the usage report.

use super::*;

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

/// The ledger `--ledger` names: a SQLite file or a `postgresql://` URL
/// (named in errors without its password).
fn ledger(path: &Path, create: bool) -> Result<host::Ledger, Failure> {
    let choice = host::LedgerChoice::from_arg(path);
    let l = if create {
        choice.open()
    } else {
        choice.open_existing()
    };
    l.map_err(|e| Failure::from(e).in_file(Path::new(&choice.describe())))
}

pub(super) fn usage_cmd(c: UsageCommand, json: bool) -> Outcome {
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
            ledger(&path, true)?.as_dyn().set_quota(&q)?;
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
            let r = ledger(&path, true)?
                .as_dyn()
                .reserve(&workspace, &job, &amounts, now, ttl)?;
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
            let r = ledger(&path, false)?
                .as_dyn()
                .commit(&reservation, &amounts, now)?;
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
            ledger(&path, false)?.as_dyn().release(&reservation)?;
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
            let opened = ledger(&path, false)?;
            let books = opened.as_dyn();
            let shown = host::LedgerChoice::from_arg(&path).describe();
            let workspace = match workspace {
                Some(w) => w,
                None => {
                    let known = books.workspaces()?;
                    match known.as_slice() {
                        [one] => one.clone(),
                        [] => {
                            return Err(Failure::input("the ledger holds no workspace yet")
                                .in_file(Path::new(&shown))
                                .with_hint(
                                    "`smm usage quota` sets a quota; `smm run` records runs",
                                ));
                        }
                        many => {
                            return Err(Failure::input(format!(
                                "the ledger holds {} workspaces ({})",
                                many.len(),
                                many.join(", ")
                            ))
                            .in_file(Path::new(&shown))
                            .with_hint("name one with --workspace"));
                        }
                    }
                }
            };
            let status = books.status(&workspace, now)?;
            // What the workspace used in all, quota or not.
            let tokens = books.used(&workspace, TOKENS, Period::Total, now)?;
            let cost = books.used(&workspace, COST_USD, Period::Total, now)?;
            if status.is_empty() && tokens == 0 && cost == 0 {
                return Err(Failure::input(format!(
                    "the ledger has no quota and no usage for workspace {workspace:?}"
                ))
                .in_file(Path::new(&shown))
                .with_hint("check the workspace id (`smm usage quota` sets one)"));
            }
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
                        amount_text(&s.quota.kind, s.used),
                        amount_text(&s.quota.kind, s.reserved),
                        amount_text(&s.quota.kind, s.quota.limit),
                        if s.breached() { "  BREACHED" } else { "" }
                    );
                }
                // The totals of the two kinds every run records, when no
                // quota shows them already.
                for (kind, used) in [(TOKENS, tokens), (COST_USD, cost)] {
                    let shown = status
                        .iter()
                        .any(|s| &*s.quota.kind == kind && s.quota.period == Period::Total);
                    if !shown {
                        println!(
                            "{:<12} {:<6} {:>16} {:>16} {:>16}",
                            kind,
                            "total",
                            amount_text(kind, used),
                            "-",
                            "no quota"
                        );
                    }
                }
            }
            ok()
        }
    }
}

/// An amount of `kind` as people read it: dollars for `cost_usd` (exact,
/// the ledger keeps nano-dollars), a separated count otherwise.
fn amount_text(kind: &str, n: u64) -> String {
    if kind == COST_USD {
        let usd = Usd::from_nanos(n);
        let whole = n / 1_000_000_000;
        let text = usd.to_string();
        let frac = text
            .split_once('.')
            .map_or(String::new(), |(_, f)| format!(".{f}"));
        format!("${}{frac}", render::thousands(whole))
    } else {
        render::thousands(n)
    }
}
