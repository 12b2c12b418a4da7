//! Properties of canonical JSON and the contract terms hash.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code"
)]

use proptest::prelude::*;
use serde_json::Value;
use smm_core::contract::{Contract, NON_TERMS, NON_TERMS_NESTED, terms_hash_of};
use smm_core::jcs::{canonicalize, is_canonical};

const V2: &str = include_str!("../../examples/workspace.icblabs.v2.json");

/// Write `v` as JSON with shuffled keys, random whitespace and random (but
/// equal-valued) number spellings, driven by `r`.
fn respell(v: &Value, r: &mut impl FnMut() -> u32, out: &mut String) {
    let ws = |r: &mut dyn FnMut() -> u32, out: &mut String| {
        for _ in 0..(r() % 3) {
            out.push([' ', '\n', '\t', '\r'][(r() % 4) as usize]);
        }
    };
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            for i in (1..keys.len()).rev() {
                keys.swap(i, (r() as usize) % (i + 1));
            }
            out.push('{');
            for (n, k) in keys.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                ws(r, out);
                out.push_str(&serde_json::to_string(k).unwrap());
                ws(r, out);
                out.push(':');
                ws(r, out);
                respell(&m[*k], r, out);
                ws(r, out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (n, x) in a.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                ws(r, out);
                respell(x, r, out);
            }
            ws(r, out);
            out.push(']');
        }
        Value::Number(num) => {
            let f = num.as_f64().unwrap();
            let spelled = match r() % 4 {
                0 => num.to_string(),
                1 => format!("{f:e}"),
                2 => format!("{f:E}").replace('E', "E+").replace("E+-", "E-"),
                _ if num.is_u64() && f < 1e15 => format!("{}0e-1", num),
                _ => format!("{f:?}"),
            };
            out.push_str(&spelled);
        }
        Value::String(s) => {
            // Escape some characters that need no escaping.
            let mut t = String::from("\"");
            for c in s.chars() {
                match c {
                    '"' => t.push_str("\\\""),
                    '\\' => t.push_str("\\\\"),
                    c if (c as u32) < 0x20 => t.push_str(&format!("\\u{:04x}", c as u32)),
                    c if r().is_multiple_of(5) && (c as u32) < 0x10000 => {
                        t.push_str(&format!("\\u{:04X}", c as u32))
                    }
                    c => t.push(c),
                }
            }
            t.push('"');
            out.push_str(&t);
        }
        other => out.push_str(&other.to_string()),
    }
}

fn leaves(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => m
            .iter()
            .for_each(|(k, x)| leaves(x, format!("{at}/{k}"), out)),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| leaves(x, format!("{at}/{i}"), out)),
        _ => out.push(at),
    }
}

fn mutate(v: &mut Value) {
    *v = match v {
        Value::Number(n) => serde_json::json!(n.as_f64().unwrap() + 1.0),
        Value::String(s) => Value::String(format!("{s}x")),
        Value::Bool(b) => Value::Bool(!*b),
        _ => Value::String("changed".into()),
    };
}

fn is_term(pointer: &str) -> bool {
    let top = pointer.split('/').nth(1).unwrap_or("");
    !NON_TERMS.contains(&top) && !NON_TERMS_NESTED.iter().any(|p| pointer.starts_with(p))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn hash_ignores_key_order_whitespace_and_number_spelling(seed in any::<u64>()) {
        let doc: Value = serde_json::from_str(V2).unwrap();
        let base = Contract::from_json(V2).unwrap();
        let mut state = seed | 1;
        let mut r = move || { state ^= state << 13; state ^= state >> 7; state ^= state << 17; (state >> 32) as u32 };
        let mut text = String::new();
        respell(&doc, &mut r, &mut text);
        let c = Contract::from_json(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(c.terms_hash(), base.terms_hash());
        // A contract's own snapshot verifies, back to the same contract
        // (assembly relies on it without checking).
        let again = c.snapshot().verify().ok();
        prop_assert_eq!(again.as_ref(), Some(&c));
        prop_assert_eq!(canonicalize(text.as_bytes()).unwrap(), canonicalize(V2.as_bytes()).unwrap());
    }

    #[test]
    fn hash_changes_when_any_term_changes_at_any_depth(pick in any::<prop::sample::Index>()) {
        let doc: Value = serde_json::from_str(V2).unwrap();
        let base = terms_hash_of(&doc).unwrap();
        let mut all = Vec::new();
        leaves(&doc, String::new(), &mut all);
        let pointer = pick.get(&all).clone();
        let mut changed = doc.clone();
        mutate(changed.pointer_mut(&pointer).unwrap());
        let h = terms_hash_of(&changed).unwrap();
        if is_term(&pointer) {
            prop_assert_ne!(h, base, "{} is a term", pointer);
        } else {
            prop_assert_eq!(h, base, "{} is lifecycle state", pointer);
        }
    }

    #[test]
    fn canonical_form_is_a_fixed_point(seed in any::<u64>(), v in arb_json()) {
        let mut state = seed | 1;
        let mut r = move || { state ^= state << 13; state ^= state >> 7; state ^= state << 17; (state >> 32) as u32 };
        let mut text = String::new();
        respell(&v, &mut r, &mut text);
        let c = canonicalize(text.as_bytes()).unwrap();
        prop_assert_eq!(canonicalize(&c).unwrap(), c.clone());
        prop_assert_eq!(c.clone(), canonicalize(serde_json::to_string(&v).unwrap().as_bytes()).unwrap());
        // The check-only pass: canonical output is canonical, a respelling
        // is judged as canonicalize judges it.
        prop_assert_eq!(is_canonical(&c), Ok(true));
        prop_assert_eq!(is_canonical(text.as_bytes()), Ok(c == text.as_bytes()));
    }

    /// One byte of a canonical document changed, dropped or doubled: the
    /// check-only pass answers as canonicalize does (the same error, or
    /// whether the result is the input).
    #[test]
    fn check_only_pass_agrees_on_damaged_documents(
        v in arb_json(),
        at in any::<prop::sample::Index>(),
        byte in prop_oneof![
            Just(b' '), Just(b'"'), Just(b'\\'), Just(b'0'), Just(b'9'), Just(b'.'), Just(b'e'),
            Just(b'-'), Just(b','), Just(b':'), Just(b'{'), Just(b'}'), Just(b'['), Just(b']'),
            Just(b'u'), Just(b'a'), Just(0x01u8), Just(0xc3u8), Just(0xffu8),
        ],
        how in 0u8..3,
    ) {
        let mut doc = canonicalize(serde_json::to_string(&v).unwrap().as_bytes()).unwrap();
        let i = at.index(doc.len());
        match how {
            0 => doc[i] = byte,
            1 => { doc.remove(i); }
            _ => doc.insert(i, byte),
        }
        let want = canonicalize(&doc).map(|c| c == doc);
        prop_assert_eq!(is_canonical(&doc), want, "{:?}", String::from_utf8_lossy(&doc));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// Every decimal literal (the fast path for short plain decimals among
    /// them) canonicalizes as its nearest double does through the general
    /// ECMAScript formatter.
    #[test]
    fn decimal_literals_canonicalize_as_their_double(
        negative in any::<bool>(),
        int in prop_oneof![Just(String::from("0")), "[1-9][0-9]{0,17}"],
        frac in "[0-9]{1,20}",
        zeros in 0usize..9,
    ) {
        let lit = format!("{}{int}.{}{frac}", if negative { "-" } else { "" }, "0".repeat(zeros));
        let v: f64 = lit.parse().unwrap();
        let mut want = Vec::new();
        smm_core::jcs::write_es6_number(&mut want, v);
        let got = canonicalize(lit.as_bytes()).unwrap();
        prop_assert_eq!(String::from_utf8(got).unwrap(), String::from_utf8(want).unwrap(), "{}", lit);
    }

    /// Strings come out right whatever the alignment of their special
    /// characters (the scan reads eight bytes at a time): the canonical form
    /// reads back as the string, has no raw control byte, and equals
    /// serde_json's writing of it (the same mandatory escapes).
    #[test]
    fn strings_canonicalize_at_any_alignment(s in "[\\x00-\\x7f\"\\\\é€😀]{0,40}", pad in 0usize..9) {
        let doc = format!("{}{}", " ".repeat(pad), serde_json::to_string(&s).unwrap());
        let got = canonicalize(doc.as_bytes()).unwrap();
        let back: String = serde_json::from_slice(&got).unwrap();
        prop_assert_eq!(&back, &s);
        // serde_json writes the same mandatory escapes as RFC 8785.
        prop_assert_eq!(String::from_utf8(got.clone()).unwrap(), serde_json::to_string(&s).unwrap());
        for (n, b) in got.iter().enumerate() {
            prop_assert!(*b >= 0x20, "raw control byte at {} in {:?}", n, String::from_utf8_lossy(&got));
        }
    }
}

/// Values with what the value writer treats apart: integers of the whole
/// 64-bit ranges, any finite double, keys whose UTF-8 and UTF-16 orders
/// differ, strings needing escapes.
fn arb_wide_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(|n| serde_json::json!(n)),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        prop::num::f64::NORMAL.prop_map(|f| serde_json::json!(f)),
        prop::num::f64::SUBNORMAL.prop_map(|f| serde_json::json!(f)),
        "[\\x00-\\x7f\"\\\\é\u{e000}\u{fb33}😀]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-c\u{e000}\u{fb33}😀\u{10000}]{0,3}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// Writing a value's canonical form directly gives what canonicalizing
    /// its JSON text gives: the same bytes, or the same error.
    #[test]
    fn value_writer_agrees_with_the_text_path(v in arb_wide_json()) {
        let text = serde_json::to_vec(&v).unwrap();
        prop_assert_eq!(smm_core::jcs::canonicalize_value(&v), canonicalize(&text));
        // And the writer straight from `Serialize`.
        prop_assert_eq!(smm_core::jcs::to_canonical_vec(&v), canonicalize(&text));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// The hash of canonical text without some members, taken from the
    /// text's bytes, is the hash of the value's pruned canonical form (the
    /// paths drawn from the value's own keys, so that they hit).
    #[test]
    fn pruned_text_hash_is_the_pruned_value_hash(
        members in prop::collection::btree_map("[a-c\u{e000}\u{fb33}😀\u{10000}\"]{0,3}", arb_wide_json(), 1..8),
        picks in prop::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>()), 1..4),
    ) {
        let v = Value::Object(members.into_iter().collect());
        let Ok(canonical) = smm_core::jcs::canonicalize_value(&v) else {
            return Ok(());
        };
        let text = String::from_utf8(canonical).unwrap();
        let mut paths: Vec<Vec<String>> = Vec::new();
        if let Value::Object(m) = &v {
            let keys: Vec<&String> = m.keys().collect();
            for (a, b) in &picks {
                if keys.is_empty() {
                    break;
                }
                let k = keys[a.index(keys.len())];
                match &m[k.as_str()] {
                    Value::Object(inner) if !inner.is_empty() => {
                        let inner_keys: Vec<&String> = inner.keys().collect();
                        paths.push(vec![k.clone(), inner_keys[b.index(inner_keys.len())].clone()]);
                    }
                    _ => paths.push(vec![k.clone()]),
                }
            }
        }
        let owned: Vec<Vec<&str>> = paths.iter().map(|p| p.iter().map(String::as_str).collect()).collect();
        let prune: Vec<&[&str]> = owned.iter().map(Vec::as_slice).collect();
        let want = smm_core::jcs::canonicalize_value_pruned(&v, &prune)
            .map(|c| smm_core::jcs::sha256_ref_of_canonical(&c));
        let got = smm_core::jcs::sha256_ref_of_pruned_text(&text, &prune, 0);
        // The text pass may decline (an escaped key on its walk), never differ.
        if got.is_some() || !text.contains('\\') {
            prop_assert_eq!(got, want, "{} {:?}", text, paths);
        }
    }
}

#[test]
fn value_writer_refuses_what_the_text_path_refuses() {
    use smm_core::jcs::{CanonicalError, MAX_DEPTH, canonicalize_value};
    let v = serde_json::json!({"a": [1, 9_007_199_254_740_993u64]});
    let e = canonicalize_value(&v).unwrap_err();
    assert!(matches!(e, CanonicalError::InexactInteger { .. }), "{e}");
    assert_eq!(e.pointer(), Some("/a/1"));
    assert_eq!(Err(e), canonicalize(&serde_json::to_vec(&v).unwrap()));
    let mut deep = Value::Null;
    for _ in 0..=MAX_DEPTH {
        deep = serde_json::json!({"k/~": [deep]});
    }
    let e = canonicalize_value(&deep).unwrap_err();
    assert!(matches!(e, CanonicalError::TooDeep { .. }), "{e}");
    assert_eq!(Err(e), canonicalize(&serde_json::to_vec(&deep).unwrap()));
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-1_000_000_000i64..1_000_000_000).prop_map(|n| serde_json::json!(n)),
        (-1e12..1e12f64).prop_map(|f| serde_json::json!(f)),
        "\\PC{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("\\PC{0,6}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
