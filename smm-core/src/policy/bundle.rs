//! Policy bundles: loading (strings, directories, OPA bundle archives),
//! validation at load, the checksum, and evaluation on regorus's
//! interpreter or bytecode VM.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::{Program, RegoVM};
use serde::Deserialize;
use serde_json::Value;

use super::decision::Decision;
use super::input::PolicyInput;
use super::testing::{self, TestReport};
use super::{PolicyError, engine_error};
use crate::jcs;

/// Most modules a bundle may hold (tests included): the most sources a
/// regorus VM program can hold.
pub const MAX_MODULES: usize = crate::limits::MAX_POLICY_MODULES;
/// Longest one evaluation may run (the load's probe of every rule, a
/// decision, a query, the Rego tests), in wall-clock seconds: a bound for
/// hostile bundles, far above what any honest decision takes (the default
/// bundle decides a campaign of the largest size in milliseconds). It
/// decides only whether an answer is returned, never what it says.
pub const MAX_EVAL_SECONDS: u64 = crate::limits::MAX_POLICY_EVAL_SECONDS;
/// VM instructions a decision may run: this many, plus
/// [`DECISION_INSTRUCTIONS_PER_STEP`] per workflow step of its input.
pub const DECISION_INSTRUCTIONS_BASE: usize = crate::limits::MAX_DECISION_INSTRUCTIONS_BASE;
/// VM instructions a decision may run per workflow step of its input.
pub const DECISION_INSTRUCTIONS_PER_STEP: usize = crate::limits::MAX_DECISION_INSTRUCTIONS_PER_STEP;
/// Largest module, in bytes.
pub const MAX_MODULE_BYTES: usize = crate::limits::MAX_POLICY_MODULE_BYTES;
/// Largest bundle: the sum of its files, decompressed, in bytes (also the
/// cap on an archive's decompressed size: a guard against gzip bombs).
pub const MAX_BUNDLE_BYTES: u64 = crate::limits::MAX_POLICY_BUNDLE_BYTES;
/// The rule a bundle's decision is read from.
pub const DECISION_RULE: &str = "data.smm.decision";
/// The `policyBundleRef` of the default bundle.
pub const DEFAULT_BUNDLE_REF: &str = "smm/default-policies/v1";

/// Which regorus evaluator runs a query. Both give the same answers (a test
/// checks it on the default bundle); the VM is several times faster.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EvalMode {
    /// regorus's bytecode VM (RVM), compiled at load (the default).
    #[default]
    Vm,
    /// regorus's tree-walking interpreter.
    Interpreter,
}

/// A loaded, validated and compiled policy bundle. Cheap to clone; share it
/// across threads (`Send + Sync`) and evaluate from any of them.
#[derive(Clone)]
pub struct PolicyBundle {
    modules: BTreeMap<String, String>,
    data: Value,
    manifest: Option<Value>,
    checksum: String,
    /// Policy modules (tests excluded) and data, prepared, cloned per
    /// interpreter query.
    engine: regorus::Engine,
    /// The bundle defines [`DECISION_RULE`] (compiled for the VM).
    vm: bool,
    /// Identity of this compiled bundle (clones share it): the key of the
    /// per-thread VMs.
    id: u64,
    /// Where [`DECISION_RULE`] is defined (module, line): the place named
    /// by a decision error the engine reports without one (a limit).
    decision_site: Option<(String, u32)>,
}

/// Bundles compiled so far (the source of [`PolicyBundle`] ids).
static NEXT_BUNDLE_ID: AtomicU64 = AtomicU64::new(1);
/// VMs kept per thread (one per recently used bundle).
const VMS_PER_THREAD: usize = 4;

thread_local! {
    /// Each thread's VMs, with their own program and data: values shared
    /// across threads are reference-counted atomically, and two cores
    /// bumping the same counters ran slower than one.
    static VMS: RefCell<Vec<(u64, RegoVM)>> = const { RefCell::new(Vec::new()) };
}

impl fmt::Debug for PolicyBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyBundle")
            .field("checksum", &self.checksum)
            .field("modules", &self.modules.keys().collect::<Vec<_>>())
            .field("vm", &self.vm)
            .finish_non_exhaustive()
    }
}

/// True for Rego test modules (`*_test.rego`): they are loaded for
/// [`PolicyBundle::test`] only, never for decisions, and are not part of
/// the checksum.
pub fn is_test_module(path: &str) -> bool {
    path.ends_with("_test.rego")
}

/// The canonical manifest whose SHA-256 is the bundle checksum:
///
/// ```json
/// {"data": <the bundle's data>,
///  "format": "smm-policy-bundle/v1",
///  "modules": [{"path": "smm/budget.rego", "sha256": "<hex of the module's bytes>"}, ...]}
/// ```
///
/// in its RFC 8785 form, with modules sorted by path and test modules
/// (`*_test.rego`) left out. So the checksum does not depend on file order,
/// on whitespace or key order in data files, or on the tests; it changes
/// with any byte of a policy module and any value of the data.
pub fn checksum_manifest(
    modules: &BTreeMap<String, String>,
    data: &Value,
) -> Result<Vec<u8>, PolicyError> {
    let list: Vec<Value> = modules
        .iter()
        .filter(|(p, _)| !is_test_module(p))
        .map(|(p, src)| serde_json::json!({"path": p, "sha256": jcs::hex(&sha256(src.as_bytes()))}))
        .collect();
    let manifest = serde_json::json!({
        "format": "smm-policy-bundle/v1",
        "modules": list,
        "data": data,
    });
    jcs::canonicalize_value(&manifest).map_err(|e| PolicyError::InvalidBundle {
        path: "data".into(),
        message: e.to_string(),
    })
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).into()
}

/// The default bundle's files, shipped inside the crate.
const DEFAULT_FILES: &[(&str, &str)] = &[
    (
        ".manifest",
        include_str!("../../policies/default/.manifest"),
    ),
    (
        "data.json",
        include_str!("../../policies/default/data.json"),
    ),
    (
        "smm/lib.rego",
        include_str!("../../policies/default/smm/lib.rego"),
    ),
    (
        "smm/consent.rego",
        include_str!("../../policies/default/smm/consent.rego"),
    ),
    (
        "smm/budget.rego",
        include_str!("../../policies/default/smm/budget.rego"),
    ),
    (
        "smm/connector.rego",
        include_str!("../../policies/default/smm/connector.rego"),
    ),
    (
        "smm/security.rego",
        include_str!("../../policies/default/smm/security.rego"),
    ),
    (
        "smm/content.rego",
        include_str!("../../policies/default/smm/content.rego"),
    ),
    (
        "smm/hallucination.rego",
        include_str!("../../policies/default/smm/hallucination.rego"),
    ),
    (
        "smm/emergency.rego",
        include_str!("../../policies/default/smm/emergency.rego"),
    ),
    (
        "smm/quota.rego",
        include_str!("../../policies/default/smm/quota.rego"),
    ),
    (
        "smm/lifecycle.rego",
        include_str!("../../policies/default/smm/lifecycle.rego"),
    ),
    (
        "smm/decision.rego",
        include_str!("../../policies/default/smm/decision.rego"),
    ),
    (
        "smm/fixtures_test.rego",
        include_str!("../../policies/default/smm/fixtures_test.rego"),
    ),
    (
        "smm/consent_test.rego",
        include_str!("../../policies/default/smm/consent_test.rego"),
    ),
    (
        "smm/budget_test.rego",
        include_str!("../../policies/default/smm/budget_test.rego"),
    ),
    (
        "smm/connector_test.rego",
        include_str!("../../policies/default/smm/connector_test.rego"),
    ),
    (
        "smm/security_test.rego",
        include_str!("../../policies/default/smm/security_test.rego"),
    ),
    (
        "smm/content_test.rego",
        include_str!("../../policies/default/smm/content_test.rego"),
    ),
    (
        "smm/hallucination_test.rego",
        include_str!("../../policies/default/smm/hallucination_test.rego"),
    ),
    (
        "smm/emergency_test.rego",
        include_str!("../../policies/default/smm/emergency_test.rego"),
    ),
    (
        "smm/quota_test.rego",
        include_str!("../../policies/default/smm/quota_test.rego"),
    ),
    (
        "smm/lifecycle_test.rego",
        include_str!("../../policies/default/smm/lifecycle_test.rego"),
    ),
    (
        "smm/decision_test.rego",
        include_str!("../../policies/default/smm/decision_test.rego"),
    ),
];

impl PolicyBundle {
    /// The default bundle shipped in this crate (`policies/default`),
    /// loaded and compiled once per process, then cloned.
    pub fn default_bundle() -> Result<PolicyBundle, PolicyError> {
        static DEFAULT: OnceLock<Result<PolicyBundle, PolicyError>> = OnceLock::new();
        DEFAULT
            .get_or_init(|| {
                PolicyBundle::from_files(
                    DEFAULT_FILES
                        .iter()
                        .map(|(p, s)| ((*p).to_string(), s.as_bytes().to_vec())),
                )
            })
            .clone()
    }

    /// The default bundle's files (path, content), as `opa build` would
    /// package them.
    pub fn default_files() -> impl Iterator<Item = (&'static str, &'static str)> {
        DEFAULT_FILES.iter().copied()
    }

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
        let meta = std::fs::metadata(path).map_err(|e| io_error(path, &e))?;
        if meta.len() > MAX_BUNDLE_BYTES {
            return Err(PolicyError::InvalidBundle {
                path: path.display().to_string(),
                message: format!("the archive exceeds {MAX_BUNDLE_BYTES} bytes"),
            });
        }
        if !meta.is_file() {
            return Err(PolicyError::InvalidBundle {
                path: path.display().to_string(),
                message: "not a regular file (a FIFO, socket or device is refused)".into(),
            });
        }
        let bytes = std::fs::read(path).map_err(|e| io_error(path, &e))?;
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
                if !meta.is_file() {
                    // A FIFO or a device would block or never end.
                    return Err(PolicyError::InvalidBundle {
                        path: rel,
                        message: "not a regular file (a FIFO, socket or device is refused)".into(),
                    });
                }
                total = total.saturating_add(meta.len());
                if total > MAX_BUNDLE_BYTES {
                    return Err(PolicyError::InvalidBundle {
                        path: rel,
                        message: format!("the bundle exceeds {MAX_BUNDLE_BYTES} bytes"),
                    });
                }
                let bytes = std::fs::read(&p).map_err(|e| io_error(&p, &e))?;
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
            let mut sites = super::guard::rule_sites(before.clone().get_modules());
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
        let decision_site = super::guard::rule_sites(engine.clone().get_modules())
            .into_iter()
            .find(|(p, _, _)| p == DECISION_RULE)
            .map(|(_, m, l)| (m, l));
        Ok(PolicyBundle {
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

    /// 64 lowercase hex: the SHA-256 of [`checksum_manifest`]. This is a
    /// contract's `policyBundleChecksum`.
    pub fn checksum(&self) -> &str {
        &self.checksum
    }

    /// Every module (path -> source), tests included.
    pub fn modules(&self) -> &BTreeMap<String, String> {
        &self.modules
    }

    /// The bundle's data document.
    pub fn data(&self) -> &Value {
        &self.data
    }

    /// The `.manifest` of an OPA bundle, when there was one.
    pub fn manifest(&self) -> Option<&Value> {
        self.manifest.as_ref()
    }

    /// True when the bundle defines [`DECISION_RULE`] (compiled for the VM).
    pub fn has_decision(&self) -> bool {
        self.vm
    }

    /// Validate `input` and evaluate [`DECISION_RULE`] on the VM.
    pub fn evaluate(&self, input: &PolicyInput) -> Result<Decision, PolicyError> {
        self.evaluate_with(input, EvalMode::Vm)
    }

    /// [`PolicyBundle::evaluate`] on the chosen evaluator.
    pub fn evaluate_with(
        &self,
        input: &PolicyInput,
        mode: EvalMode,
    ) -> Result<Decision, PolicyError> {
        if !self.vm {
            return Err(PolicyError::NoDecision {
                rule: DECISION_RULE.into(),
                message: "the bundle does not define it".into(),
            });
        }
        let value = input.engine_value().clone();
        let result = match mode {
            EvalMode::Vm => self.run_vm(value)?,
            EvalMode::Interpreter => self.run_interpreter(DECISION_RULE, value)?,
        };
        Decision::from_rule_value(to_json(DECISION_RULE, result)?, &self.checksum, input)
    }

    /// Evaluate any rule path (`data.pkg.rule`) on any JSON input (on the
    /// interpreter; the decision on the VM); `None` when the rule is
    /// undefined for it. Errors at evaluation (a builtin on a wrong type, a
    /// conflict) are errors.
    pub fn query(&self, rule_path: &str, input: &Value) -> Result<Option<Value>, PolicyError> {
        let value = regorus::Value::deserialize(input).map_err(|e| PolicyError::InvalidInput {
            pointer: String::new(),
            message: e.to_string(),
        })?;
        let result = if rule_path == DECISION_RULE && self.vm {
            self.run_vm(value)?
        } else {
            self.run_interpreter(rule_path, value)?
        };
        to_json(rule_path, result)
    }

    fn run_interpreter(
        &self,
        rule_path: &str,
        input: regorus::Value,
    ) -> Result<regorus::Value, PolicyError> {
        let mut engine = self.engine.clone();
        engine.set_input(input);
        engine
            .eval_rule(rule_path.to_string())
            .map_err(|e| eval_error(&e))
    }

    /// Run [`DECISION_RULE`] on this thread's VM for this bundle (made on
    /// first use, with its own program and data).
    fn run_vm(&self, input: regorus::Value) -> Result<regorus::Value, PolicyError> {
        VMS.with(|cell| {
            let mut vms = cell.try_borrow_mut().map_err(|_| PolicyError::NoDecision {
                rule: DECISION_RULE.into(),
                message: "re-entrant evaluation on one thread".into(),
            })?;
            let slot = match vms.iter().position(|(id, _)| *id == self.id) {
                Some(i) => i,
                None => {
                    let (program, data) =
                        compile_vm(&self.engine, &self.data)?.ok_or_else(|| {
                            PolicyError::NoDecision {
                                rule: DECISION_RULE.into(),
                                message: "the bundle does not define it".into(),
                            }
                        })?;
                    let mut vm = RegoVM::new();
                    vm.set_strict_builtin_errors(true);
                    vm.set_execution_timer_config(Some(eval_timer()));
                    vm.load_program(program);
                    vm.set_data(data).map_err(|e| eval_error(&e))?;
                    if vms.len() >= VMS_PER_THREAD {
                        vms.remove(0);
                    }
                    vms.push((self.id, vm));
                    vms.len() - 1
                }
            };
            let Some((_, vm)) = vms.get_mut(slot) else {
                return Err(PolicyError::NoDecision {
                    rule: DECISION_RULE.into(),
                    message: "internal: lost the thread's VM".into(),
                });
            };
            let limit = instruction_limit(&input);
            vm.set_max_instructions(limit);
            vm.set_input(input);
            let out = vm.execute_entry_point_by_name(DECISION_RULE);
            if out.is_err() {
                // Do not reuse a VM whose run failed half-way.
                vms.remove(slot);
            }
            out.map_err(|e| match eval_error(&e) {
                PolicyError::Rule {
                    line: None,
                    message,
                    ..
                } => {
                    let (module, line) = self.decision_site.clone().unzip();
                    PolicyError::Rule {
                        module: module.unwrap_or_default(),
                        line,
                        message: format!(
                            "{message} (evaluating {DECISION_RULE}; at most {limit} instructions, {MAX_EVAL_SECONDS} s)"
                        ),
                    }
                }
                other => other,
            })
        })
    }

    /// Run the bundle's Rego unit tests (`test_*` rules in any module, with
    /// OPA `opa test` semantics) with rule coverage of the policy modules.
    pub fn test(&self) -> Result<TestReport, PolicyError> {
        testing::run(&self.modules, &self.data)
    }
}

fn to_json(rule_path: &str, result: regorus::Value) -> Result<Option<Value>, PolicyError> {
    if result == regorus::Value::Undefined {
        return Ok(None);
    }
    serde_json::to_value(&result)
        .map(Some)
        .map_err(|e| PolicyError::NoDecision {
            rule: rule_path.into(),
            message: format!("the result is not JSON: {e}"),
        })
}

fn eval_error(e: &dyn fmt::Display) -> PolicyError {
    let (module, line, message) = engine_error("", e);
    PolicyError::Rule {
        module,
        line,
        message,
    }
}

#[cfg(feature = "fs")]
fn io_error(path: &std::path::Path, e: &std::io::Error) -> PolicyError {
    PolicyError::InvalidBundle {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// The time bound of one evaluation ([`MAX_EVAL_SECONDS`]).
pub(crate) fn eval_timer() -> regorus::utils::limits::ExecutionTimerConfig {
    regorus::utils::limits::ExecutionTimerConfig {
        limit: std::time::Duration::from_secs(MAX_EVAL_SECONDS),
        check_interval: std::num::NonZeroU32::MIN.saturating_add(63),
    }
}

/// The VM instructions a decision on `input` may run.
fn instruction_limit(input: &regorus::Value) -> usize {
    let steps = match &input["workflow"] {
        regorus::Value::Array(a) => a.len(),
        _ => 0,
    };
    DECISION_INSTRUCTIONS_BASE.saturating_add(DECISION_INSTRUCTIONS_PER_STEP.saturating_mul(steps))
}

/// An engine holding `modules` and `data`, strict about builtin errors,
/// bounded in time. Each module's nesting is checked before it is parsed,
/// and the bundle's functions for recursion before anything runs.
pub(crate) fn build_engine<'a>(
    modules: impl Iterator<Item = (&'a String, &'a String)>,
    data: &Value,
) -> Result<regorus::Engine, PolicyError> {
    let mut engine = regorus::Engine::new();
    engine.set_strict_builtin_errors(true);
    engine.set_execution_timer_config(eval_timer());
    for (path, src) in modules {
        super::guard::check_nesting(path, src)?;
        engine.add_policy(path.clone(), src.clone()).map_err(|e| {
            let (module, line, message) = engine_error(path, &e);
            PolicyError::Compile {
                module,
                line,
                message,
            }
        })?;
    }
    super::guard::check_recursion(engine.get_modules())?;
    engine
        .add_data(regorus::Value::from(data.clone()))
        .map_err(|e| PolicyError::InvalidBundle {
            path: "data".into(),
            message: e.to_string(),
        })?;
    Ok(engine)
}

/// Compile [`DECISION_RULE`] for the VM when the bundle defines it.
fn compile_vm(
    engine: &regorus::Engine,
    data: &Value,
) -> Result<Option<(Arc<Program>, regorus::Value)>, PolicyError> {
    let mut e = engine.clone();
    let Ok(policy) = e.compile_with_entrypoint(&regorus::Rc::from(DECISION_RULE)) else {
        return Ok(None);
    };
    if !policy.get_rules().contains_key(DECISION_RULE) {
        return Ok(None);
    }
    let program = Compiler::compile_from_policy(&policy, &[DECISION_RULE]).map_err(|e| {
        let (module, line, message) = engine_error("", &e);
        PolicyError::Compile {
            module,
            line,
            message,
        }
    })?;
    // A deep copy of the data for this program's user (see VMS).
    let data = regorus::Value::deserialize(data).map_err(|e| PolicyError::InvalidBundle {
        path: "data".into(),
        message: e.to_string(),
    })?;
    Ok(Some((program, data)))
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
