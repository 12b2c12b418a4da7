//! A validator for the JSON Schema subset that schemars generates, run
//! against the contract's own generated schema, so the checked-in schema and
//! the validation cannot disagree. It reports every violation with the JSON
//! pointer of the offending value.

use std::collections::BTreeMap;

use regex_lite::Regex;
use serde_json::Value;

use super::{Severity, Violation};
use crate::time::Timestamp;

/// A compiled schema: the document and its regular expressions.
#[derive(Debug)]
pub(crate) struct CompiledSchema {
    root: Value,
    patterns: BTreeMap<String, Regex>,
}

impl CompiledSchema {
    pub(crate) fn new(root: Value) -> Self {
        let mut patterns = BTreeMap::new();
        collect_patterns(&root, &mut patterns);
        CompiledSchema { root, patterns }
    }

    /// Every violation of `doc` against the schema.
    pub(crate) fn validate(&self, doc: &Value) -> Vec<Violation> {
        let mut out = Vec::new();
        self.check(&self.root, doc, "", &mut out);
        out
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => r
                .strip_prefix('#')
                .and_then(|p| self.root.pointer(p))
                .unwrap_or(schema),
            None => schema,
        }
    }

    fn check(&self, schema: &Value, v: &Value, at: &str, out: &mut Vec<Violation>) {
        let schema = self.resolve(schema);
        let push = |out: &mut Vec<Violation>, rule: &str, message: String| {
            out.push(Violation {
                pointer: at.to_string(),
                rule: format!("schema.{rule}"),
                message,
                severity: Severity::Error,
            });
        };
        if let Some(t) = schema.get("type")
            && !type_matches(t, v)
        {
            push(
                out,
                "type",
                format!("expected {}, got {}", type_name(t), kind(v)),
            );
            return;
        }
        if let Some(c) = schema.get("const")
            && c != v
        {
            push(out, "const", format!("must be {c}"));
        }
        if let Some(Value::Array(options)) = schema.get("enum")
            && !options.contains(v)
        {
            push(out, "enum", format!("must be one of {}", list(options)));
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(Value::Array(branches)) = schema.get(key) {
                self.check_branches(branches, v, at, out);
            }
        }
        if let Some(Value::Array(all)) = schema.get("allOf") {
            for s in all {
                self.check(s, v, at, out);
            }
        }
        match v {
            Value::Object(map) => self.check_object(schema, map, at, out),
            Value::Array(items) => {
                if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                    && (items.len() as u64) < min
                {
                    push(out, "minItems", format!("must have at least {min} item(s)"));
                }
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.check(item_schema, item, &format!("{at}/{i}"), out);
                    }
                }
            }
            Value::String(s) => {
                if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
                    && (s.chars().count() as u64) < min
                {
                    push(
                        out,
                        "minLength",
                        format!("must have at least {min} character(s)"),
                    );
                }
                if let Some(p) = schema.get("pattern").and_then(Value::as_str)
                    && !self.patterns.get(p).is_some_and(|r| r.is_match(s))
                {
                    push(out, "pattern", format!("{s:?} does not match {p}"));
                }
                if schema.get("format").and_then(Value::as_str) == Some("date-time")
                    && Timestamp::parse(s).is_none()
                {
                    push(out, "format", format!("{s:?} is not an RFC 3339 date-time"));
                }
            }
            Value::Number(n) => {
                let x = n.as_f64().unwrap_or(f64::NAN);
                if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
                    && x < min
                {
                    push(out, "minimum", format!("must be >= {min} (got {n})"));
                }
                if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
                    && x > max
                {
                    push(out, "maximum", format!("must be <= {max} (got {n})"));
                }
                let limit = match schema.get("format").and_then(Value::as_str) {
                    Some("uint32") => Some(f64::from(u32::MAX)),
                    Some("uint64") => Some(u64::MAX as f64),
                    _ => None,
                };
                if let Some(limit) = limit
                    && x > limit
                {
                    push(out, "format", format!("must be at most {limit} (got {n})"));
                }
            }
            _ => {}
        }
    }

    fn check_object(
        &self,
        schema: &Value,
        map: &serde_json::Map<String, Value>,
        at: &str,
        out: &mut Vec<Violation>,
    ) {
        let props = schema.get("properties").and_then(Value::as_object);
        if let Some(Value::Array(required)) = schema.get("required") {
            for r in required.iter().filter_map(Value::as_str) {
                if !map.contains_key(r) {
                    out.push(Violation {
                        pointer: format!("{at}/{}", crate::jcs::escape_pointer_token(r)),
                        rule: "schema.required".into(),
                        message: format!("missing required field `{r}`"),
                        severity: Severity::Error,
                    });
                }
            }
        }
        let closed = schema.get("additionalProperties") == Some(&Value::Bool(false));
        for (k, child) in map {
            let here = format!("{at}/{}", crate::jcs::escape_pointer_token(k));
            match props.and_then(|p| p.get(k)) {
                Some(s) => self.check(s, child, &here, out),
                None if closed => {
                    let allowed: Vec<&str> = props
                        .map(|p| p.keys().map(String::as_str).collect())
                        .unwrap_or_default();
                    out.push(Violation {
                        pointer: here,
                        rule: "schema.additionalProperties".into(),
                        message: format!("unknown field `{k}` (allowed: {})", allowed.join(", ")),
                        severity: Severity::Error,
                    });
                }
                None => {}
            }
        }
    }

    fn check_branches(&self, branches: &[Value], v: &Value, at: &str, out: &mut Vec<Violation>) {
        let mut best: Option<Vec<Violation>> = None;
        for b in branches {
            let mut errs = Vec::new();
            self.check(b, v, at, &mut errs);
            if errs.is_empty() {
                return;
            }
            if best.as_ref().is_none_or(|e| errs.len() < e.len()) {
                best = Some(errs);
            }
        }
        let consts: Vec<&Value> = branches
            .iter()
            .filter_map(|b| self.resolve(b).get("const"))
            .collect();
        if consts.len() == branches.len() {
            out.push(Violation {
                pointer: at.to_string(),
                rule: "schema.enum".into(),
                message: format!("must be one of {}", list(consts)),
                severity: Severity::Error,
            });
        } else if let Some(errs) = best {
            out.extend(errs);
        }
    }
}

fn collect_patterns(v: &Value, out: &mut BTreeMap<String, Regex>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(p)) = m.get("pattern")
                && let Ok(r) = Regex::new(p)
            {
                out.insert(p.clone(), r);
            }
            m.values().for_each(|c| collect_patterns(c, out));
        }
        Value::Array(a) => a.iter().for_each(|c| collect_patterns(c, out)),
        _ => {}
    }
}

fn type_matches(t: &Value, v: &Value) -> bool {
    match t {
        Value::String(s) => one_type_matches(s, v),
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .any(|s| one_type_matches(s, v)),
        _ => true,
    }
}

fn one_type_matches(t: &str, v: &Value) -> bool {
    match (t, v) {
        ("object", Value::Object(_))
        | ("array", Value::Array(_))
        | ("string", Value::String(_))
        | ("boolean", Value::Bool(_))
        | ("null", Value::Null)
        | ("number", Value::Number(_)) => true,
        ("integer", Value::Number(n)) => {
            n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => false,
    }
}

fn type_name(t: &Value) -> String {
    match t {
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" or "),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn list<'a>(items: impl IntoIterator<Item = &'a Value>) -> String {
    items
        .into_iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
