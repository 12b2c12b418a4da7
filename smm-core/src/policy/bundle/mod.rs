//! Policy bundles: loading (strings, directories, OPA bundle archives),
//! validation at load, the checksum, and evaluation on regorus's
//! interpreter or bytecode VM.

mod embedded;
mod eval;
mod load;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::AtomicU64;

use regorus::rvm::RegoVM;
use serde_json::Value;

use super::PolicyError;
use crate::jcs;
pub(crate) use eval::build_engine;

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
    /// The default bundle's rules written in Rust
    /// ([`PolicyBundle::has_native`]): the same decisions as the VM (a
    /// test holds it on thousands of random inputs) in a few
    /// microseconds, its `engine` `smm-native`. Only for a bundle whose
    /// modules are the default's; any other is
    /// [`PolicyError::NoDecision`].
    Native,
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
    /// The bundle's native form: its config, when its policy modules are
    /// the default bundle's and its data has the default's shape.
    native: Option<std::sync::Arc<crate::policy::native::NativeConfig>>,
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

impl PolicyBundle {
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

    /// True when the bundle can decide on [`EvalMode::Native`]: its policy
    /// modules are the default bundle's, byte for byte, and its data is
    /// `{"smm": {"config": ...}}` with the default config's keys and types
    /// (the values may differ).
    pub fn has_native(&self) -> bool {
        self.native.is_some()
    }
}
