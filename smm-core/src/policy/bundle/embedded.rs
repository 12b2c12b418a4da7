//! The default policy bundle, shipped inside the crate.

use std::sync::OnceLock;

use super::PolicyBundle;
use crate::policy::PolicyError;

/// The default bundle's files, shipped inside the crate.
const DEFAULT_FILES: &[(&str, &str)] = &[
    (
        ".manifest",
        include_str!("../../../policies/default/.manifest"),
    ),
    (
        "data.json",
        include_str!("../../../policies/default/data.json"),
    ),
    (
        "smm/lib.rego",
        include_str!("../../../policies/default/smm/lib.rego"),
    ),
    (
        "smm/consent.rego",
        include_str!("../../../policies/default/smm/consent.rego"),
    ),
    (
        "smm/budget.rego",
        include_str!("../../../policies/default/smm/budget.rego"),
    ),
    (
        "smm/connector.rego",
        include_str!("../../../policies/default/smm/connector.rego"),
    ),
    (
        "smm/security.rego",
        include_str!("../../../policies/default/smm/security.rego"),
    ),
    (
        "smm/content.rego",
        include_str!("../../../policies/default/smm/content.rego"),
    ),
    (
        "smm/hallucination.rego",
        include_str!("../../../policies/default/smm/hallucination.rego"),
    ),
    (
        "smm/emergency.rego",
        include_str!("../../../policies/default/smm/emergency.rego"),
    ),
    (
        "smm/quota.rego",
        include_str!("../../../policies/default/smm/quota.rego"),
    ),
    (
        "smm/lifecycle.rego",
        include_str!("../../../policies/default/smm/lifecycle.rego"),
    ),
    (
        "smm/decision.rego",
        include_str!("../../../policies/default/smm/decision.rego"),
    ),
    (
        "smm/fixtures_test.rego",
        include_str!("../../../policies/default/smm/fixtures_test.rego"),
    ),
    (
        "smm/consent_test.rego",
        include_str!("../../../policies/default/smm/consent_test.rego"),
    ),
    (
        "smm/budget_test.rego",
        include_str!("../../../policies/default/smm/budget_test.rego"),
    ),
    (
        "smm/connector_test.rego",
        include_str!("../../../policies/default/smm/connector_test.rego"),
    ),
    (
        "smm/security_test.rego",
        include_str!("../../../policies/default/smm/security_test.rego"),
    ),
    (
        "smm/content_test.rego",
        include_str!("../../../policies/default/smm/content_test.rego"),
    ),
    (
        "smm/hallucination_test.rego",
        include_str!("../../../policies/default/smm/hallucination_test.rego"),
    ),
    (
        "smm/emergency_test.rego",
        include_str!("../../../policies/default/smm/emergency_test.rego"),
    ),
    (
        "smm/quota_test.rego",
        include_str!("../../../policies/default/smm/quota_test.rego"),
    ),
    (
        "smm/lifecycle_test.rego",
        include_str!("../../../policies/default/smm/lifecycle_test.rego"),
    ),
    (
        "smm/decision_test.rego",
        include_str!("../../../policies/default/smm/decision_test.rego"),
    ),
];

/// True when `modules`' policy modules (tests aside) are the default
/// bundle's, path for path and byte for byte.
pub(super) fn is_default_policy(modules: &std::collections::BTreeMap<String, String>) -> bool {
    let mut default = DEFAULT_FILES
        .iter()
        .filter(|(p, _)| p.ends_with(".rego") && !super::is_test_module(p));
    let theirs = modules.iter().filter(|(p, _)| !super::is_test_module(p));
    default.clone().count() == theirs.clone().count()
        && default.all(|(p, src)| modules.get(*p).is_some_and(|s| s == src))
}

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
}
