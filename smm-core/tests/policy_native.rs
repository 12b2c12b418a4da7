//! The native evaluator of the default bundle against regorus's VM: the
//! same decision on every input (or an error from both), on thousands of
//! random inputs built field by field around the thresholds, times and
//! numbers where the two could part (exact boundaries, 2^53, 2^64, floats
//! that overflow, times chrono cannot hold, leap seconds, offsets).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code"
)]

use serde_json::{Value, json};
use smm_core::policy::{
    Decision, EvalMode, NATIVE_ENGINE_NAME, PolicyBundle, PolicyError, PolicyInput,
};

fn example_input_value() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/policy-input.icblabs.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The default bundle's data.json.
fn default_data() -> Value {
    let (_, text) = PolicyBundle::default_files()
        .find(|(p, _)| *p == "data.json")
        .unwrap();
    serde_json::from_str(text).unwrap()
}

/// The default bundle's modules, tests included.
fn default_modules() -> Vec<(String, String)> {
    PolicyBundle::default_files()
        .filter(|(p, _)| p.ends_with(".rego"))
        .map(|(p, s)| (p.to_string(), s.to_string()))
        .collect()
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }
    fn pick<T: Clone>(&mut self, from: &[T]) -> T {
        from[self.below(from.len())].clone()
    }
    fn subset<T: Clone>(&mut self, from: &[T]) -> Vec<T> {
        from.iter().filter(|_| self.coin()).cloned().collect()
    }
}

/// Times at the example's boundaries (effective window, time to live,
/// consent expiry and its warning window, connector staleness), and times
/// chrono parses differently or not at all.
const TIMES: &[&str] = &[
    "2025-09-01T12:00:00Z",
    "2025-08-24T11:00:00Z",
    "2025-08-24T10:59:59.999999999Z",
    "2026-02-24T11:00:00Z",
    "2025-09-23T10:00:00Z",
    "2025-09-23T09:59:59Z",
    "2026-07-25T10:15:00Z",
    "2026-08-24T10:15:00Z",
    "2025-08-31T09:45:00Z",
    "2025-08-31T09:44:59.5Z",
    "2025-12-31T23:59:60Z",
    "2025-09-01T12:00:00.1234567891234Z",
    "2025-09-01T14:00:00+02:00",
    "2025-09-01T07:00:00-05:00",
    "2025-09-01t12:00:00z",
    "1970-01-01T00:00:00Z",
    "1677-09-21T00:12:43.145224192Z",
    "2262-04-11T23:47:16.854775807Z",
];

/// Times the engine cannot read (refused at validation, naming the field).
const BAD_TIMES: &[&str] = &[
    "2300-01-01T00:00:00Z",
    "1600-01-01T00:00:00Z",
    "2262-04-11T23:47:16.854775808Z",
    "2999-01-01T00:00:00Z",
];

fn time(r: &mut Rng) -> Value {
    if r.below(40) == 0 {
        json!(r.pick(BAD_TIMES))
    } else {
        json!(r.pick(TIMES))
    }
}

/// Amounts at the example's thresholds and where integer and float
/// arithmetic part.
fn amount(r: &mut Rng) -> Value {
    let pool = [
        json!(0),
        json!(0.5),
        json!(1),
        json!(10),
        json!(11),
        json!(40),
        json!(100),
        json!(300),
        json!(299.99999999999994),
        json!(660),
        json!(900),
        json!(960),
        json!(1200),
        json!(1200.0000000000002),
        json!(1272.812504018946),
        json!(4500),
        json!(5000),
        json!(9007199254740992u64),
        json!(9007199254740994u64),
        json!(18446744073709549568u64),
        json!(12345678901234567168u64),
        json!(1e20),
        json!(1e21),
        json!(1e300),
        json!(1.7e308),
    ];
    r.pick(&pool)
}

fn ratio(r: &mut Rng) -> Value {
    let pool = [
        json!(0),
        json!(0.1),
        json!(0.19400627039051477),
        json!(0.25),
        json!(0.2500000000000001),
        json!(0.5),
        json!(0.7),
        json!(0.72),
        json!(0.7199999999999999),
        json!(0.7582142915637412),
        json!(0.85),
        json!(0.8499999999999999),
        json!(0.91),
        json!(1),
    ];
    r.pick(&pool)
}

const PLATFORMS: &[&str] = &[
    "linkedin",
    "x",
    "instagram",
    "facebook",
    "youtube",
    "tiktok",
];
const CONSENTS: &[&str] = &[
    "voice_likeness",
    "ugc_license",
    "celebrity_release",
    "data_processing",
    "marketing_use",
];
const GRANTORS: &[&str] = &["user:alice@icblabs.com", "user-9", "bob", "bo"];

fn random_input(r: &mut Rng, base: &Value) -> Value {
    let mut v = base.clone();
    v["timestamp"] = time(r);
    let ws = &mut v["workspace"];
    ws["lifecycle"] = json!(r.pick(&[
        "draft",
        "validated",
        "signed",
        "provisioning",
        "active",
        "paused",
        "decommissioned"
    ]));
    ws["createdAt"] = time(r);
    for key in ["effectiveFrom", "effectiveTo"] {
        if r.below(4) == 0 {
            ws.as_object_mut().unwrap().remove(key);
        } else if r.coin() {
            ws[key] = time(r);
        }
    }
    ws["ttlHours"] = json!(r.pick(&[1u64, 24, 720, 100_000, 9_007_199_254_740_992]));
    ws["primaryChannels"] = json!(r.subset(PLATFORMS));
    let template = ws["consentRecords"][0].clone();
    let consents: Vec<Value> = (0..r.below(5))
        .map(|i| {
            let mut c = template.clone();
            c["consentId"] = json!(format!("consent-{i}"));
            c["type"] = json!(r.pick(CONSENTS));
            c["grantedBy"] = json!(r.pick(GRANTORS));
            c["expiresAt"] = if r.below(4) == 0 {
                time(r)
            } else {
                json!(r.pick(&[
                    "2026-08-24T10:15:00Z",
                    "2025-09-30T00:00:00Z",
                    "2025-09-01T12:00:00Z",
                    "2025-08-01T00:00:00Z",
                    "2025-10-01T12:00:00.5+03:00",
                ]))
            };
            c
        })
        .collect();
    if r.below(6) == 0 {
        ws.as_object_mut().unwrap().remove("consentRecords");
    } else {
        ws["consentRecords"] = json!(consents);
    }
    let template = ws["connectors"][0].clone();
    let connectors: Vec<Value> = (0..r.below(5))
        .map(|i| {
            let mut c = template.clone();
            c["connectorId"] = json!(format!("conn-{i}"));
            c["platform"] = json!(r.pick(PLATFORMS));
            c["status"] = json!(r.pick(&["connected", "degraded", "revoked", "unconnected"]));
            if r.below(4) == 0 {
                c.as_object_mut().unwrap().remove("lastConnectedAt");
            } else {
                c["lastConnectedAt"] = time(r);
            }
            c
        })
        .collect();
    if r.below(6) == 0 {
        ws.as_object_mut().unwrap().remove("connectors");
    } else {
        ws["connectors"] = json!(connectors);
    }
    ws["budget"]["weeklyCap"] = amount(r);
    ws["budget"]["hardCap"] = amount(r);
    ws["budget"]["currency"] = json!(r.pick(&["USD", "USD", "EUR"]));
    for flag in ["halted", "budgetOverride", "humanApprovalRequired"] {
        ws["emergencyFlags"][flag] = json!(r.below(4) == 0);
    }
    ws["approvalPolicy"]["legalManualApproval"] = json!(r.coin());

    let steps: Vec<Value> = (0..r.below(6))
        .map(|_| {
            let mut s = json!({
                "type": r.pick(&["research", "creative", "publish", "publish", "legal", "render"]),
                "estimatedCost": amount(r),
            });
            if r.below(3) > 0 {
                s["currency"] = json!(r.pick(&["USD", "USD", "EUR"]));
            }
            let mut flags = serde_json::Map::new();
            for name in [
                "usesSyntheticVoice",
                "usesUgcContent",
                "usesCelebrityLikeness",
                "containsLegalClaims",
                "publicVisibility",
                "includesCustomerData",
                "processesPersonalData",
                "callsExternalApis",
                "apiCallsApproved",
            ] {
                if r.below(4) == 0 {
                    flags.insert(name.into(), json!(r.coin()));
                }
            }
            if r.below(3) == 0 {
                flags.insert(
                    "voiceModel".into(),
                    json!(r.pick(&[
                        "",
                        "user:alice@icblabs.com-voice-v1",
                        "user-9-x",
                        "user-9",
                        "bob-",
                        "bo-b",
                        "user-9-"
                    ])),
                );
            }
            if r.coin() {
                flags.insert("channels".into(), json!(r.subset(PLATFORMS)));
            }
            if r.coin() {
                let rate = r.pick(&[
                    json!(0),
                    json!(2),
                    json!(5),
                    json!(5.000000000000001),
                    json!(10),
                    json!(11),
                    json!(300),
                    json!(301),
                    json!(1e300),
                ]);
                flags.insert("postsPerHour".into(), rate);
            }
            if r.below(3) == 0 {
                flags.insert(
                    "contentTopics".into(),
                    json!(r.subset(&["gambling", "product_launch", "violence", "Gambling"])),
                );
            }
            s["flags"] = Value::Object(flags);
            s
        })
        .collect();
    v["workflow"] = json!(steps);
    v["currentSpend"]["thisWeek"] = amount(r);
    v["currentSpend"]["total"] = amount(r);
    v["currentSpend"]["currency"] = json!(r.pick(&["USD", "USD", "EUR"]));
    v["simulation"]["citationCoverage"] = ratio(r);
    v["simulation"]["duplicationRisk"] = ratio(r);
    v["simulation"]["costEstimateUSD"] = amount(r);
    match r.below(4) {
        0 => {
            v.as_object_mut().unwrap().remove("agentOutput");
        }
        _ => {
            v["agentOutput"] = json!({
                "confidenceScore": ratio(r),
                "verified": r.coin(),
                "citations": if r.coin() { json!([]) } else { json!(["https://example.com/a"]) },
            });
        }
    }
    let quotas: Vec<Value> = (0..r.below(4))
        .map(|_| {
            json!({
                "kind": r.pick(&["tokens", "cost_usd", "images"]),
                "period": r.pick(&["day", "month", "total"]),
                "limit": amount(r),
                "used": amount(r),
            })
        })
        .collect();
    v["quotas"] = json!(quotas);
    v
}

/// The decision without the engine that made it.
fn outcome(d: &Decision) -> Decision {
    Decision {
        engine: String::new(),
        engine_version: String::new(),
        ..d.clone()
    }
}

/// What a differential run saw.
#[derive(Debug)]
struct Seen {
    decided: usize,
    errors: usize,
    refused: usize,
    codes: usize,
}

/// Decide `cases` random inputs on both.
fn differential(bundle: &PolicyBundle, seed: u64, cases: usize) -> Seen {
    assert!(bundle.has_native());
    let base = example_input_value();
    let mut r = Rng(seed);
    let (mut decided, mut errors, mut refused) = (0, 0, 0);
    let mut codes = std::collections::BTreeSet::new();
    for _ in 0..cases {
        let v = random_input(&mut r, &base);
        // Inputs the schema refuses never reach an evaluator.
        let input = match PolicyInput::from_value(&v) {
            Ok(input) => input,
            Err(e) => {
                assert!(matches!(e, PolicyError::InvalidInput { .. }), "{e}");
                refused += 1;
                continue;
            }
        };
        let vm = bundle.evaluate_with(&input, EvalMode::Vm);
        let native = bundle.evaluate_with(&input, EvalMode::Native);
        match (&vm, &native) {
            (Ok(a), Ok(b)) => {
                assert_eq!(outcome(a), outcome(b), "input: {v}");
                assert_eq!(a.engine, "regorus");
                assert_eq!(b.engine, NATIVE_ENGINE_NAME, "input: {v}");
                codes.extend(b.deny.iter().chain(&b.warnings).chain(&b.reasons).cloned());
                decided += 1;
            }
            (Err(a), Err(b)) => {
                assert!(
                    matches!(a, PolicyError::Rule { .. }) && matches!(b, PolicyError::Rule { .. }),
                    "{a} / {b}"
                );
                errors += 1;
            }
            _ => panic!("the VM says {vm:?}, the native evaluator {native:?}; input: {v}"),
        }
    }
    Seen {
        decided,
        errors,
        refused,
        codes: codes.len(),
    }
}

fn cases() -> usize {
    std::env::var("SMM_NATIVE_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4000)
}

#[test]
fn native_and_vm_decide_alike_on_random_inputs() {
    let bundle = PolicyBundle::default_bundle().unwrap();
    let seed = std::env::var("SMM_NATIVE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x9E37_79B9_7F4A_7C15);
    let seen = differential(&bundle, seed, cases());
    // The inputs reached decisions, errors on both sides (float
    // overflows), refusals (times the engine cannot read), and most codes.
    assert!(seen.decided >= cases() / 4, "{seen:?}");
    assert!(seen.errors >= 1 && seen.refused >= 1, "{seen:?}");
    assert!(seen.codes >= 50, "{seen:?}");
    eprintln!("{seen:?}");
}

/// Thresholds are the bundle's data: a tuned config (integers where the
/// default has floats, and the reverse) decides natively too, alike.
#[test]
fn native_and_vm_decide_alike_with_a_tuned_config() {
    let mut data = default_data();
    let cfg = &mut data["smm"]["config"];
    cfg["consentExpiringSoonDays"] = json!(400.5);
    cfg["connectorStaleAfterDays"] = json!(1);
    cfg["runnableLifecycles"] = json!(["active", "paused"]);
    cfg["budget"]["approachingWeeklyRatio"] = json!(1);
    cfg["budget"]["highCostWorkflowRatio"] = json!(0.1);
    cfg["content"]["minCitationCoverage"] = json!(0.5);
    cfg["content"]["forbiddenTopics"] = json!(["product_launch"]);
    cfg["hallucination"]["minConfidence"] = json!(1);
    cfg["quota"]["warnRatio"] = json!(0.5);
    cfg["postsPerHourLimits"] = json!({"x": 2.5, "linkedin": 0});
    let modules = default_modules();
    let bundle = PolicyBundle::from_modules(modules, Some(data)).unwrap();
    let seen = differential(&bundle, 7, cases() / 3);
    assert!(seen.decided >= cases() / 12, "{seen:?}");
    assert!(seen.codes >= 40, "{seen:?}");
}

/// A product beyond i128 (a warn ratio of 2^64 - 2^11 times a limit of
/// the same) is decided on the VM, and the decision says so.
#[test]
fn a_result_beyond_the_native_integers_is_decided_on_the_vm() {
    let mut data = default_data();
    data["smm"]["config"]["quota"]["warnRatio"] = json!(18446744073709549568u64);
    let modules = default_modules();
    let bundle = PolicyBundle::from_modules(modules, Some(data)).unwrap();
    let mut v = example_input_value();
    v["quotas"] =
        json!([{"kind": "tokens", "period": "day", "limit": 18446744073709549568u64, "used": 0}]);
    let input = PolicyInput::from_value(&v).unwrap();
    let native = bundle.evaluate_with(&input, EvalMode::Native).unwrap();
    let vm = bundle.evaluate_with(&input, EvalMode::Vm).unwrap();
    assert_eq!(native, vm);
    assert_eq!(native.engine, "regorus");
    // An ordinary quota decides natively on the same bundle.
    v["quotas"] = json!([{"kind": "tokens", "period": "day", "limit": 10, "used": 0}]);
    let input = PolicyInput::from_value(&v).unwrap();
    let native = bundle.evaluate_with(&input, EvalMode::Native).unwrap();
    assert_eq!(native.engine, NATIVE_ENGINE_NAME);
    assert_eq!(
        outcome(&native),
        outcome(&bundle.evaluate_with(&input, EvalMode::Vm).unwrap())
    );
}

#[test]
fn the_example_decides_natively_as_on_the_vm() {
    let bundle = PolicyBundle::default_bundle().unwrap();
    assert!(bundle.has_native());
    let input = PolicyInput::from_value(&example_input_value()).unwrap();
    let native = bundle.evaluate_with(&input, EvalMode::Native).unwrap();
    let vm = bundle.evaluate(&input).unwrap();
    assert_eq!(outcome(&native), outcome(&vm));
    assert_eq!(native.engine, NATIVE_ENGINE_NAME);
    assert_eq!(native.engine_version, env!("CARGO_PKG_VERSION"));
    assert!(native.allow && native.require_human_approval, "{native:?}");
}

/// Any other policy has no native form: one changed byte of a module, or
/// data of another shape, and Native is an error that says so (never the
/// default policy's answer for a policy that is not the default's).
#[test]
fn another_policy_has_no_native_form() {
    let default = default_modules();
    let data = default_data();
    let input = PolicyInput::from_value(&example_input_value()).unwrap();

    // The default's modules and data, loaded by hand: native.
    let same = PolicyBundle::from_modules(default.clone(), Some(data.clone())).unwrap();
    assert!(same.has_native());
    // The tests are not the policy: without them, still native.
    let no_tests: Vec<_> = default
        .iter()
        .filter(|(p, _)| !p.ends_with("_test.rego"))
        .cloned()
        .collect();
    assert!(
        PolicyBundle::from_modules(no_tests, Some(data.clone()))
            .unwrap()
            .has_native()
    );

    let edited: Vec<_> = default
        .iter()
        .map(|(p, s)| {
            let s = if p == "smm/quota.rego" {
                s.replace("q.used >= q.limit", "q.used > q.limit")
            } else {
                s.clone()
            };
            (p.clone(), s)
        })
        .collect();
    let mut extra = default.clone();
    extra.push((
        "smm/extra.rego".into(),
        "package smm.extra\n\nx := 1\n".into(),
    ));
    let mut other_data = data.clone();
    other_data["smm"]["config"]["quota"]["warnRatio"] = json!("0.8");
    let mut more_data = data.clone();
    more_data["other"] = json!({});
    for (what, bundle) in [
        (
            "an edited module",
            PolicyBundle::from_modules(edited, Some(data.clone())),
        ),
        (
            "an extra module",
            PolicyBundle::from_modules(extra, Some(data.clone())),
        ),
        (
            "a config of other types",
            PolicyBundle::from_modules(default.clone(), Some(other_data)),
        ),
        (
            "data beyond the config",
            PolicyBundle::from_modules(default.clone(), Some(more_data)),
        ),
        ("no data", PolicyBundle::from_modules(default.clone(), None)),
    ] {
        let bundle = bundle.unwrap();
        assert!(!bundle.has_native(), "{what}");
        let err = bundle.evaluate_with(&input, EvalMode::Native).unwrap_err();
        assert!(
            matches!(err, PolicyError::NoDecision { .. }) && err.to_string().contains("native"),
            "{what}: {err}"
        );
    }
}
