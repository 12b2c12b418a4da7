//! The default bundle's decision in Rust ([`EvalMode::Native`]).
//!
//! The shipped Rego (`smm-core/policies/default`) stays the source of
//! truth: its 77 tests run on it, and every bundle decides on regorus. This
//! is a second evaluator for that one policy, written rule by rule after
//! the Rego (each function below names the module it follows), for callers
//! who decide often and want a decision in microseconds rather than the
//! VM's ~90. It is offered only for a bundle whose policy modules are the
//! default's byte for byte and whose data is `{"smm": {"config": ...}}` of
//! the default's shape (any values: thresholds may be tuned); any other
//! bundle has no native form ([`PolicyBundle::has_native`]).
//!
//! "The same decisions" is held by construction where it can be and by a
//! test where it cannot: numbers follow regorus's arithmetic exactly
//! (integers exact, a float in an operation makes the result a float,
//! an integral float result within 2^53 becomes an integer again, a
//! non-finite result is an error, comparisons between integers and floats
//! are exact); RFC 3339 times are parsed by the same chrono function
//! regorus calls, so the same strings parse, to the same nanoseconds, and
//! the same ones fail (a validated input holds no time that fails, see
//! [`PolicyDocument::check`]); a float overflow is an error here when the
//! VM reaches the same operation (Rego evaluates lazily: a consent's
//! expiry is parsed only when a rule needs the valid consents).
//! `tests/policy_native.rs` decides thousands of random inputs on both and
//! requires identical decisions (or an error from both). An integer result
//! beyond i128 (regorus goes to big integers) is not modelled: that one
//! decision is made on the VM instead, and says so in its `engine`.
//!
//! [`EvalMode::Native`]: super::EvalMode::Native
//! [`PolicyBundle::has_native`]: super::PolicyBundle::has_native

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde_json::Value;

use super::input::{EngineTime, PolicyDocument, StepType, rfc3339_ns};
use crate::contract::{ConnectorStatus, ConsentType};

/// Name a native decision gives as its `engine`.
pub const NATIVE_ENGINE_NAME: &str = "smm-native";

/// Why a native decision stopped.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The VM fails here too (an unparsable or out-of-range time, a float
    /// overflow): the message says which.
    Error {
        /// The module whose rule fails.
        module: &'static str,
        /// What failed.
        message: String,
    },
    /// Outside what this evaluator models exactly (an integer beyond
    /// i128): decide on the VM.
    Fallback,
}

fn fail(module: &'static str, message: String) -> Stop {
    Stop::Error { module, message }
}

/// A Rego number as regorus computes with it: an exact integer (its
/// unsigned, signed and big integers, as far as i128 reaches) or a float.
///
/// (A struct rather than an enum: every byte is initialized, so nothing
/// the optimizer evaluates ahead of a branch reads a padding byte, which
/// valgrind would report.)
#[derive(Debug, Clone, Copy)]
pub(crate) struct Num {
    int: i128,
    float: f64,
    is_float: bool,
}

/// 2^53: integral float results up to this magnitude become integers.
const F64_SAFE_INTEGER: f64 = 9_007_199_254_740_992.0;

impl Num {
    const fn int(int: i128) -> Num {
        Num {
            int,
            float: 0.0,
            is_float: false,
        }
    }

    const fn flt(float: f64) -> Num {
        Num {
            int: 0,
            float,
            is_float: true,
        }
    }

    /// The number an input's `f64` becomes in the engine's input: its
    /// RFC 8785 text read back. An integral value is written as digits and
    /// read as an integer when it fits 64 bits; beyond 2^53 those digits
    /// are the shortest that round-trip, padded with zeros (2^64 - 2048 is
    /// written 18446744073709550000), so the integer is that text's, not
    /// the float's exact value. Anything else stays the float.
    fn of_input(x: f64) -> Num {
        if x.fract() != 0.0 || !x.is_finite() {
            return Num::flt(x);
        }
        if x.abs() <= F64_SAFE_INTEGER {
            return Num::int(x as i128);
        }
        let mut text = Vec::with_capacity(24);
        crate::jcs::write_es6_number(&mut text, x);
        let parsed = std::str::from_utf8(&text).ok().and_then(|t| {
            t.parse::<u64>()
                .map(i128::from)
                .or_else(|_| t.parse::<i64>().map(i128::from))
                .ok()
        });
        match parsed {
            Some(i) => Num::int(i),
            None => Num::flt(x),
        }
    }

    /// A JSON number of the bundle's data, as regorus reads it.
    fn of_json(n: &serde_json::Number) -> Option<Num> {
        if let Some(u) = n.as_u64() {
            Some(Num::int(i128::from(u)))
        } else if let Some(i) = n.as_i64() {
            Some(Num::int(i128::from(i)))
        } else {
            n.as_f64().filter(|f| f.is_finite()).map(Num::flt)
        }
    }

    fn lossy(self) -> f64 {
        if self.is_float {
            self.float
        } else {
            self.int as f64
        }
    }

    /// A float result: an error when not finite, an integer when integral
    /// within 2^53 (regorus's `normalize_float`).
    fn float_result(v: f64, module: &'static str, op: &str) -> Result<Num, Stop> {
        if !v.is_finite() {
            return Err(fail(module, format!("numeric overflow in {op}")));
        }
        if v.fract() == 0.0 && v.abs() <= F64_SAFE_INTEGER {
            Ok(Num::int(v as i128))
        } else {
            Ok(Num::flt(v))
        }
    }

    /// `self op rhs`: exact on two integers (beyond i128: [`Stop::Fallback`]),
    /// in floats when either is one.
    fn arith(
        self,
        rhs: Num,
        module: &'static str,
        op: &str,
        ints: fn(i128, i128) -> Option<i128>,
        floats: fn(f64, f64) -> f64,
    ) -> Result<Num, Stop> {
        if self.is_float || rhs.is_float {
            Num::float_result(floats(self.lossy(), rhs.lossy()), module, op)
        } else {
            ints(self.int, rhs.int).map(Num::int).ok_or(Stop::Fallback)
        }
    }

    fn add(self, rhs: Num, module: &'static str) -> Result<Num, Stop> {
        self.arith(rhs, module, "addition", i128::checked_add, |a, b| a + b)
    }

    fn sub(self, rhs: Num, module: &'static str) -> Result<Num, Stop> {
        self.arith(rhs, module, "subtraction", i128::checked_sub, |a, b| a - b)
    }

    fn mul(self, rhs: Num, module: &'static str) -> Result<Num, Stop> {
        self.arith(rhs, module, "multiplication", i128::checked_mul, |a, b| {
            a * b
        })
    }

    /// Exact comparison (an integer and a float compare as the numbers
    /// they are, not as rounded floats).
    fn cmp(self, rhs: Num) -> Ordering {
        match (self.is_float, rhs.is_float) {
            (false, false) => self.int.cmp(&rhs.int),
            // Finite floats (never NaN): -0 and +0 are equal.
            (true, true) => self
                .float
                .partial_cmp(&rhs.float)
                .unwrap_or(Ordering::Equal),
            (false, true) => int_float(self.int, rhs.float),
            (true, false) => int_float(rhs.int, self.float).reverse(),
        }
    }

    fn gt(self, rhs: Num) -> bool {
        self.cmp(rhs) == Ordering::Greater
    }
    fn ge(self, rhs: Num) -> bool {
        self.cmp(rhs) != Ordering::Less
    }
    fn lt(self, rhs: Num) -> bool {
        self.cmp(rhs) == Ordering::Less
    }
    fn le(self, rhs: Num) -> bool {
        self.cmp(rhs) != Ordering::Greater
    }
}

/// `i` against the finite float `f`, exactly.
fn int_float(i: i128, f: f64) -> Ordering {
    const TWO_127: f64 = 170_141_183_460_469_231_731_687_303_715_884_105_728.0;
    if f >= TWO_127 {
        return Ordering::Less;
    }
    if f < -TWO_127 {
        return Ordering::Greater;
    }
    let t = f.trunc();
    // |t| < 2^127: the cast is exact.
    match i.cmp(&(t as i128)) {
        Ordering::Equal => {
            if f > t {
                Ordering::Less
            } else if f < t {
                Ordering::Greater
            } else {
                Ordering::Equal
            }
        }
        o => o,
    }
}

/// `time.parse_rfc3339_ns`, as regorus computes it (the same chrono call).
/// A validated input's times all parse and fit ([`PolicyDocument::check`]),
/// so the errors here are for a document that skipped validation.
fn ns(text: &str, module: &'static str) -> Result<Num, Stop> {
    match rfc3339_ns(text) {
        Ok(n) => Ok(Num::int(i128::from(n))),
        Err(EngineTime::Unparsable(e)) => Err(fail(
            module,
            format!("time.parse_rfc3339_ns({text:?}): Failed to parse datetime: {e}"),
        )),
        Err(EngineTime::OutOfRange) => Err(fail(
            module,
            format!("time.parse_rfc3339_ns({text:?}): time outside of valid range"),
        )),
    }
}

/// `data.smm.config` of the default's shape.
#[derive(Debug, Clone)]
pub(crate) struct NativeConfig {
    consent_expiring_soon_days: Num,
    connector_stale_after_days: Num,
    runnable_lifecycles: Vec<String>,
    approaching_weekly_ratio: Num,
    approaching_hard_ratio: Num,
    high_cost_workflow_ratio: Num,
    min_citation_coverage: Num,
    max_duplication_risk: Num,
    forbidden_topics: Vec<String>,
    min_confidence: Num,
    quota_warn_ratio: Num,
    posts_per_hour_limits: BTreeMap<String, Num>,
}

/// The object `v` with exactly the keys `keys` (in any order).
fn exactly<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a serde_json::Map<String, Value>> {
    let o = v.as_object()?;
    (o.len() == keys.len() && keys.iter().all(|k| o.contains_key(*k))).then_some(o)
}

fn num(o: &serde_json::Map<String, Value>, key: &str) -> Option<Num> {
    Num::of_json(o.get(key)?.as_number()?)
}

fn strings(o: &serde_json::Map<String, Value>, key: &str) -> Option<Vec<String>> {
    o.get(key)?
        .as_array()?
        .iter()
        .map(|s| s.as_str().map(str::to_string))
        .collect()
}

impl NativeConfig {
    /// The config of a bundle's data, when the data is exactly
    /// `{"smm": {"config": ...}}` with every key of the default's config
    /// and values of its types.
    pub(crate) fn from_data(data: &Value) -> Option<NativeConfig> {
        let smm = exactly(data, &["smm"])?.get("smm")?;
        let cfg = exactly(smm, &["config"])?.get("config")?;
        let c = exactly(
            cfg,
            &[
                "consentExpiringSoonDays",
                "connectorStaleAfterDays",
                "runnableLifecycles",
                "budget",
                "content",
                "hallucination",
                "quota",
                "postsPerHourLimits",
            ],
        )?;
        let budget = exactly(
            c.get("budget")?,
            &[
                "approachingWeeklyRatio",
                "approachingHardRatio",
                "highCostWorkflowRatio",
            ],
        )?;
        let content = exactly(
            c.get("content")?,
            &[
                "minCitationCoverage",
                "maxDuplicationRisk",
                "forbiddenTopics",
            ],
        )?;
        let hallucination = exactly(c.get("hallucination")?, &["minConfidence"])?;
        let quota = exactly(c.get("quota")?, &["warnRatio"])?;
        let limits = c
            .get("postsPerHourLimits")?
            .as_object()?
            .iter()
            .map(|(k, v)| Some((k.clone(), Num::of_json(v.as_number()?)?)))
            .collect::<Option<BTreeMap<_, _>>>()?;
        Some(NativeConfig {
            consent_expiring_soon_days: num(c, "consentExpiringSoonDays")?,
            connector_stale_after_days: num(c, "connectorStaleAfterDays")?,
            runnable_lifecycles: strings(c, "runnableLifecycles")?,
            approaching_weekly_ratio: num(budget, "approachingWeeklyRatio")?,
            approaching_hard_ratio: num(budget, "approachingHardRatio")?,
            high_cost_workflow_ratio: num(budget, "highCostWorkflowRatio")?,
            min_citation_coverage: num(content, "minCitationCoverage")?,
            max_duplication_risk: num(content, "maxDuplicationRisk")?,
            forbidden_topics: strings(content, "forbiddenTopics")?,
            min_confidence: num(hallucination, "minConfidence")?,
            quota_warn_ratio: num(quota, "warnRatio")?,
            posts_per_hour_limits: limits,
        })
    }
}

/// What a decision's rules produced (codes in any order, repeated).
#[derive(Debug, Default)]
pub(crate) struct Codes {
    pub(crate) deny: Vec<String>,
    pub(crate) warnings: Vec<String>,
    pub(crate) reasons: Vec<String>,
    /// `approval_codes` (also reasons).
    pub(crate) approvals: Vec<String>,
}

/// `((24 * 60) * 60) * 1000000000`.
const DAY_NS: Num = Num::int(86_400_000_000_000);

/// `data.smm.lib`: what several modules read.
struct Lib<'a> {
    doc: &'a PolicyDocument,
    now: Num,
    /// `flags_set`, flag by flag.
    flags: Flags,
    /// `valid_consents`, computed when a rule first needs it (as Rego
    /// evaluates it: only then are the consents' expiries parsed).
    valid: Option<Vec<(ConsentType, Num, &'a str)>>,
}

#[derive(Default)]
struct Flags {
    voice: bool,
    ugc: bool,
    celebrity: bool,
    legal_claims: bool,
    personal_data: bool,
}

impl<'a> Lib<'a> {
    fn valid_consents(&mut self) -> Result<&[(ConsentType, Num, &'a str)], Stop> {
        if self.valid.is_none() {
            let mut v = Vec::new();
            for c in self.doc.workspace.consent_records.iter().flatten() {
                let expires = ns(&c.expires_at, "smm/lib.rego")?;
                if expires.gt(self.now) {
                    v.push((c.consent_type, expires, c.granted_by.as_str()));
                }
            }
            self.valid = Some(v);
        }
        Ok(self.valid.as_deref().unwrap_or_default())
    }

    fn valid_type(&mut self, t: ConsentType) -> Result<bool, Stop> {
        Ok(self.valid_consents()?.iter().any(|(ty, _, _)| *ty == t))
    }
}

/// The default bundle's `data.smm.decision` on `doc`.
pub(crate) fn decide(cfg: &NativeConfig, doc: &PolicyDocument) -> Result<Codes, Stop> {
    let mut flags = Flags::default();
    for s in &doc.workflow {
        let f = &s.flags;
        flags.voice |= f.uses_synthetic_voice;
        flags.ugc |= f.uses_ugc_content;
        flags.celebrity |= f.uses_celebrity_likeness;
        flags.legal_claims |= f.contains_legal_claims;
        flags.personal_data |= f.processes_personal_data;
    }
    let mut lib = Lib {
        doc,
        now: ns(&doc.timestamp, "smm/lib.rego")?,
        flags,
        valid: None,
    };
    let mut out = Codes::default();
    consent(cfg, &mut lib, &mut out)?;
    budget(cfg, doc, &mut out)?;
    connector(cfg, &lib, &mut out)?;
    security(&mut lib, &mut out)?;
    content(cfg, &lib, &mut out);
    hallucination(cfg, doc, &mut out);
    emergency(doc, &mut out);
    quota(cfg, doc, &mut out)?;
    lifecycle(cfg, &lib, &mut out)?;
    Ok(out)
}

fn code(prefix: &str, name: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + name.len());
    s.push_str(prefix);
    s.push_str(name);
    s
}

/// `smm/consent.rego`.
fn consent(cfg: &NativeConfig, lib: &mut Lib<'_>, out: &mut Codes) -> Result<(), Stop> {
    const M: &str = "smm/consent.rego";
    // kinds: (type, flag set?, missing, expired, expiring, validated).
    let kinds = [
        (
            ConsentType::VoiceLikeness,
            lib.flags.voice,
            "missing_voice_consent",
            "expired_voice_consent",
            "consent_expiring_soon",
            "voice_consent_validated",
        ),
        (
            ConsentType::UgcLicense,
            lib.flags.ugc,
            "missing_ugc_license",
            "expired_ugc_license",
            "ugc_consent_expiring_soon",
            "ugc_consent_validated",
        ),
        (
            ConsentType::CelebrityRelease,
            lib.flags.celebrity,
            "missing_celebrity_release",
            "expired_celebrity_release",
            "celebrity_release_expiring_soon",
            "celebrity_release_validated",
        ),
    ];
    let doc = lib.doc;
    let records = doc.workspace.consent_records.as_deref().unwrap_or_default();
    let mut expiring_before = None;
    for (t, required, missing, expired, expiring, validated) in kinds {
        if !required {
            continue;
        }
        if !records.iter().any(|c| c.consent_type == t) {
            out.deny.push(missing.into());
        } else if !lib.valid_type(t)? {
            out.deny.push(expired.into());
        }
        // latest_expiry[t] <= expiring_before (undefined without a valid
        // record of the type).
        let latest = lib
            .valid_consents()?
            .iter()
            .filter(|(ty, _, _)| *ty == t)
            .map(|(_, e, _)| *e)
            .max_by(|a, b| a.cmp(*b));
        if let Some(latest) = latest {
            let before = match expiring_before {
                Some(b) => b,
                None => {
                    let b = lib
                        .now
                        .add(cfg.consent_expiring_soon_days.mul(DAY_NS, M)?, M)?;
                    expiring_before = Some(b);
                    b
                }
            };
            if latest.le(before) {
                out.warnings.push(expiring.into());
            }
            out.reasons.push(validated.into());
        }
    }
    // invalid_consent_scope: a voice model outside every valid voice
    // consent's grantor.
    for s in &doc.workflow {
        let Some(model) = s.flags.voice_model.as_deref() else {
            continue;
        };
        if model.is_empty() {
            continue;
        }
        let covered = lib.valid_consents()?.iter().any(|(t, _, grantor)| {
            *t == ConsentType::VoiceLikeness
                && model
                    .strip_prefix(grantor)
                    .is_some_and(|rest| rest.starts_with('-'))
        });
        if !covered {
            out.deny.push("invalid_consent_scope".into());
        }
    }
    Ok(())
}

/// `smm/budget.rego`.
fn budget(cfg: &NativeConfig, doc: &PolicyDocument, out: &mut Codes) -> Result<(), Stop> {
    const M: &str = "smm/budget.rego";
    let b = &doc.workspace.budget;
    let weekly_cap = Num::of_input(b.weekly_cap);
    let hard_cap = Num::of_input(b.hard_cap);
    let mut cost = Num::int(0);
    for s in &doc.workflow {
        cost = cost.add(Num::of_input(s.estimated_cost), M)?;
    }
    let spend = &doc.current_spend;
    let weekly_after = Num::of_input(spend.this_week).add(cost, M)?;
    let hard_after = Num::of_input(spend.total).add(cost, M)?;
    let over = doc.workspace.emergency_flags.budget_override;
    let weekly_exceeded = weekly_after.gt(weekly_cap);
    let hard_exceeded = hard_after.gt(hard_cap);
    if weekly_exceeded && !over {
        out.deny.push("weekly_budget_exceeded".into());
    }
    if hard_exceeded && !over {
        out.deny.push("hard_budget_exceeded".into());
    }
    if over && (weekly_exceeded || hard_exceeded) {
        out.approvals.push("budget_override_in_use".into());
        out.warnings.push("budget_override_in_use".into());
    }
    let currency = b.currency.as_str();
    if doc
        .workflow
        .iter()
        .any(|s| s.currency.as_deref().is_some_and(|c| c != currency))
        || spend.currency != currency
    {
        out.deny.push("currency_mismatch".into());
    }
    let simulated = Num::of_input(doc.simulation.cost_estimate_usd);
    if simulated.gt(hard_cap) {
        out.deny.push("simulated_cost_exceeds_hard_cap".into());
    }
    if simulated.gt(weekly_cap) {
        out.warnings
            .push("simulated_cost_exceeds_weekly_cap".into());
    }
    let zero = Num::int(0);
    if weekly_cap.gt(zero)
        && !weekly_exceeded
        && weekly_after.ge(cfg.approaching_weekly_ratio.mul(weekly_cap, M)?)
    {
        out.warnings.push("approaching_weekly_limit".into());
    }
    if hard_cap.gt(zero)
        && !hard_exceeded
        && hard_after.ge(cfg.approaching_hard_ratio.mul(hard_cap, M)?)
    {
        out.warnings.push("approaching_hard_limit".into());
    }
    if cost.gt(cfg.high_cost_workflow_ratio.mul(weekly_cap, M)?) {
        out.warnings.push("high_cost_workflow".into());
    }
    if !weekly_exceeded {
        out.reasons.push("weekly_budget_within_limits".into());
    }
    if !hard_exceeded {
        out.reasons.push("hard_budget_within_limits".into());
    }
    Ok(())
}

/// `smm/connector.rego`.
fn connector(cfg: &NativeConfig, lib: &Lib<'_>, out: &mut Codes) -> Result<(), Stop> {
    const M: &str = "smm/connector.rego";
    let doc = lib.doc;
    let ws = &doc.workspace;
    let publish = || {
        doc.workflow
            .iter()
            .filter(|s| s.step_type == StepType::Publish)
    };
    let required = |p: &str| {
        ws.primary_channels.iter().any(|c| c.as_str() == p)
            || publish().any(|s| s.flags.channels.iter().any(|c| c.as_str() == p))
    };
    let connectors = ws.connectors.as_deref().unwrap_or_default();
    let before = out.deny.len();
    for ch in ws
        .primary_channels
        .iter()
        .chain(publish().flat_map(|s| s.flags.channels.iter()))
    {
        if !connectors.iter().any(|c| c.platform == *ch) {
            out.deny.push(code("missing_connector_", ch.as_str()));
        }
    }
    let mut stale_before = None;
    for c in connectors.iter().filter(|c| required(c.platform.as_str())) {
        let p = c.platform.as_str();
        match c.status {
            ConnectorStatus::Revoked => out.deny.push(code("connector_revoked_", p)),
            ConnectorStatus::Unconnected => out.deny.push(code("connector_unhealthy_", p)),
            ConnectorStatus::Degraded => out.warnings.push(code("connector_degraded_", p)),
            ConnectorStatus::Connected => {}
        }
        if matches!(
            c.status,
            ConnectorStatus::Connected | ConnectorStatus::Degraded
        ) {
            let last = ns(
                c.last_connected_at
                    .as_deref()
                    .unwrap_or("1970-01-01T00:00:00Z"),
                M,
            )?;
            let sb = match stale_before {
                Some(b) => b,
                None => {
                    let b = lib
                        .now
                        .sub(cfg.connector_stale_after_days.mul(DAY_NS, M)?, M)?;
                    stale_before = Some(b);
                    b
                }
            };
            if last.lt(sb) {
                out.warnings.push(code("stale_connection_", p));
            }
        }
    }
    for s in publish() {
        let rate = s.flags.posts_per_hour.map_or(Num::int(0), Num::of_input);
        for ch in &s.flags.channels {
            let limit = cfg
                .posts_per_hour_limits
                .get(ch.as_str())
                .copied()
                .unwrap_or(Num::int(10));
            if rate.gt(limit) {
                out.deny.push(code("post_rate_exceeds_limit_", ch.as_str()));
            }
        }
    }
    if out.deny.len() == before {
        out.reasons.push("all_required_connectors_available".into());
    }
    Ok(())
}

/// `smm/security.rego`.
fn security(lib: &mut Lib<'_>, out: &mut Codes) -> Result<(), Stop> {
    let steps = &lib.doc.workflow;
    let mut denied = false;
    if steps
        .iter()
        .any(|s| s.flags.includes_customer_data && s.flags.public_visibility)
    {
        out.deny.push("customer_data_public".into());
        denied = true;
    }
    if lib.flags.personal_data && !lib.valid_type(ConsentType::DataProcessing)? {
        out.deny.push("missing_data_processing_consent".into());
        denied = true;
    }
    if steps
        .iter()
        .any(|s| s.flags.calls_external_apis && !s.flags.api_calls_approved)
    {
        out.warnings.push("external_api_calls".into());
    }
    if !denied {
        out.reasons.push("data_handling_policies_followed".into());
    }
    Ok(())
}

/// `smm/content.rego`.
fn content(cfg: &NativeConfig, lib: &Lib<'_>, out: &mut Codes) {
    let doc = lib.doc;
    let sim = &doc.simulation;
    if Num::of_input(sim.citation_coverage).lt(cfg.min_citation_coverage) {
        out.deny.push("citation_coverage_below_minimum".into());
    } else {
        out.reasons.push("citation_coverage_sufficient".into());
    }
    if Num::of_input(sim.duplication_risk).gt(cfg.max_duplication_risk) {
        out.deny.push("duplication_risk_above_maximum".into());
    } else {
        out.reasons.push("duplication_risk_acceptable".into());
    }
    for s in &doc.workflow {
        for topic in &s.flags.content_topics {
            if cfg.forbidden_topics.iter().any(|t| t == topic) {
                out.deny.push(code("forbidden_topic_", topic));
            }
        }
    }
    let f = &lib.flags;
    if doc.workspace.approval_policy.legal_manual_approval
        && (f.voice || f.celebrity || f.legal_claims)
    {
        out.approvals.push("legal_review_required".into());
    }
}

/// `smm/hallucination.rego`.
fn hallucination(cfg: &NativeConfig, doc: &PolicyDocument, out: &mut Codes) {
    let Some(o) = &doc.agent_output else {
        return;
    };
    let low = Num::of_input(o.confidence_score).lt(cfg.min_confidence);
    let by_retrieval = o.verified && !o.citations.is_empty();
    if low && !by_retrieval {
        out.approvals.push("hallucination_low_confidence".into());
    }
    if low && !o.verified {
        out.reasons.push("hallucination_output_not_verified".into());
    }
    if low && o.verified && o.citations.is_empty() {
        out.reasons.push("hallucination_no_citations".into());
    }
    if by_retrieval {
        out.reasons
            .push("hallucination_verified_by_retrieval".into());
    }
    if !low {
        out.reasons
            .push("hallucination_confidence_sufficient".into());
    }
}

/// `smm/emergency.rego`.
fn emergency(doc: &PolicyDocument, out: &mut Codes) {
    let e = &doc.workspace.emergency_flags;
    if e.halted {
        out.deny.push("workspace_halted".into());
    }
    if e.human_approval_required {
        out.approvals
            .push("emergency_human_approval_required".into());
    }
}

/// `smm/quota.rego`.
fn quota(cfg: &NativeConfig, doc: &PolicyDocument, out: &mut Codes) -> Result<(), Stop> {
    let mut denied = false;
    for q in &doc.quotas {
        let (used, limit) = (Num::of_input(q.used), Num::of_input(q.limit));
        if used.ge(limit) {
            out.deny.push(code("quota_exhausted_", &q.kind));
            denied = true;
        } else if used.ge(cfg.quota_warn_ratio.mul(limit, "smm/quota.rego")?) {
            out.warnings.push(code("quota_approaching_", &q.kind));
        }
    }
    if !doc.quotas.is_empty() && !denied {
        out.reasons.push("quotas_within_limits".into());
    }
    Ok(())
}

/// `smm/lifecycle.rego`.
fn lifecycle(cfg: &NativeConfig, lib: &Lib<'_>, out: &mut Codes) -> Result<(), Stop> {
    const M: &str = "smm/lifecycle.rego";
    let ws = &lib.doc.workspace;
    let state = ws.lifecycle.as_str();
    if state == "paused" {
        out.deny.push("workspace_paused".into());
    } else if !cfg.runnable_lifecycles.iter().any(|s| s == state) {
        out.deny.push("lifecycle_not_runnable".into());
    }
    if let Some(from) = &ws.effective_from
        && ns(from, M)?.gt(lib.now)
    {
        out.deny.push("contract_not_yet_effective".into());
    }
    if let Some(to) = &ws.effective_to
        && ns(to, M)?.le(lib.now)
    {
        out.deny.push("contract_expired".into());
    }
    let ttl = Num::int(i128::from(ws.ttl_hours)).mul(Num::int(3_600_000_000_000), M)?;
    if ns(&ws.created_at, M)?.add(ttl, M)?.le(lib.now) {
        out.deny.push("workspace_expired".into());
    }
    Ok(())
}
