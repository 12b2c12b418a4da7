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

fn ledger(path: &Path, create: bool) -> Result<SqliteLedger, Failure> {
    let l = if create {
        SqliteLedger::open(path)
    } else {
        SqliteLedger::open_existing(path)
    };
    l.map_err(|e| Failure::from(e).in_file(path))
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
