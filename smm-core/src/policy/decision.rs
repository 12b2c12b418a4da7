//! A policy decision: what the bundle's `data.smm.decision` said, which
//! bundle and engine said it, and a deterministic evaluation id.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::PolicyError;
use super::bundle::DECISION_RULE;
use crate::jcs;

/// Name of the policy engine.
pub const ENGINE_NAME: &str = "regorus";
/// Version of regorus the library is built with (checked against
/// Cargo.lock by a test).
pub const REGORUS_VERSION: &str = "0.14.1";

/// The outcome of evaluating a policy bundle on one input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Decision {
    /// No policy denies.
    pub allow: bool,
    /// Codes of the denying rules, sorted.
    pub deny: Vec<String>,
    /// Codes of the warnings, sorted.
    pub warnings: Vec<String>,
    /// Codes of what was validated and of why a human must approve, sorted.
    pub reasons: Vec<String>,
    /// A human must approve before the campaign runs.
    pub require_human_approval: bool,
    /// Checksum of the bundle that decided (64 hex).
    #[schemars(pattern(r"^[a-f0-9]{64}$"))]
    pub bundle_checksum: String,
    /// The policy engine (`regorus`).
    pub engine: String,
    /// Its version.
    pub engine_version: String,
    /// `sha256:` of the bundle checksum and the canonical input (see
    /// [`evaluation_id`]): the same bundle on the same input always has the
    /// same id.
    #[schemars(pattern(r"^sha256:[a-f0-9]{64}$"))]
    pub evaluation_id: String,
    /// The input's timestamp: when the decision applies.
    #[schemars(extend("format" = "date-time"))]
    pub evaluated_at: String,
}

/// `"sha256:" + hex(SHA-256("smm-policy-evaluation/v1\n" + checksum + "\n" +
/// JCS(input)))`.
pub fn evaluation_id(bundle_checksum: &str, input: &Value) -> Result<String, PolicyError> {
    let canonical = jcs::canonicalize_value(input).map_err(|e| PolicyError::InvalidInput {
        pointer: e.pointer().unwrap_or("").to_string(),
        message: e.to_string(),
    })?;
    Ok(evaluation_id_of_canonical(bundle_checksum, &canonical))
}

/// [`evaluation_id`] of an input already in RFC 8785 form.
pub(crate) fn evaluation_id_of_canonical(bundle_checksum: &str, canonical: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"smm-policy-evaluation/v1\n");
    h.update(bundle_checksum.as_bytes());
    h.update(b"\n");
    h.update(canonical);
    format!("sha256:{}", jcs::hex(&h.finalize()))
}

impl Decision {
    /// Read the rule's value; it must have the documented shape.
    pub(crate) fn from_rule_value(
        value: Option<Value>,
        checksum: &str,
        input: &super::PolicyInput,
    ) -> Result<Decision, PolicyError> {
        let bad = |message: String| PolicyError::NoDecision {
            rule: DECISION_RULE.into(),
            message,
        };
        let value = value.ok_or_else(|| bad("it is undefined for this input".into()))?;
        let obj = value
            .as_object()
            .ok_or_else(|| bad(format!("it must be an object (got {value})")))?;
        let flag = |k: &str| -> Result<bool, PolicyError> {
            obj.get(k)
                .and_then(Value::as_bool)
                .ok_or_else(|| bad(format!("{k} must be true or false")))
        };
        let codes = |k: &str| -> Result<Vec<String>, PolicyError> {
            let mut v: Vec<String> = obj
                .get(k)
                .and_then(Value::as_array)
                .ok_or_else(|| bad(format!("{k} must be an array of strings")))?
                .iter()
                .map(|c| {
                    c.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| bad(format!("{k} must be an array of strings")))
                })
                .collect::<Result<_, _>>()?;
            v.sort();
            v.dedup();
            Ok(v)
        };
        let deny = codes("deny")?;
        let allow = flag("allow")?;
        if allow && !deny.is_empty() {
            return Err(bad("allow is true while deny is not empty".into()));
        }
        Ok(Decision {
            allow,
            deny,
            warnings: codes("warnings")?,
            reasons: codes("reasons")?,
            require_human_approval: flag("require_human_approval")?,
            bundle_checksum: checksum.to_string(),
            engine: ENGINE_NAME.into(),
            engine_version: REGORUS_VERSION.into(),
            evaluation_id: evaluation_id_of_canonical(checksum, input.canonical_json()),
            evaluated_at: input.document().timestamp.clone(),
        })
    }

    /// The decision of the native evaluator's codes (sorted and deduplicated
    /// here, as the Rego's sets are).
    pub(crate) fn from_native(
        codes: super::native::Codes,
        checksum: &str,
        input: &super::PolicyInput,
    ) -> Decision {
        let sorted = |mut v: Vec<String>| {
            v.sort_unstable();
            v.dedup();
            v
        };
        let require_human_approval = !codes.approvals.is_empty();
        let mut reasons = codes.reasons;
        reasons.extend(codes.approvals);
        let deny = sorted(codes.deny);
        Decision {
            allow: deny.is_empty(),
            deny,
            warnings: sorted(codes.warnings),
            reasons: sorted(reasons),
            require_human_approval,
            bundle_checksum: checksum.to_string(),
            engine: super::native::NATIVE_ENGINE_NAME.into(),
            engine_version: env!("CARGO_PKG_VERSION").into(),
            evaluation_id: evaluation_id_of_canonical(checksum, input.canonical_json()),
            evaluated_at: input.document().timestamp.clone(),
        }
    }

    /// Compact JSON.
    pub fn to_json(&self) -> Result<String, super::PolicyError> {
        crate::jcs::to_json_text(self, false)
            .map_err(|message| super::PolicyError::Internal { message })
    }

    /// Parse (and check) a decision serialized with [`Decision::to_json`].
    pub fn from_value(value: &Value) -> Result<Decision, PolicyError> {
        let d: Decision =
            serde_path_to_error::deserialize(value).map_err(|e| PolicyError::InvalidInput {
                pointer: crate::jcs::path_pointer(&e),
                message: e.inner().to_string(),
            })?;
        let hex64 =
            |s: &str| s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !hex64(&d.bundle_checksum) {
            return Err(PolicyError::InvalidInput {
                pointer: "/bundleChecksum".into(),
                message: "must be 64 lowercase hex".into(),
            });
        }
        if !d.evaluation_id.strip_prefix("sha256:").is_some_and(hex64) {
            return Err(PolicyError::InvalidInput {
                pointer: "/evaluationId".into(),
                message: "must be sha256: + 64 lowercase hex".into(),
            });
        }
        if d.allow && !d.deny.is_empty() {
            return Err(PolicyError::InvalidInput {
                pointer: "/allow".into(),
                message: "allow is true while deny is not empty".into(),
            });
        }
        Ok(d)
    }
}
