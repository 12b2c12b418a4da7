//! `smm bundle`: sign, verify, list and show audit bundles.

use super::*;

/// A trusted key from a public key (PEM, DER) or a PKCS#8 private key file.
fn trusted_key(path: &Path) -> Result<TrustedKey, Failure> {
    let bytes = read_bytes(path)?;
    let text = String::from_utf8_lossy(&bytes);
    let key = if text.contains("PRIVATE KEY") {
        *existing_key(path)?.public_key()
    } else {
        audit::parse_public_key(&bytes).map_err(|e| Failure::from(e).in_file(path))?
    };
    Ok(TrustedKey {
        key_id: audit::key_fingerprint_id(&key),
        key,
    })
}

pub(super) fn bundle_cmd(c: BundleCommand, json: bool) -> Outcome {
    match c {
        BundleCommand::Sign { bundle, key, out } => {
            let signer = existing_key(&key)?;
            let text = read(&bundle)?;
            let b: AuditBundle =
                AuditBundle::from_json(&text).map_err(|e| Failure::from(e).in_file(&bundle))?;
            let envelope = audit::sign_bundle(&b, &[&signer as &dyn Signer])?;
            match out {
                Some(p) => {
                    write_new(&p, &envelope, 0o644)?;
                    let id = b.id()?;
                    if json {
                        print_json(&json!({"bundleId": id, "written": p.display().to_string()}));
                    } else {
                        println!("{id}\nwrote {}", p.display());
                    }
                }
                None => println!("{}", String::from_utf8_lossy(&envelope)),
            }
            ok()
        }
        BundleCommand::Verify {
            envelope,
            trust,
            store,
        } => {
            let (keys, bytes) = match &store {
                Some(root) => {
                    let s = open_store_read_only(root, &trust)?;
                    let keys = store_keys(root, &trust)?;
                    let id = envelope.display().to_string();
                    let b = s
                        .as_dyn()
                        .get(&id)
                        .map_err(|e| Failure::from(e).in_file(&shown(root)))?;
                    let b = b.ok_or_else(|| {
                        Failure::input(format!("no bundle {id} in the store"))
                            .in_file(&shown(root))
                            .with_hint("list the store's bundles with `smm bundle list`")
                    })?;
                    (keys, b.envelope)
                }
                None => {
                    if trust.is_empty() {
                        return Err(Failure::input(
                            "no trusted key: pass --trust KEY (or --store with its signing-key.pem)",
                        ));
                    }
                    let keys = trust
                        .iter()
                        .map(|p| trusted_key(p))
                        .collect::<Result<Vec<_>, _>>()?;
                    let bytes = read_bytes(&envelope)?;
                    // A bare envelope, or a file a store wrote.
                    let bytes = if bytes.starts_with(b"{\"payload") || !looks_stored(&bytes) {
                        bytes
                    } else {
                        audit::store::read_stored_record(&bytes)
                            .map_err(|e| Failure::from(e).in_file(&envelope))?
                            .envelope
                    };
                    if Envelope::from_json(&bytes).is_err() {
                        return Err(Failure::input(
                            "neither an envelope (DSSE JSON) nor a bundle file a store wrote",
                        )
                        .in_file(&envelope)
                        .with_hint(
                            "pass an envelope, a stored bundle-….json.gz, or --store DIR ID",
                        ));
                    }
                    (keys, bytes)
                }
            };
            let v = audit::verify_envelope(&bytes, &keys, None);
            if json {
                print_json(&to_value(&v)?);
            } else {
                for c in &v.checks {
                    println!(
                        "{} {:<14} {}",
                        if c.ok { "ok  " } else { "FAIL" },
                        c.name,
                        c.detail
                    );
                }
                println!(
                    "{}",
                    if v.verified {
                        format!(
                            "verified: {} signed by {}",
                            v.bundle_id.as_deref().unwrap_or("?"),
                            v.key_id.as_deref().unwrap_or("?")
                        )
                    } else {
                        "NOT verified".to_string()
                    }
                );
            }
            if v.verified {
                ok()
            } else {
                Ok(ExitCode::from(crate::fail::exit_code(
                    ErrorCategory::Integrity,
                )))
            }
        }
        BundleCommand::List {
            store,
            trust,
            workspace,
            from,
            to,
            limit,
            after,
        } => {
            let s = open_store_read_only(&store, &trust)?;
            let workspace = match workspace {
                Some(w) => w,
                None => only_workspace(&s, &store)?,
            };
            let (list, next) = match limit {
                Some(limit) => {
                    let page = s.as_dyn().list_page(&workspace, after.as_deref(), limit)?;
                    (page.bundles, Some(page.next))
                }
                None => (
                    s.as_dyn()
                        .list(&workspace, from.as_deref(), to.as_deref())?,
                    None,
                ),
            };
            if json {
                let rows: Vec<Value> = list
                    .iter()
                    .map(|b| {
                        json!({
                            "bundleId": b.bundle_id,
                            "workspaceId": b.workspace_id,
                            "createdAt": b.created_at,
                        })
                    })
                    .collect();
                match next {
                    Some(next) => print_json(&json!({ "bundles": rows, "next": next })),
                    None => print_json(&Value::Array(rows)),
                }
            } else {
                for b in &list {
                    println!("{}  {}", b.created_at, b.bundle_id);
                }
                if let Some(Some(next)) = next {
                    eprintln!("more follow: add --after {next}");
                }
            }
            ok()
        }
        BundleCommand::Show { id, store, trust } => {
            let s = open_store_read_only(&store, &trust)?;
            let id = full_id(&s, &store, &id)?;
            let b = s.as_dyn().get(&id)?.ok_or_else(|| {
                Failure::input(format!("no bundle {id} in the store"))
                    .in_file(&shown(&store))
                    .with_hint("list the store's bundles with `smm bundle list`")
            })?;
            let bundle = b.bundle()?;
            if json {
                print_json(&to_value(&bundle)?);
            } else {
                let v = to_value(&bundle)?;
                println!("bundle       {}", b.bundle_id);
                println!("workspace    {}", b.workspace_id);
                println!("created      {}", b.created_at);
                for (label, pointer) in [
                    ("contract", "/contractHash"),
                    ("policy", "/policyBundleChecksum"),
                    ("decision", "/decisionCard/action"),
                    ("readiness", "/simulationSummary/readinessScore/mean"),
                    ("previous", "/previousBundleRef"),
                ] {
                    if let Some(x) = v.pointer(pointer) {
                        println!(
                            "{label:<12} {}",
                            x.as_str().map_or_else(|| x.to_string(), str::to_string)
                        );
                    }
                }
                println!("agent runs   {}", bundle.agent_runs.len());
                println!("trail        {} events", bundle.audit_trail.len());
                match &s {
                    host::Store::Dir(d) => {
                        if let Ok(p) = d.bundle_path(&b) {
                            println!("file         {}", p.display());
                        }
                    }
                    other => println!("stored in    {}", other.location_of(&b)),
                }
            }
            ok()
        }
    }
}

/// A `--store` as it may be shown: a directory, or a URL without its
/// password.
fn shown(store: &Path) -> std::path::PathBuf {
    match store.to_str().filter(|s| host::is_store_url(s)) {
        Some(url) => smm_core::usage::redact_postgres_url(url).into(),
        None => store.to_path_buf(),
    }
}

/// A store opened to read: it returns only bundles that verify under its
/// own `signing-key.pem` (a directory's) and the `--trust` keys.
fn open_store_read_only(root: &Path, trust: &[std::path::PathBuf]) -> Result<host::Store, Failure> {
    let is_url = root.to_str().is_some_and(host::is_store_url);
    if !is_url && !root.join("audit-bundles").is_dir() {
        return Err(
            Failure::input("not a bundle store (no audit-bundles directory)")
                .in_file(root)
                .with_hint("pass the --store that `smm run` wrote to"),
        );
    }
    let keys = store_keys(root, trust)?;
    host::Store::open(root, keys).map_err(|e| Failure::from(e).in_file(&shown(root)))
}

/// The keys a store's bundles are checked against: a directory's
/// `signing-key.pem` (when there is one) and the `--trust` keys; none is
/// an error (a store's bundles are not trusted unread).
fn store_keys(root: &Path, trust: &[std::path::PathBuf]) -> Result<Vec<TrustedKey>, Failure> {
    let mut keys = trust
        .iter()
        .map(|p| trusted_key(p))
        .collect::<Result<Vec<_>, _>>()?;
    let is_url = root.to_str().is_some_and(host::is_store_url);
    let own = root.join(host::KEY_FILE);
    if !is_url && own.is_file() {
        keys.push(trusted_key(&own)?);
    }
    if keys.is_empty() {
        let why = if is_url {
            "no key to verify the store's bundles with"
        } else {
            "no key to verify the store's bundles with (no signing-key.pem in the store)"
        };
        return Err(Failure::input(why)
            .in_file(&shown(root))
            .with_hint("pass --trust KEY with the public key that signed them"));
    }
    Ok(keys)
}

/// A gzip file, or JSON that names the stored-record format.
fn looks_stored(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b]) || bytes.windows(20).any(|w| w == b"smm-stored-bundle/v1")
}

/// The one workspace a store holds bundles of (`--workspace` may then be
/// left out); several are an input error that lists them.
fn only_workspace(s: &host::Store, root: &Path) -> Result<String, Failure> {
    let root = &shown(root);
    let names = s.workspaces()?;
    match names.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(Failure::input("the store holds no bundle yet").in_file(root)),
        many => Err(Failure::input(format!(
            "the store holds bundles of {} workspaces ({})",
            many.len(),
            many.join(", ")
        ))
        .in_file(root)
        .with_hint("name one with --workspace")),
    }
}

/// A bundle id from a whole id or a unique prefix of its hex (with or
/// without `sha256:`, at least 4 digits).
fn full_id(s: &host::Store, root: &Path, given: &str) -> Result<String, Failure> {
    let root = &shown(root);
    let hex = given.strip_prefix("sha256:").unwrap_or(given);
    if hex.len() == 64 {
        return Ok(format!("sha256:{hex}"));
    }
    if hex.len() < 4
        || !hex
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    {
        return Err(Failure::input(format!(
            "{given:?} is neither a bundle id (sha256: and 64 lowercase hex digits) nor a prefix \
             of one (at least 4 of its hex digits)"
        ))
        .with_hint("copy the id from `smm bundle list`"));
    }
    let want = format!("sha256:{hex}");
    let found = s.ids_starting_with(&want)?;
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(
            Failure::input(format!("no bundle of the store starts with {want}"))
                .in_file(root)
                .with_hint("list the store's bundles with `smm bundle list`"),
        ),
        many => Err(Failure::input(format!(
            "{} bundles start with {want}: {}",
            many.len(),
            many.join(", ")
        ))
        .in_file(root)
        .with_hint("give more digits of the id")),
    }
}
