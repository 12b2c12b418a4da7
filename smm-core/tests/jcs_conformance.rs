//! RFC 8785 conformance: the cyberphone test vectors and the ES6 number list
//! (copied with provenance into tests/data/jcs/).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code"
)]

use std::path::Path;

use smm_core::jcs::{canonicalize, is_canonical, write_es6_number};

fn data() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/jcs")
}

#[test]
fn cyberphone_vectors() {
    let mut n = 0;
    for entry in std::fs::read_dir(data().join("input")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let input = std::fs::read(&path).unwrap();
        let expected = std::fs::read(data().join("output").join(&name)).unwrap();
        let got = canonicalize(&input).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&expected),
            "{name}"
        );
        let hex: String =
            std::fs::read_to_string(data().join("outhex").join(name.replace(".json", ".txt")))
                .unwrap()
                .split_whitespace()
                .collect();
        let got_hex: String = got.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(got_hex, hex, "{name} (hex)");
        // Canonical output is a fixed point.
        assert_eq!(canonicalize(&got).unwrap(), got, "{name} is not idempotent");
        // The check-only pass: the output is canonical, the input is not.
        assert_eq!(is_canonical(&got), Ok(true), "{name}");
        assert_eq!(is_canonical(&input), Ok(input == got), "{name} (input)");
        n += 1;
    }
    assert_eq!(n, 6);
}

#[test]
fn es6_number_serialization() {
    let text = std::fs::read_to_string(data().join("es6numbers-10k.txt")).unwrap();
    let mut n = 0;
    for line in text.lines() {
        let (hex, expected) = line.split_once(',').unwrap();
        let v = f64::from_bits(u64::from_str_radix(hex, 16).unwrap());
        let mut out = Vec::new();
        write_es6_number(&mut out, v);
        assert_eq!(std::str::from_utf8(&out).unwrap(), expected, "{hex}");
        // And the canonical form of that text is itself.
        assert_eq!(
            canonicalize(expected.as_bytes()).unwrap(),
            expected.as_bytes(),
            "{hex}"
        );
        assert_eq!(is_canonical(expected.as_bytes()), Ok(true), "{hex}");
        n += 1;
    }
    assert_eq!(n, 10_000);
}
