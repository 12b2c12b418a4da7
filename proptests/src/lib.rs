//! Strategies that generate valid simulation requests (any risk profile,
//! channel set, budget, DAG workflow and seed), shared by the property tests.

use proptest::prelude::*;
use smm_core::sim::{
    Budget, BudgetBreakdown, RetryPolicy, SimulationConfig, SimulationRequest, Workflow,
    WorkflowNode, WorkspaceContext,
};

/// One of the four risk profiles.
pub fn risk() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["low", "medium", "high", "enterprise"]).prop_map(str::to_string)
}

/// One to four channels, including unknown platform names.
pub fn channels() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(
        prop::sample::select(vec![
            "linkedin",
            "x",
            "instagram",
            "facebook",
            "youtube",
            "tiktok",
            "mastodon",
        ]),
        1..5,
    )
    .prop_map(|v| v.into_iter().map(str::to_string).collect())
}

/// A workflow DAG: node i depends on a subset of nodes before it.
pub fn workflow() -> impl Strategy<Value = Option<Workflow>> {
    let node = (
        0.0..5000.0f64,
        prop_oneof![Just(0.0), 0.0..0.3f64, Just(1.0)],
        prop::option::of((0u32..4, 0.0..500.0f64)),
        prop::collection::vec(any::<prop::sample::Index>(), 0..3),
    );
    prop::option::of(prop::collection::vec(node, 1..8)).prop_map(|nodes| {
        nodes.map(|nodes| Workflow {
            version: None,
            nodes: nodes
                .into_iter()
                .enumerate()
                .map(|(i, (duration, failure_rate, retry, deps))| {
                    let mut dependencies: Vec<String> = if i == 0 {
                        Vec::new()
                    } else {
                        deps.iter().map(|d| format!("n{}", d.index(i))).collect()
                    };
                    dependencies.dedup();
                    WorkflowNode {
                        id: format!("n{i}"),
                        node_type: None,
                        parameters: None,
                        dependencies,
                        estimated_duration: duration,
                        failure_rate,
                        retry_policy: retry.map(|(max_retries, backoff_ms)| RetryPolicy {
                            max_retries,
                            backoff_ms,
                        }),
                    }
                })
                .collect(),
        })
    })
}

/// A valid request with `iterations` in the given range.
pub fn request(iterations: std::ops::Range<u64>) -> impl Strategy<Value = SimulationRequest> {
    (
        risk(),
        channels(),
        prop::array::uniform4(0.0..2000.0f64),
        1.0..10_000.0f64,
        workflow(),
        iterations,
        any::<u64>(),
        prop_oneof![Just(0.95), 0.5..0.999f64],
    )
        .prop_map(
            |(risk, channels, b, hard_cap, workflow, iterations, seed, level)| SimulationRequest {
                workspace_id: Some("ws-prop".into()),
                workspace_context: WorkspaceContext {
                    workspace_id: None,
                    risk_profile: Some(risk),
                    primary_channels: channels,
                    budget: Budget {
                        currency: Some("USD".into()),
                        weekly_cap: None,
                        hard_cap,
                        breakdown: BudgetBreakdown {
                            paid_ads: b[0],
                            llm_model_spend: b[1],
                            rendering: b[2],
                            third_party_services: b[3],
                        },
                    },
                },
                workflow,
                config: SimulationConfig {
                    iterations,
                    random_seed: seed,
                    confidence_level: level,
                    ..SimulationConfig::default()
                },
            },
        )
}

/// A mutation of a valid JSON document: a value somewhere replaced by a
/// hostile one, or the bytes damaged.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Replace the value reached by following these child choices.
    Replace(Vec<prop::sample::Index>, HostileValue),
    /// Flip a bit of a byte.
    Flip(prop::sample::Index, u8),
    /// Cut the document.
    Truncate(prop::sample::Index),
    /// Insert a byte.
    Insert(prop::sample::Index, u8),
}

/// Values an attacker would try.
#[derive(Debug, Clone)]
pub enum HostileValue {
    /// JSON null.
    Null,
    /// A number.
    Number(f64),
    /// An integer at the edge.
    Integer(i128),
    /// A string.
    Text(String),
    /// A boolean.
    Bool(bool),
    /// An empty array.
    EmptyArray,
    /// An empty object.
    EmptyObject,
}

impl HostileValue {
    fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            HostileValue::Null => Value::Null,
            HostileValue::Number(x) => {
                serde_json::Number::from_f64(*x).map_or(Value::Null, Value::Number)
            }
            HostileValue::Integer(i) => {
                if let Ok(v) = i64::try_from(*i) {
                    Value::from(v)
                } else if let Ok(v) = u64::try_from(*i) {
                    Value::from(v)
                } else {
                    Value::from(i.to_string())
                }
            }
            HostileValue::Text(s) => Value::from(s.as_str()),
            HostileValue::Bool(b) => Value::from(*b),
            HostileValue::EmptyArray => Value::Array(vec![]),
            HostileValue::EmptyObject => Value::Object(Default::default()),
        }
    }
}

/// Any hostile value.
pub fn hostile_value() -> impl Strategy<Value = HostileValue> {
    prop_oneof![
        Just(HostileValue::Null),
        prop_oneof![
            Just(-1.0),
            Just(0.0),
            Just(1e308),
            Just(-1e308),
            Just(5e-324),
            Just(0.9999999999999999),
            any::<f64>().prop_filter("finite", |x| x.is_finite()),
        ]
        .prop_map(HostileValue::Number),
        prop_oneof![
            Just(0i128),
            Just(-1),
            Just(u64::MAX as i128),
            Just(i64::MIN as i128),
            Just(u64::MAX as i128 + 1),
            any::<i64>().prop_map(i128::from),
        ]
        .prop_map(HostileValue::Integer),
        prop_oneof![
            Just(String::new()),
            Just("../../etc".to_string()),
            "\\PC{0,12}"
        ]
        .prop_map(HostileValue::Text),
        any::<bool>().prop_map(HostileValue::Bool),
        Just(HostileValue::EmptyArray),
        Just(HostileValue::EmptyObject),
    ]
}

/// Any mutation.
pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (prop::collection::vec(any::<prop::sample::Index>(), 1..6), hostile_value())
            .prop_map(|(p, v)| Mutation::Replace(p, v)),
        1 => (any::<prop::sample::Index>(), 0u8..8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        1 => any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        1 => (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
    ]
}

/// Apply a mutation to a JSON document's text.
pub fn mutate(text: &str, m: &Mutation) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    match m {
        Mutation::Replace(path, v) => {
            let Ok(mut doc) = serde_json::from_str::<serde_json::Value>(text) else {
                return bytes;
            };
            // Walk down by the choices to a JSON pointer, then replace there.
            let mut pointer = String::new();
            let mut at = &doc;
            for step in path {
                let next = match at {
                    serde_json::Value::Object(o) if !o.is_empty() => o
                        .iter()
                        .nth(step.index(o.len()))
                        .map(|(k, v)| (k.replace('~', "~0").replace('/', "~1"), v)),
                    serde_json::Value::Array(a) if !a.is_empty() => {
                        let i = step.index(a.len());
                        a.get(i).map(|v| (i.to_string(), v))
                    }
                    _ => None,
                };
                match next {
                    Some((token, v)) => {
                        pointer.push('/');
                        pointer.push_str(&token);
                        at = v;
                    }
                    None => break,
                }
            }
            if let Some(slot) = doc.pointer_mut(&pointer) {
                *slot = v.to_json();
            }
            serde_json::to_vec(&doc).unwrap_or(bytes)
        }
        Mutation::Flip(i, bit) => {
            if !bytes.is_empty() {
                let k = i.index(bytes.len());
                if let Some(b) = bytes.get_mut(k) {
                    *b ^= 1 << bit;
                }
            }
            bytes
        }
        Mutation::Truncate(i) => {
            let k = i.index(bytes.len() + 1);
            bytes.truncate(k);
            bytes
        }
        Mutation::Insert(i, b) => {
            let k = i.index(bytes.len() + 1);
            bytes.insert(k, *b);
            bytes
        }
    }
}
