//! `smm db`: a PostgreSQL database's schema (migrate, status).

use super::*;

pub(super) fn db_cmd(c: DbCommand, json: bool) -> Outcome {
    match c {
        DbCommand::Migrate { url } => {
            let shown = smm_core::usage::redact_postgres_url(&url);
            let (from, to) = smm_core::usage::migrate_ledger(&url)
                .map_err(|e| Failure::from(e).in_file(Path::new(&shown)))?;
            if json {
                print_json(&json!({"url": shown, "component": "ledger", "from": from, "to": to}));
            } else if from == to {
                println!(
                    "{shown}: the ledger's schema is at version {to}, the newest; nothing to do"
                );
            } else {
                println!("{shown}: the ledger's schema migrated from version {from} to {to}");
            }
        }
        DbCommand::Status { url } => {
            let shown = smm_core::usage::redact_postgres_url(&url);
            let st = smm_core::usage::ledger_schema_status(&url)
                .map_err(|e| Failure::from(e).in_file(Path::new(&shown)))?;
            if json {
                print_json(&json!({
                    "url": st.url, "component": "ledger", "version": st.found,
                    "supported": st.supported, "current": st.found == st.supported,
                }));
            } else {
                let state = match st.found {
                    0 => "no ledger yet (`smm db migrate` creates it)".to_string(),
                    v if v == st.supported => "current".into(),
                    v if v < st.supported => "behind (`smm db migrate` brings it up)".into(),
                    _ => "newer than this smm: upgrade smm".into(),
                };
                println!(
                    "{}: ledger schema version {} (this smm writes {}): {state}",
                    st.url, st.found, st.supported
                );
            }
        }
    }
    ok()
}
