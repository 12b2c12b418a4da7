//! Loading a bundle: from modules, files, OPA bundle archives and
//! directories, each checked (paths, sizes, encodings, data) before it is
//! compiled.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::atomic::Ordering;

use serde_json::Value;

use super::eval::compile_vm;
use super::{
    DECISION_RULE, MAX_BUNDLE_BYTES, MAX_MODULE_BYTES, MAX_MODULES, NEXT_BUNDLE_ID, PolicyBundle,
    build_engine, checksum_manifest, is_test_module, sha256,
};
use crate::jcs;
use crate::policy::{PolicyError, engine_error};

impl PolicyBundle {
    /// A bundle from Rego modules (path -> source) and optional data (a JSON
    /// object mounted at `data`).
    pub fn from_modules(
        modules: impl IntoIterator<Item = (String, String)>,
        data: Option<Value>,
    ) -> Result<PolicyBundle, PolicyError> {
        let mut map = BTreeMap::new();
        for (path, src) in modules {
            let path = normalize_path(&path)?;
            if !path.ends_with(".rego") {
                return Err(PolicyError::InvalidBundle {
                    path,
                    message: "a module path must end in .rego".into(),
                });
            }
            if map.insert(path.clone(), src).is_some() {
                return Err(PolicyError::InvalidBundle {
                    path,
                    message: "two modules have this path".into(),
                });
            }
        }
        let data = match data {
            None => Value::Object(serde_json::Map::new()),
            Some(Value::Object(m)) => {
                // Through the canonicalizer: refuses what JSON numbers or
                // nesting would make ambiguous.
                let c = jcs::canonicalize_value(&Value::Object(m)).map_err(|e| {
                    PolicyError::InvalidBundle {
                        path: "data".into(),
                        message: e.to_string(),
                    }
                })?;
                serde_json::from_slice(&c).map_err(|e| PolicyError::InvalidBundle {
                    path: "data".into(),
                    message: e.to_string(),
                })?
            }
            Some(_) => {
                return Err(PolicyError::InvalidBundle {
                    path: "data".into(),
                    message: "the bundle's data must be a JSON object".into(),
                });
            }
        };
        Self::from_parts(map, data, None)
    }

    /// A bundle from files as `opa build` lays them out: `*.rego` modules,
    /// `data.json` files mounted at their directory's path, an optional
    /// root `.manifest`. Other files are ignored, except data in YAML and
    /// Wasm modules, which are refused (not supported).
    pub fn from_files(
        files: impl IntoIterator<Item = (String, Vec<u8>)>,
    ) -> Result<PolicyBundle, PolicyError> {
        Self::from_files_with(files, None)
    }

    /// [`PolicyBundle::from_files`], only when the files' checksum is
    /// `pin` (a contract's `policyBundleChecksum`): the checksum is
    /// computed from the files and compared before any Rego source is
    /// parsed, so a bundle off the pin never runs.
    pub fn from_files_pinned(
        files: impl IntoIterator<Item = (String, Vec<u8>)>,
        pin: &str,
    ) -> Result<PolicyBundle, PolicyError> {
        Self::from_files_with(files, Some(pin))
    }

    fn from_files_with(
        files: impl IntoIterator<Item = (String, Vec<u8>)>,
        pin: Option<&str>,
    ) -> Result<PolicyBundle, PolicyError> {
        let mut modules = BTreeMap::new();
        let mut data = Value::Object(serde_json::Map::new());
        let mut manifest = None;
        let mut total: u64 = 0;
        for (raw_path, bytes) in files {
            let path = normalize_path(&raw_path)?;
            total = total.saturating_add(bytes.len() as u64);
            if total > MAX_BUNDLE_BYTES {
                return Err(PolicyError::InvalidBundle {
                    path,
                    message: format!("the bundle exceeds {MAX_BUNDLE_BYTES} bytes"),
                });
            }
            let (dir, name) = match path.rsplit_once('/') {
                Some((d, n)) => (d, n),
                None => ("", path.as_str()),
            };
            let bad = |message: String| PolicyError::InvalidBundle {
                path: path.clone(),
                message,
            };
            if name.ends_with(".rego") {
                if bytes.len() > MAX_MODULE_BYTES {
                    return Err(bad(format!(
                        "a module may hold at most {MAX_MODULE_BYTES} bytes"
                    )));
                }
                let src = String::from_utf8(bytes).map_err(|_| bad("not UTF-8".into()))?;
                if modules.insert(path.clone(), src).is_some() {
                    return Err(bad("two files have this path".into()));
                }
            } else if name == "data.json" {
                let c = jcs::canonicalize(&bytes).map_err(|e| bad(e.to_string()))?;
                let v: Value = serde_json::from_slice(&c).map_err(|e| bad(e.to_string()))?;
                mount(&mut data, dir, v).map_err(bad)?;
            } else if name == "data.yaml" || name == "data.yml" {
                return Err(bad(
                    "YAML data files are not supported: convert them to data.json".into(),
                ));
            } else if name.ends_with(".wasm") {
                return Err(bad(
                    "Wasm policies are not supported: ship the Rego sources".into(),
                ));
            } else if path == ".manifest" {
                let c = jcs::canonicalize(&bytes).map_err(|e| bad(e.to_string()))?;
                let v: Value = serde_json::from_slice(&c).map_err(|e| bad(e.to_string()))?;
                if !v.is_object() {
                    return Err(bad("the manifest must be a JSON object".into()));
                }
                manifest = Some(v);
            }
        }
        if let Some(pin) = pin {
            let checksum = jcs::hex(&sha256(&checksum_manifest(&modules, &data)?));
            if checksum != pin {
                return Err(PolicyError::ChecksumMismatch {
                    decision: checksum,
                    contract: pin.to_string(),
                });
            }
        }
        Self::from_parts(modules, data, manifest)
    }

    /// A bundle from an OPA bundle archive (a gzipped tar, as `opa build`
    /// writes it), given as bytes.
    pub fn from_archive_bytes(archive: &[u8]) -> Result<PolicyBundle, PolicyError> {
        Self::from_archive_bytes_with(archive, None)
    }

    /// [`PolicyBundle::from_archive_bytes`], pinned as
    /// [`PolicyBundle::from_files_pinned`] is.
    pub fn from_archive_bytes_pinned(
        archive: &[u8],
        pin: &str,
    ) -> Result<PolicyBundle, PolicyError> {
        Self::from_archive_bytes_with(archive, Some(pin))
    }

    fn from_archive_bytes_with(
        archive: &[u8],
        pin: Option<&str>,
    ) -> Result<PolicyBundle, PolicyError> {
        let bad = |path: &str, message: String| PolicyError::InvalidBundle {
            path: path.to_string(),
            message,
        };
        let gz = flate2::bufread::GzDecoder::new(archive).take(MAX_BUNDLE_BYTES + 1);
        let mut tar = tar::Archive::new(gz);
        let mut files = Vec::new();
        let entries = tar
            .entries()
            .map_err(|e| bad("archive", format!("not a gzipped tar: {e}")))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| bad("archive", format!("unreadable entry: {e}")))?;
            let path = entry
                .path()
                .map_err(|e| bad("archive", format!("bad entry name: {e}")))?
                .to_string_lossy()
                .into_owned();
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {}
                tar::EntryType::Directory
                | tar::EntryType::XGlobalHeader
                | tar::EntryType::XHeader
                | tar::EntryType::GNULongName
                | tar::EntryType::GNULongLink => continue,
                other => {
                    return Err(bad(
                        &path,
                        format!(
                            "unsupported archive entry type {other:?} (links and devices are refused)"
                        ),
                    ));
                }
            }
            let mut bytes = Vec::new();
            entry
                .read_to_end(&mut bytes)
                .map_err(|e| bad(&path, format!("unreadable: {e}")))?;
            files.push((path, bytes));
        }
        // The rest of the gzip member (tar's end blocks and padding), then
        // nothing: a second member or trailing bytes would be a second,
        // unchecked reading of the archive.
        let mut gz = tar.into_inner();
        std::io::copy(&mut gz, &mut std::io::sink())
            .map_err(|e| bad("archive", format!("not a gzipped tar: {e}")))?;
        if gz.limit() == 0 {
            return Err(bad(
                "archive",
                format!("the bundle exceeds {MAX_BUNDLE_BYTES} bytes"),
            ));
        }
        let rest = gz.into_inner().into_inner();
        if rest.starts_with(&[0x1f, 0x8b]) {
            return Err(bad(
                "archive",
                "a second gzip member follows the first: an archive is one gzip stream".into(),
            ));
        }
        if !rest.is_empty() {
            return Err(bad(
                "archive",
                format!(
                    "{} bytes of trailing data after the gzip stream",
                    rest.len()
                ),
            ));
        }
        if files.iter().map(|(_, b)| b.len() as u64).sum::<u64>() > MAX_BUNDLE_BYTES {
            return Err(bad(
                "archive",
                format!("the bundle exceeds {MAX_BUNDLE_BYTES} bytes"),
            ));
        }
        Self::from_files_with(files, pin)
    }

    /// A bundle from an OPA bundle archive file (`opa build`'s `.tar.gz`).
    #[cfg(feature = "fs")]
    pub fn from_archive(path: impl AsRef<std::path::Path>) -> Result<PolicyBundle, PolicyError> {
        Self::from_archive_with(path.as_ref(), None)
    }

    /// [`PolicyBundle::from_archive`], pinned as
    /// [`PolicyBundle::from_files_pinned`] is.
    #[cfg(feature = "fs")]
    pub fn from_archive_pinned(
        path: impl AsRef<std::path::Path>,
        pin: &str,
    ) -> Result<PolicyBundle, PolicyError> {
        Self::from_archive_with(path.as_ref(), Some(pin))
    }

    #[cfg(feature = "fs")]
    fn from_archive_with(
        path: &std::path::Path,
        pin: Option<&str>,
    ) -> Result<PolicyBundle, PolicyError> {
        let bytes = crate::limits::read_regular_file(path, MAX_BUNDLE_BYTES, true)
            .map_err(|e| read_error(path.display().to_string(), &e, "archive"))?;
        Self::from_archive_bytes_with(&bytes, pin)
    }

    /// A bundle from a directory laid out as `opa build` expects it. Symbolic
    /// links are refused, not followed.
    #[cfg(feature = "fs")]
    pub fn from_dir(root: impl AsRef<std::path::Path>) -> Result<PolicyBundle, PolicyError> {
        Self::from_dir_with(root.as_ref(), None)
    }

    /// [`PolicyBundle::from_dir`], pinned as
    /// [`PolicyBundle::from_files_pinned`] is.
    #[cfg(feature = "fs")]
    pub fn from_dir_pinned(
        root: impl AsRef<std::path::Path>,
        pin: &str,
    ) -> Result<PolicyBundle, PolicyError> {
        Self::from_dir_with(root.as_ref(), Some(pin))
    }

    #[cfg(feature = "fs")]
    fn from_dir_with(
        root: &std::path::Path,
        pin: Option<&str>,
    ) -> Result<PolicyBundle, PolicyError> {
        let mut files = Vec::new();
        let mut total = 0u64;
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let entries = std::fs::read_dir(&dir).map_err(|e| io_error(&dir, &e))?;
            for entry in entries {
                let entry = entry.map_err(|e| io_error(&dir, &e))?;
                let p = entry.path();
                let meta = std::fs::symlink_metadata(&p).map_err(|e| io_error(&p, &e))?;
                let rel = p
                    .strip_prefix(root)
                    .map(|r| r.to_string_lossy().replace('\\', "/"))
                    .unwrap_or_default();
                if meta.file_type().is_symlink() {
                    return Err(PolicyError::InvalidBundle {
                        path: rel,
                        message: "symbolic links are not followed".into(),
                    });
                }
                if meta.is_dir() {
                    stack.push(p);
                    continue;
                }
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                let wanted = name.ends_with(".rego")
                    || name == "data.json"
                    || name == "data.yaml"
                    || name == "data.yml"
                    || name.ends_with(".wasm")
                    || rel == ".manifest";
                if !wanted {
                    continue;
                }
                // The entry is read from its handle, never through a link
                // or into a device swapped in since it was listed, and no
                // further than the bundle's remaining allowance.
                let left = MAX_BUNDLE_BYTES.saturating_sub(total);
                let bytes = crate::limits::read_regular_file(&p, left, false)
                    .map_err(|e| read_error(rel.clone(), &e, "bundle"))?;
                total = total.saturating_add(bytes.len() as u64);
                files.push((rel, bytes));
            }
        }
        files.sort();
        Self::from_files_with(files, pin)
    }

    /// Validate, compile and checksum.
    fn from_parts(
        modules: BTreeMap<String, String>,
        data: Value,
        manifest: Option<Value>,
    ) -> Result<PolicyBundle, PolicyError> {
        if modules.len() > MAX_MODULES {
            return Err(PolicyError::InvalidBundle {
                path: String::new(),
                message: format!("a bundle may hold at most {MAX_MODULES} modules"),
            });
        }
        if let Some((path, _)) = modules.iter().find(|(_, s)| s.len() > MAX_MODULE_BYTES) {
            return Err(PolicyError::InvalidBundle {
                path: path.clone(),
                message: format!("a module may hold at most {MAX_MODULE_BYTES} bytes"),
            });
        }
        if !modules.keys().any(|p| !is_test_module(p)) {
            return Err(PolicyError::InvalidBundle {
                path: String::new(),
                message: "the bundle has no policy module".into(),
            });
        }
        let checksum = jcs::hex(&sha256(&checksum_manifest(&modules, &data)?));
        let mut engine = build_engine(modules.iter().filter(|(p, _)| !is_test_module(p)), &data)?;
        // regorus checks types and functions only when a rule runs: run
        // every rule once, so that a broken rule fails the load, not a
        // later decision. (This also prepares the engine once for all the
        // clones that answer queries.)
        engine.set_input(regorus::Value::new_object());
        let before = engine.clone();
        if let Err(e) = engine.eval_modules(false) {
            let (module, line, message) = engine_error("", &e);
            if line.is_some() {
                return Err(PolicyError::Rule {
                    module,
                    line,
                    message,
                });
            }
            // A limit (time) is reported without a place: find the rule
            // behind it, one rule at a time.
            let mut sites = crate::policy::guard::rule_sites(before.clone().get_modules());
            sites.retain(|(p, _, _)| !p.contains("_test.") && !p.ends_with(".test"));
            for (path, module, line) in sites {
                let mut one = before.clone();
                if let Err(e) = one.eval_rule(path.clone()) {
                    let (m2, l2, msg) = engine_error("", &e);
                    return Err(PolicyError::Rule {
                        module: if l2.is_some() { m2 } else { module },
                        line: l2.or(Some(line)),
                        message: format!("{msg} (evaluating {path})"),
                    });
                }
            }
            return Err(PolicyError::Rule {
                module,
                line,
                message,
            });
        }
        // The VM compiler resolves every function statically: an unknown
        // one behind an input the probe did not reach fails here.
        let vm = compile_vm(&engine, &data)?.is_some();
        let decision_site = crate::policy::guard::rule_sites(engine.clone().get_modules())
            .into_iter()
            .find(|(p, _, _)| p == DECISION_RULE)
            .map(|(_, m, l)| (m, l));
        let native = (vm && super::embedded::is_default_policy(&modules))
            .then(|| crate::policy::native::NativeConfig::from_data(&data))
            .flatten()
            .map(std::sync::Arc::new);
        Ok(PolicyBundle {
            native,
            decision_site,
            modules,
            data,
            manifest,
            checksum,
            engine,
            vm,
            id: NEXT_BUNDLE_ID.fetch_add(1, Ordering::Relaxed),
        })
    }
}

/// A refused read of a bundle's file: past the size limit of `what`
/// (the archive, or the bundle's files together), or any other I/O error.
#[cfg(feature = "fs")]
fn read_error(path: String, e: &std::io::Error, what: &str) -> PolicyError {
    let message = if e.kind() == std::io::ErrorKind::FileTooLarge {
        format!("the {what} exceeds {MAX_BUNDLE_BYTES} bytes")
    } else {
        e.to_string()
    };
    PolicyError::InvalidBundle { path, message }
}

#[cfg(feature = "fs")]
fn io_error(path: &std::path::Path, e: &std::io::Error) -> PolicyError {
    PolicyError::InvalidBundle {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// `a/b/c.rego` from `./a//b/c.rego` or `/a/b/c.rego`; refuses `..`, `.`,
/// backslashes, NUL and empty paths.
fn normalize_path(raw: &str) -> Result<String, PolicyError> {
    let bad = |message: &str| PolicyError::InvalidBundle {
        path: raw.to_string(),
        message: message.to_string(),
    };
    if raw.len() > 4096 {
        return Err(bad("the path is longer than 4096 bytes"));
    }
    if raw.contains('\\') || raw.contains('\0') {
        return Err(bad("paths use '/' and contain no backslash or NUL"));
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(bad("paths may not contain '..'")),
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(bad("empty path"));
    }
    Ok(parts.join("/"))
}

/// Put `value` at the data path `dir` (`a/b` -> data.a.b), merging objects.
fn mount(data: &mut Value, dir: &str, value: Value) -> Result<(), String> {
    let mut at = data;
    for key in dir.split('/').filter(|k| !k.is_empty()) {
        let Value::Object(map) = at else {
            return Err(format!("data at {dir:?} conflicts with a value above it"));
        };
        at = map
            .entry(key.to_string())
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
    }
    merge(at, value, dir)
}

fn merge(into: &mut Value, value: Value, at: &str) -> Result<(), String> {
    match (into, value) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(&k) {
                    Some(existing) => merge(existing, v, &format!("{at}/{k}"))?,
                    None => {
                        a.insert(k, v);
                    }
                }
            }
            Ok(())
        }
        (slot, v) if slot.as_object().is_some_and(serde_json::Map::is_empty) => {
            *slot = v;
            Ok(())
        }
        _ => Err(format!("two data files set the value at {at:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalized_and_checked() {
        assert_eq!(normalize_path("/a//b/./c.rego").unwrap(), "a/b/c.rego");
        for bad in [
            "../x.rego",
            "a/../../x.rego",
            "",
            "/",
            "a\\b.rego",
            "a\0.rego",
        ] {
            assert!(normalize_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn data_files_mount_and_conflict() {
        let mut d = Value::Object(Default::default());
        mount(&mut d, "a/b", serde_json::json!({"x": 1})).unwrap();
        mount(&mut d, "a", serde_json::json!({"c": 2})).unwrap();
        assert_eq!(d, serde_json::json!({"a": {"b": {"x": 1}, "c": 2}}));
        assert!(mount(&mut d, "a/b", serde_json::json!({"x": 2})).is_err());
        assert!(mount(&mut d, "a/c/d", serde_json::json!({"y": 1})).is_err());
    }
}
