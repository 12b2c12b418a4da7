//! `smm db`: a PostgreSQL database's schema (migrate, status) for both of
//! its components, the ledger and the bundle store.

use super::*;

fn state(found: i64, supported: i64, what: &str) -> String {
    match found {
        0 => format!("no {what} yet (`smm db migrate` creates it)"),
        v if v == supported => "current".into(),
        v if v < supported => "behind (`smm db migrate` brings it up)".into(),
        _ => "newer than this smm: upgrade smm".into(),
    }
}

pub(super) fn db_cmd(c: DbCommand, json: bool) -> Outcome {
    match c {
        DbCommand::Migrate { url } => {
            let shown = smm_core::usage::redact_postgres_url(&url);
            let at = |e: smm_core::Error| Failure::from(e).in_file(Path::new(&shown));
            let ledger = smm_core::usage::migrate_ledger(&url).map_err(|e| at(e.into()))?;
            let store = audit::store::migrate_store(&url).map_err(|e| at(e.into()))?;
            let rows = [("ledger", ledger), ("store", store)];
            if json {
                let components: Vec<Value> = rows
                    .iter()
                    .map(|(c, (from, to))| json!({"component": c, "from": from, "to": to}))
                    .collect();
                print_json(&json!({"url": shown, "components": components}));
            } else {
                for (component, (from, to)) in rows {
                    if from == to {
                        println!(
                            "{shown}: the {component}'s schema is at version {to}, the newest; nothing to do"
                        );
                    } else {
                        println!(
                            "{shown}: the {component}'s schema migrated from version {from} to {to}"
                        );
                    }
                }
            }
        }
        DbCommand::Status { url } => {
            let shown = smm_core::usage::redact_postgres_url(&url);
            let at = |e: smm_core::Error| Failure::from(e).in_file(Path::new(&shown));
            let l = smm_core::usage::ledger_schema_status(&url).map_err(|e| at(e.into()))?;
            let s = audit::store::store_schema_status(&url).map_err(|e| at(e.into()))?;
            let rows = [
                ("ledger", l.found, l.supported),
                ("store", s.found, s.supported),
            ];
            if json {
                let components: Vec<Value> = rows
                    .iter()
                    .map(|(c, found, supported)| {
                        json!({"component": c, "version": found, "supported": supported,
                               "current": found == supported})
                    })
                    .collect();
                print_json(&json!({
                    "url": l.url, "components": components,
                    "current": rows.iter().all(|(_, f, s)| f == s),
                }));
            } else {
                for (component, found, supported) in rows {
                    println!(
                        "{}: {component} schema version {found} (this smm writes {supported}): {}",
                        l.url,
                        state(found, supported, component)
                    );
                }
            }
        }
    }
    ok()
}
