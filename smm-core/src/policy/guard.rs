//! Guards for policy sources, which are code from outside: checks that run
//! before a module is parsed (its nesting) and before any rule is
//! evaluated (recursion), so that a hostile module is a [`PolicyError`]
//! naming the module and line, never a hang or a stack overflow.

use std::collections::{BTreeMap, BTreeSet};

use regorus::unstable::{Expr, Literal, Module, Query, Ref, RuleHead};

use super::PolicyError;

/// The deepest nesting of brackets (`(`, `[`, `{`) a module may use (the
/// default bundle uses 7). Checked on the source text, before parsing:
/// regorus's parser takes time exponential in the nesting of some forms.
pub const MAX_POLICY_NESTING: usize = crate::limits::MAX_POLICY_NESTING;

/// Refuse a module nested deeper than [`MAX_POLICY_NESTING`], before it is
/// parsed. Strings, raw strings and comments are skipped.
pub(crate) fn check_nesting(path: &str, src: &str) -> Result<(), PolicyError> {
    let bytes = src.as_bytes();
    let (mut depth, mut line, mut i) = (0usize, 1usize, 0usize);
    while let Some(&c) = bytes.get(i) {
        match c {
            b'\n' => line += 1,
            b'#' => {
                while bytes.get(i).is_some_and(|&b| b != b'\n') {
                    i += 1;
                }
                continue;
            }
            b'"' => {
                i += 1;
                while let Some(&b) = bytes.get(i) {
                    match b {
                        b'\\' => i += 1,
                        b'"' => break,
                        b'\n' => line += 1,
                        _ => {}
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while let Some(&b) = bytes.get(i) {
                    if b == b'`' {
                        break;
                    }
                    if b == b'\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_POLICY_NESTING {
                    return Err(PolicyError::Compile {
                        module: path.to_string(),
                        line: u32::try_from(line).ok(),
                        message: format!(
                            "brackets nested deeper than {MAX_POLICY_NESTING} levels (refused before parsing)"
                        ),
                    });
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// The dotted path of a simple reference (`a`, `a.b`, `a["b"]`), if it is one.
fn path_of(e: &Expr) -> Option<String> {
    let mut parts = Vec::new();
    let mut at = e;
    loop {
        match at {
            Expr::Var { span, .. } => {
                parts.push(span.text().to_string());
                break;
            }
            Expr::RefDot { refr, field, .. } => {
                parts.push(field.0.text().to_string());
                at = refr;
            }
            Expr::RefBrack { refr, index, .. } => match index.as_ref() {
                Expr::String { value, .. } => {
                    parts.push(value.as_string().ok()?.to_string());
                    at = refr;
                }
                _ => return None,
            },
            _ => return None,
        }
    }
    parts.reverse();
    Some(parts.join("."))
}

/// Every function a query or expression calls, by its path as written.
fn calls_in(exprs: Vec<&Expr>, queries: Vec<&Query>, out: &mut Vec<(String, u32)>) {
    let mut exprs = exprs;
    let mut queries = queries;
    loop {
        if let Some(q) = queries.pop() {
            for s in &q.stmts {
                match &s.literal {
                    Literal::SomeVars { .. } => {}
                    Literal::SomeIn {
                        key,
                        value,
                        collection,
                        ..
                    } => {
                        exprs.extend(key.iter().map(|k| k.as_ref()));
                        exprs.push(value);
                        exprs.push(collection);
                    }
                    Literal::Expr { expr, .. } | Literal::NotExpr { expr, .. } => exprs.push(expr),
                    Literal::Every { domain, query, .. } => {
                        exprs.push(domain);
                        queries.push(query);
                    }
                }
                for w in &s.with_mods {
                    exprs.push(&w.r#as);
                }
            }
            continue;
        }
        let Some(e) = exprs.pop() else {
            return;
        };
        match e {
            Expr::String { .. }
            | Expr::RawString { .. }
            | Expr::Number { .. }
            | Expr::Bool { .. }
            | Expr::Null { .. }
            | Expr::Var { .. } => {}
            Expr::Array { items, .. } | Expr::Set { items, .. } => {
                exprs.extend(items.iter().map(|i| i.as_ref()));
            }
            Expr::Object { fields, .. } => {
                for (_, k, v) in fields {
                    exprs.push(k);
                    exprs.push(v);
                }
            }
            Expr::ArrayCompr { term, query, .. } | Expr::SetCompr { term, query, .. } => {
                exprs.push(term);
                queries.push(query);
            }
            Expr::ObjectCompr {
                key, value, query, ..
            } => {
                exprs.push(key);
                exprs.push(value);
                queries.push(query);
            }
            Expr::Call {
                span, fcn, params, ..
            } => {
                if let Some(p) = path_of(fcn) {
                    out.push((p, span.line));
                }
                exprs.extend(params.iter().map(|p| p.as_ref()));
            }
            Expr::UnaryExpr { expr, .. } => exprs.push(expr),
            Expr::RefDot { refr, .. } => exprs.push(refr),
            Expr::RefBrack { refr, index, .. } => {
                exprs.push(refr);
                exprs.push(index);
            }
            Expr::BinExpr { lhs, rhs, .. }
            | Expr::BoolExpr { lhs, rhs, .. }
            | Expr::ArithExpr { lhs, rhs, .. }
            | Expr::AssignExpr { lhs, rhs, .. } => {
                exprs.push(lhs);
                exprs.push(rhs);
            }
            Expr::Membership {
                key,
                value,
                collection,
                ..
            } => {
                exprs.extend(key.iter().map(|k| k.as_ref()));
                exprs.push(value);
                exprs.push(collection);
            }
        }
    }
}

/// A function of the bundle: where it is defined and what it calls.
struct Function {
    module: String,
    line: u32,
    calls: BTreeSet<String>,
}

/// Refuse a bundle in which a function calls itself, directly or through
/// other functions. OPA refuses every recursion at compile time; regorus's
/// interpreter detects recursion through rules but follows function calls
/// without a bound, until the stack overflows. Rules that depend on
/// themselves are refused by the interpreter with an error.
pub(crate) fn check_recursion(modules: &[Ref<Module>]) -> Result<(), PolicyError> {
    let mut functions: BTreeMap<String, Function> = BTreeMap::new();
    // (function, its calls as written, the module's import aliases, its package)
    type Calls = (String, Vec<(String, u32)>, BTreeMap<String, String>, String);
    let mut raw_calls: Vec<Calls> = Vec::new();
    for m in modules {
        let Some(package) = path_of(&m.package.refr) else {
            continue;
        };
        let package = format!("data.{}", package.trim_start_matches("data."));
        let module_name = m.package.span.source.get_path().to_string();
        let mut aliases = BTreeMap::new();
        for i in &m.imports {
            if let Some(p) = path_of(&i.refr) {
                let alias = match &i.r#as {
                    Some(a) => a.text().to_string(),
                    None => p.rsplit('.').next().unwrap_or(&p).to_string(),
                };
                aliases.insert(alias, p);
            }
        }
        for rule in &m.policy {
            let regorus::unstable::Rule::Spec { head, bodies, .. } = rule.as_ref() else {
                continue;
            };
            let RuleHead::Func {
                refr, assign, span, ..
            } = head
            else {
                continue;
            };
            let Some(name) = path_of(refr) else {
                continue;
            };
            let full = format!("{package}.{name}");
            let mut exprs: Vec<&Expr> = Vec::new();
            let mut queries: Vec<&Query> = Vec::new();
            if let Some(a) = assign {
                exprs.push(&a.value);
            }
            for b in bodies {
                if let Some(a) = &b.assign {
                    exprs.push(&a.value);
                }
                queries.push(&b.query);
            }
            let mut calls = Vec::new();
            calls_in(exprs, queries, &mut calls);
            functions.entry(full.clone()).or_insert(Function {
                module: module_name.clone(),
                line: span.line,
                calls: BTreeSet::new(),
            });
            raw_calls.push((full, calls, aliases.clone(), package.clone()));
        }
    }
    for (name, calls, aliases, package) in raw_calls {
        let resolved: Vec<String> = calls
            .into_iter()
            .filter_map(|(c, _)| {
                let first = c.split('.').next().unwrap_or(&c);
                let full = if first == "data" {
                    c.clone()
                } else if let Some(p) = aliases.get(first) {
                    format!("{p}{}", c.get(first.len()..).unwrap_or(""))
                } else {
                    format!("{package}.{c}")
                };
                functions.contains_key(&full).then_some(full)
            })
            .collect();
        if let Some(f) = functions.get_mut(&name) {
            f.calls.extend(resolved);
        }
    }
    // Depth-first search for a cycle, with an explicit stack.
    let mut done: BTreeSet<&str> = BTreeSet::new();
    for start in functions.keys() {
        if done.contains(start.as_str()) {
            continue;
        }
        let mut path: Vec<&str> = vec![start];
        let mut iters: Vec<std::collections::btree_set::Iter<'_, String>> = vec![
            functions
                .get(start)
                .map(|f| f.calls.iter())
                .unwrap_or_default(),
        ];
        while let Some(it) = iters.last_mut() {
            match it.next() {
                Some(next) => {
                    if let Some(i) = path.iter().position(|p| *p == next.as_str()) {
                        let cycle: Vec<&str> = path
                            .get(i..)
                            .unwrap_or_default()
                            .iter()
                            .copied()
                            .chain([next.as_str()])
                            .collect();
                        let f = functions.get(next.as_str());
                        return Err(PolicyError::Compile {
                            module: f.map(|f| f.module.clone()).unwrap_or_default(),
                            line: f.map(|f| f.line),
                            message: format!(
                                "recursive function: {} (Rego forbids recursion)",
                                cycle.join(" -> ")
                            ),
                        });
                    }
                    if done.contains(next.as_str()) {
                        continue;
                    }
                    path.push(next);
                    iters.push(
                        functions
                            .get(next.as_str())
                            .map(|f| f.calls.iter())
                            .unwrap_or_default(),
                    );
                }
                None => {
                    iters.pop();
                    if let Some(p) = path.pop() {
                        done.insert(p);
                    }
                }
            }
        }
    }
    Ok(())
}

/// Where each rule (not function) of the bundle is defined: its path
/// (`data.pkg.rule`), module and line. To name the rule behind an error
/// that the engine reports without a place (a time or instruction limit).
pub(crate) fn rule_sites(modules: &[Ref<Module>]) -> Vec<(String, String, u32)> {
    let mut out = Vec::new();
    for m in modules {
        let Some(package) = path_of(&m.package.refr) else {
            continue;
        };
        let package = format!("data.{}", package.trim_start_matches("data."));
        let module = m.package.span.source.get_path().to_string();
        for rule in &m.policy {
            let (refr, line) = match rule.as_ref() {
                regorus::unstable::Rule::Spec { head, span, .. } => match head {
                    RuleHead::Compr { refr, .. } | RuleHead::Set { refr, .. } => (refr, span.line),
                    RuleHead::Func { .. } => continue,
                },
                regorus::unstable::Rule::Default { refr, span, .. } => (refr, span.line),
            };
            if let Some(name) = path_of(refr) {
                let path = format!("{package}.{name}");
                if !out
                    .iter()
                    .any(|(p, _, _): &(String, String, u32)| *p == path)
                {
                    out.push((path, module.clone(), line));
                }
            }
        }
    }
    out
}
