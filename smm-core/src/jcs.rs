//! RFC 8785 JSON Canonicalization Scheme (JCS) over arbitrary JSON text.
//!
//! One pass parses the input and writes its canonical form: object members
//! sorted by the UTF-16 code units of their keys, no insignificant
//! whitespace, strings with only the mandatory escapes, numbers in the
//! ECMAScript `Number.prototype.toString` form. It rejects, with an error
//! naming the place by JSON pointer, what would make two different documents
//! hash alike or one document hash two ways:
//!
//! - duplicate keys in an object (which one would count?);
//! - lone surrogates in `\u` escapes (no Unicode string has them);
//! - integer literals that no IEEE double represents exactly (such as
//!   9007199254740993, which would hash like 9007199254740992), unless the
//!   literal is already the canonical spelling of its double (as in
//!   `123456789012345680000`, so canonical output stays canonical). Literals
//!   with a fraction or an exponent are, as RFC 8785 §3.2.2.3 prescribes,
//!   the nearest double;
//! - numbers outside the double range (1e400);
//! - nesting deeper than [`MAX_DEPTH`];
//! - anything that is not JSON (RFC 8259), including invalid UTF-8.
//!
//! ```
//! let c = smm_core::jcs::canonicalize(br#"{"b": 1.0e0, "a": [true, "\u0041"]}"#)?;
//! assert_eq!(c, br#"{"a":[true,"A"],"b":1}"#);
//! # Ok::<(), smm_core::jcs::CanonicalError>(())
//! ```

use std::cmp::Ordering;

mod ser;
pub use ser::to_canonical_vec;

use sha2::{Digest, Sha256};
use thiserror::Error;

/// Deepest nesting of arrays and objects accepted.
pub const MAX_DEPTH: usize = crate::limits::MAX_DEPTH;

/// Why a document has no canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CanonicalError {
    /// Not JSON.
    #[error("invalid JSON at byte {offset} (at {pointer:?}): {message}")]
    Syntax {
        /// Byte offset in the input.
        offset: usize,
        /// JSON pointer of the value being read.
        pointer: String,
        /// What is wrong.
        message: String,
    },
    /// An object has the same key twice.
    #[error("duplicate key {key:?} at {pointer:?}")]
    DuplicateKey {
        /// Pointer of the second occurrence.
        pointer: String,
        /// The key.
        key: String,
    },
    /// A `\u` escape is an unpaired surrogate.
    #[error("lone surrogate \\u{code:04x} at byte {offset} (at {pointer:?})")]
    LoneSurrogate {
        /// Byte offset of the escape.
        offset: usize,
        /// Pointer of the string.
        pointer: String,
        /// The surrogate.
        code: u16,
    },
    /// An integer literal is not exactly representable as an IEEE double.
    #[error(
        "integer {literal} at {pointer:?} is not exactly representable as an IEEE double (nearest: {nearest})"
    )]
    InexactInteger {
        /// Pointer of the number.
        pointer: String,
        /// The literal.
        literal: String,
        /// The double it would become.
        nearest: String,
    },
    /// A number overflows the double range.
    #[error("number {literal} at {pointer:?} is outside the IEEE double range")]
    NumberOutOfRange {
        /// Pointer of the number.
        pointer: String,
        /// The literal.
        literal: String,
    },
    /// Nesting deeper than [`MAX_DEPTH`].
    #[error("nesting deeper than {limit} at {pointer:?}")]
    TooDeep {
        /// Pointer of the value that is too deep.
        pointer: String,
        /// The limit.
        limit: usize,
    },
    /// The input is not UTF-8.
    #[error("input is not UTF-8 (byte {offset})")]
    InvalidUtf8 {
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// The document is longer than [`crate::limits::MAX_DOCUMENT_BYTES`].
    #[error("the document is {len} bytes, more than the limit of {limit}")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        limit: usize,
    },
}

impl CanonicalError {
    /// The JSON pointer of the place, when there is one.
    pub fn pointer(&self) -> Option<&str> {
        match self {
            CanonicalError::Syntax { pointer, .. }
            | CanonicalError::DuplicateKey { pointer, .. }
            | CanonicalError::LoneSurrogate { pointer, .. }
            | CanonicalError::InexactInteger { pointer, .. }
            | CanonicalError::NumberOutOfRange { pointer, .. }
            | CanonicalError::TooDeep { pointer, .. } => Some(pointer),
            CanonicalError::InvalidUtf8 { .. } | CanonicalError::TooLarge { .. } => None,
        }
    }

    /// Prefix the pointer with one reference token (errors bubble up from
    /// the value where they happened; paths are built only on failure).
    fn within(mut self, token: &str) -> Self {
        let t = escape_pointer_token(token);
        match &mut self {
            CanonicalError::Syntax { pointer, .. }
            | CanonicalError::DuplicateKey { pointer, .. }
            | CanonicalError::LoneSurrogate { pointer, .. }
            | CanonicalError::InexactInteger { pointer, .. }
            | CanonicalError::NumberOutOfRange { pointer, .. }
            | CanonicalError::TooDeep { pointer, .. } => {
                *pointer = format!("/{t}{pointer}");
            }
            CanonicalError::InvalidUtf8 { .. } | CanonicalError::TooLarge { .. } => {}
        }
        self
    }
}

/// True when `s` is a `sha256:` reference: the prefix and 64 lowercase hex
/// digits.
pub fn is_sha256_ref(s: &str) -> bool {
    s.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// Escape one reference token of a JSON pointer (RFC 6901 §4).
pub fn escape_pointer_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// A JSON pointer's parent pointer and its last reference token, unescaped
/// (`None` for the empty pointer).
pub fn split_pointer(pointer: &str) -> Option<(&str, String)> {
    let (parent, last) = pointer.rsplit_once('/')?;
    Some((parent, last.replace("~1", "/").replace("~0", "~")))
}

/// The JSON pointer (RFC 6901) of the place a `serde_path_to_error` error
/// happened.
pub fn path_pointer<E>(err: &serde_path_to_error::Error<E>) -> String {
    let mut pointer = String::new();
    for seg in err.path().iter() {
        use serde_path_to_error::Segment;
        match seg {
            Segment::Seq { index } => {
                pointer.push('/');
                pointer.push_str(&index.to_string());
            }
            Segment::Map { key } | Segment::Enum { variant: key } => {
                pointer.push('/');
                pointer.push_str(&escape_pointer_token(key));
            }
            Segment::Unknown => {}
        }
    }
    pointer
}

/// Serialize a value to JSON text (`pretty`: indented by two spaces). The
/// error, when a `Serialize` impl refuses, is its message, for the caller
/// to turn into its own internal error: nothing becomes `""` or `null`.
pub fn to_json_text<T: serde::Serialize + ?Sized>(
    value: &T,
    pretty: bool,
) -> Result<String, String> {
    let out = if pretty {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    };
    out.map_err(|e| format!("cannot serialize {}: {e}", std::any::type_name::<T>()))
}

/// Parse JSON text into `T` after checking it has one canonical form
/// (duplicate keys, lone surrogates and inexact numbers refused): the
/// shared front of the typed `from_json` parsers, in the crate and in the
/// bindings. A failure is the JSON pointer of the offending field and what
/// was wrong, for the caller's error type.
///
/// ```
/// #[derive(serde::Deserialize)]
/// struct Point { x: u32 }
/// let p: Point = smm_core::jcs::parse_typed(r#"{"x": 3}"#).unwrap();
/// assert_eq!(p.x, 3);
/// let (pointer, _why) = smm_core::jcs::parse_typed::<Point>(r#"{"x": -1}"#).err().unwrap();
/// assert_eq!(pointer, "/x");
/// let (_, why) = smm_core::jcs::parse_typed::<Point>(r#"{"x": 1, "x": 2}"#).err().unwrap();
/// assert!(why.contains("duplicate"), "{why}");
/// ```
pub fn parse_typed<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, (String, String)> {
    let checked = canonicalize(text.as_bytes())
        .map_err(|e| (e.pointer().unwrap_or("").to_string(), e.to_string()))?;
    serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(&checked))
        .map_err(|e| (path_pointer(&e), e.inner().to_string()))
}

/// The canonical form of a JSON document (at most
/// [`crate::limits::MAX_DOCUMENT_BYTES`] long).
pub fn canonicalize(input: &[u8]) -> Result<Vec<u8>, CanonicalError> {
    if input.len() > crate::limits::MAX_DOCUMENT_BYTES {
        return Err(CanonicalError::TooLarge {
            len: input.len(),
            limit: crate::limits::MAX_DOCUMENT_BYTES,
        });
    }
    let text = std::str::from_utf8(input).map_err(|e| CanonicalError::InvalidUtf8 {
        offset: e.valid_up_to(),
    })?;
    let mut p = Parser::new(text.as_bytes());
    let mut out = Vec::with_capacity(input.len());
    p.ws();
    p.value(&mut out)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(p.syntax("unexpected characters after the document"));
    }
    Ok(out)
}

/// Whether `input` is its own canonical form: the same answer as
/// `canonicalize(input).map(|c| c == input)`, errors included, without
/// writing the canonical form when the input already is one.
///
/// A verifier asks this of every payload it checks, and a payload that
/// passes is canonical (one valid encoding of the signed thing), so the
/// common answer is `Ok(true)`. A check-only pass reads the input once and
/// answers `true` only for what [`canonicalize`] copies unchanged; on
/// anything else (an input that is not canonical, has an error, or takes
/// a spelling this pass does not judge, such as a number with an exponent)
/// the answer is [`canonicalize`]'s own, so the two never disagree.
///
/// ```
/// use smm_core::jcs::is_canonical;
/// assert_eq!(is_canonical(br#"{"a":[1,"\n"],"b":1.5}"#), Ok(true));
/// assert_eq!(is_canonical(br#"{"b":1,"a":2}"#), Ok(false));
/// assert!(is_canonical(br#"{"a":1,"a":2}"#).is_err());
/// ```
pub fn is_canonical(input: &[u8]) -> Result<bool, CanonicalError> {
    match std::str::from_utf8(input) {
        Ok(text) => is_canonical_text(text),
        Err(_) => canonicalize(input).map(|c| c == input),
    }
}

/// [`is_canonical`] of text already known to be UTF-8 (a caller that
/// parses the same text next checks it once).
pub fn is_canonical_text(text: &str) -> Result<bool, CanonicalError> {
    let input = text.as_bytes();
    if surely_canonical(input) {
        return Ok(true);
    }
    canonicalize(input).map(|c| c == input)
}

/// The check-only pass over valid UTF-8: true only when [`canonicalize`]
/// would copy `input` unchanged.
fn surely_canonical(input: &[u8]) -> bool {
    if input.len() > crate::limits::MAX_DOCUMENT_BYTES {
        return false;
    }
    let mut c = Checker {
        s: input,
        i: 0,
        depth: 0,
        scratch: Vec::new(),
    };
    c.value().is_some() && c.i == input.len()
}

/// The reader of [`surely_canonical`]: `Some(())` when the value at `i` is
/// written exactly as [`canonicalize`] would write it (valid UTF-8 is
/// checked by the caller), `None` when in doubt.
struct Checker<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
    scratch: Vec<u8>,
}

impl Checker<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        (self.peek() == Some(b)).then(|| self.i += 1)
    }

    fn value(&mut self) -> Option<()> {
        match self.peek()? {
            b'{' => self.object(),
            b'[' => self.array(),
            b'"' => self.string().map(|_| ()),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        (self.s.get(self.i..self.i + word.len())? == word).then(|| self.i += word.len())
    }

    /// Into an array or object (canonicalize refuses the one past the limit).
    fn enter(&mut self) -> Option<()> {
        (self.depth < MAX_DEPTH).then(|| self.depth += 1)
    }

    fn array(&mut self) -> Option<()> {
        self.items(b']', Self::value)
    }

    /// Members in strictly increasing UTF-16 key order (so no duplicate);
    /// a key with an escape is left to the general path.
    fn object(&mut self) -> Option<()> {
        let mut previous = None;
        self.items(b'}', |c| {
            c.member_key(&mut previous)?;
            c.value()
        })
    }

    /// A member's key and its colon: a plain string (a key with an escape
    /// is left to the general path) after `previous` in UTF-16 order.
    /// Answers where its quote opened and where its text lies.
    fn member_key(
        &mut self,
        previous: &mut Option<(usize, usize)>,
    ) -> Option<(usize, (usize, usize))> {
        if self.peek() != Some(b'"') {
            return None;
        }
        let (start, plain) = self.string()?;
        let key = (start + 1, self.i - 1);
        if !plain {
            return None;
        }
        if let Some((a, b)) = *previous
            && cmp_utf16(self.s.get(a..b)?, self.s.get(key.0..key.1)?) != Ordering::Less
        {
            return None;
        }
        *previous = Some(key);
        self.eat(b':')?;
        Some((start, key))
    }

    /// An array or object: its opening byte, then `item`s separated by
    /// commas up to `close` (none at all: empty), one level deeper.
    fn items(&mut self, close: u8, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.enter()?;
        self.i += 1;
        if self.eat(close).is_none() {
            loop {
                item(self)?;
                if self.eat(b',').is_none() {
                    self.eat(close)?;
                    break;
                }
            }
        }
        self.depth -= 1;
        Some(())
    }

    /// A string with only the escapes canonical output writes; answers
    /// where it started and whether it had no escape at all.
    fn string(&mut self) -> Option<(usize, bool)> {
        let start = self.i;
        self.i += 1;
        let mut plain = true;
        loop {
            self.i = plain_run(self.s, self.i);
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    return Some((start, plain));
                }
                b'\\' => {
                    plain = false;
                    let n = match self.s.get(self.i + 1)? {
                        b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' => 2,
                        // \u00XX, lowercase, only for a control character
                        // without a short escape.
                        b'u' => {
                            let h = self.s.get(self.i + 2..self.i + 6)?;
                            let lower = |b: &u8| matches!(b, b'0'..=b'9' | b'a'..=b'f');
                            let code = match h {
                                [b'0', b'0', hi @ (b'0' | b'1'), lo] if lower(lo) => {
                                    (hi - b'0') * 16
                                        + if lo.is_ascii_digit() {
                                            lo - b'0'
                                        } else {
                                            lo - b'a' + 10
                                        }
                                }
                                _ => return None,
                            };
                            if matches!(code, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d) {
                                return None;
                            }
                            6
                        }
                        _ => return None,
                    };
                    self.i += n;
                }
                _ => return None, // a raw control character: an error
            }
        }
    }

    /// [`Self::value`], handing `out` the value's bytes without the
    /// members at `prune` (see [`sha256_ref_of_pruned_text`]); members kept
    /// keep their order, so the pieces are the pruned canonical form.
    fn pruned(&mut self, prune: &[&[&str]], out: &mut dyn FnMut(&[u8])) -> Option<()> {
        if prune.is_empty() || self.peek() != Some(b'{') {
            let start = self.i;
            self.value()?;
            out(self.s.get(start..self.i)?);
            return Some(());
        }
        out(b"{");
        let mut first = true;
        let mut previous = None;
        self.items(b'}', |c| {
            let (start, key) = c.member_key(&mut previous)?;
            // A plain key's bytes are its text: compared as they stand.
            let name = c.s.get(key.0..key.1)?;
            if prune
                .iter()
                .any(|p| matches!(p, [only] if only.as_bytes() == name))
            {
                return c.value();
            }
            if !first {
                out(b",");
            }
            first = false;
            out(c.s.get(start..c.i)?);
            // The paths that go on below this member (none: no allocation).
            let rest: Vec<&[&str]> = prune
                .iter()
                .filter(|p| matches!(p, [head, _, ..] if head.as_bytes() == name))
                .filter_map(|p| p.get(1..))
                .collect();
            c.pruned(&rest, out)
        })?;
        out(b"}");
        Some(())
    }

    /// A number written as canonicalize writes it ([`write_canonical_number`]
    /// spells it the same way).
    fn number(&mut self) -> Option<()> {
        let scan = scan_number(self.s, self.i).ok()?;
        let lit = self.s.get(self.i..scan.end)?;
        self.i = scan.end;
        self.scratch.clear();
        write_canonical_number(&mut self.scratch, lit, &scan).ok()?;
        (self.scratch == lit).then_some(())
    }
}

/// `"sha256:" + hex SHA-256` of the canonical text `text` without the
/// members at `prune` (paths of object keys from the root, as in
/// [`canonicalize_value_pruned`]), hashed from slices of `text` with no
/// copy and no parse into a tree: the hash of [`canonicalize_value_pruned`]
/// of `text`'s value. `enclosing` is how many arrays and objects are open
/// around `text` in the document it was cut from; the walk counts them
/// against [`MAX_DEPTH`].
///
/// `None` when this pass cannot vouch for the answer: `text` is not
/// canonical as [`is_canonical_text`]'s check-only pass reads it (an
/// escaped key among the members walked, say), it nests too deep, or the
/// result would be too long. The caller then asks the general path, which
/// says why.
///
/// ```
/// use smm_core::jcs::{sha256_ref, sha256_ref_of_pruned_text};
/// let full = r#"{"a":1,"b":{"c":2,"d":3},"e":[4]}"#;
/// assert_eq!(
///     sha256_ref_of_pruned_text(full, &[&["e"], &["b", "d"]], 0),
///     Some(sha256_ref(br#"{"a":1,"b":{"c":2}}"#).unwrap()),
/// );
/// assert_eq!(sha256_ref_of_pruned_text(r#"{"b":1,"a":2}"#, &[], 0), None);
/// ```
pub fn sha256_ref_of_pruned_text(
    text: &str,
    prune: &[&[&str]],
    enclosing: usize,
) -> Option<String> {
    let mut c = Checker {
        s: text.as_bytes(),
        i: 0,
        depth: enclosing,
        scratch: Vec::new(),
    };
    let mut hash = Sha256::new();
    let mut written = 0usize;
    c.pruned(prune, &mut |bytes| {
        written += bytes.len();
        hash.update(bytes);
    })?;
    (c.i == text.len() && written <= crate::limits::MAX_DOCUMENT_BYTES)
        .then(|| format!("sha256:{}", hex(&hash.finalize())))
}

/// The canonical form of a `serde_json` value, written from the value
/// directly (no JSON text in between): the same bytes, and the same errors
/// at the same pointers, as [`canonicalize`] of the value's JSON text
/// (integers beyond 2^53 that no double holds exactly, nesting deeper than
/// [`MAX_DEPTH`], a result longer than
/// [`crate::limits::MAX_DOCUMENT_BYTES`]).
pub fn canonicalize_value(value: &serde_json::Value) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::with_capacity(256);
    if write_value(&mut out, value, 0).is_err() {
        // The text path names the first offending place in the value's
        // own member order: report exactly what it reports.
        let text = serde_json::to_vec(value).map_err(|e| CanonicalError::Syntax {
            offset: 0,
            pointer: String::new(),
            message: e.to_string(),
        })?;
        return canonicalize(&text);
    }
    if out.len() > crate::limits::MAX_DOCUMENT_BYTES {
        return Err(CanonicalError::TooLarge {
            len: out.len(),
            limit: crate::limits::MAX_DOCUMENT_BYTES,
        });
    }
    Ok(out)
}

/// The canonical form of `value` without the members at `prune` (each a
/// path of object keys from the root; a path through a non-object, or to
/// no member, prunes nothing): the same bytes as [`canonicalize_value`] of
/// a copy of the value with those members removed, without the copy.
/// `None` when that copy has no canonical form or it is too long: the
/// caller makes the copy and asks [`canonicalize_value`], which says why
/// and where.
pub fn canonicalize_value_pruned(value: &serde_json::Value, prune: &[&[&str]]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(256);
    write_pruned(&mut out, value, 0, prune).ok()?;
    (out.len() <= crate::limits::MAX_DOCUMENT_BYTES).then_some(out)
}

fn write_pruned(
    out: &mut Vec<u8>,
    value: &serde_json::Value,
    depth: usize,
    prune: &[&[&str]],
) -> Result<(), Unwritable> {
    let serde_json::Value::Object(map) = value else {
        return write_value(out, value, depth);
    };
    if prune.is_empty() {
        return write_value(out, value, depth);
    }
    if depth >= MAX_DEPTH {
        return Err(Unwritable);
    }
    let members = in_utf16_order(
        map.iter()
            .filter(|(k, _)| !prune.iter().any(|p| matches!(p, [only] if only == k))),
    );
    out.push(b'{');
    for (n, (key, item)) in members.into_iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        write_canonical_str(out, key);
        out.push(b':');
        let deeper = |p: &[&str]| matches!(p, [first, _, ..] if first == key);
        if prune.iter().any(|p| deeper(p)) {
            let rest: Vec<&[&str]> = prune
                .iter()
                .filter(|p| deeper(p))
                .filter_map(|p| p.get(1..))
                .collect();
            write_pruned(out, item, depth + 1, &rest)?;
        } else {
            write_value(out, item, depth + 1)?;
        }
    }
    out.push(b'}');
    Ok(())
}

/// An object's members in RFC 8785 order (keys by UTF-16 code units). A
/// map iterates in UTF-8 (code point) order, which is UTF-16 order unless
/// two keys differ first between a supplementary character and
/// U+E000..U+FFFF: sort only then.
fn in_utf16_order<'a>(
    members: impl Iterator<Item = (&'a String, &'a serde_json::Value)>,
) -> Vec<(&'a String, &'a serde_json::Value)> {
    let mut members: Vec<_> = members.collect();
    let sorted = members.windows(2).all(
        |w| matches!(w, [a, b] if cmp_utf16(a.0.as_bytes(), b.0.as_bytes()) == Ordering::Less),
    );
    if !sorted {
        members.sort_by(|a, b| cmp_utf16(a.0.as_bytes(), b.0.as_bytes()));
    }
    members
}

/// A value [`write_value`] cannot write; the text path says why and where.
struct Unwritable;

fn write_value(
    out: &mut Vec<u8>,
    value: &serde_json::Value,
    depth: usize,
) -> Result<(), Unwritable> {
    use serde_json::Value;
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number_value(out, n).map_err(|_| Unwritable)?,
        Value::String(s) => write_canonical_str(out, s),
        Value::Array(items) => {
            if depth >= MAX_DEPTH {
                return Err(Unwritable);
            }
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_value(out, item, depth + 1)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            if depth >= MAX_DEPTH {
                return Err(Unwritable);
            }
            let members = in_utf16_order(map.iter());
            out.push(b'{');
            for (n, (key, item)) in members.into_iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                write_canonical_str(out, key);
                out.push(b':');
                write_value(out, item, depth + 1)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// A number of a `serde_json` value: integers within 2^53 as they are,
/// larger ones through the literal checks of the text path, doubles in the
/// ECMAScript form.
fn write_number_value(out: &mut Vec<u8>, n: &serde_json::Number) -> Result<(), CanonicalError> {
    const EXACT: u64 = 1 << 53;
    if let Some(u) = n.as_u64() {
        if u <= EXACT {
            write_decimal(out, u, false);
            return Ok(());
        }
    } else if let Some(i) = n.as_i64() {
        if i.unsigned_abs() <= EXACT {
            write_decimal(out, i.unsigned_abs(), i < 0);
            return Ok(());
        }
    } else if let Some(f) = n.as_f64() {
        write_es6_number(out, f);
        return Ok(());
    }
    // A large integer: read its literal as the text path does.
    let text = n.to_string();
    let mut p = Parser::new(text.as_bytes());
    p.number(out)
}

/// An integer's decimal digits (with a `-` when `negative`), written
/// without an intermediate `String`.
fn write_decimal(out: &mut Vec<u8>, n: u64, negative: bool) {
    if negative {
        out.push(b'-');
    }
    out.extend_from_slice(Decimal::new(n).as_bytes());
}

/// The decimal digits of a `u64`, written into a fixed buffer (no
/// allocation): shared by the canonical writer and the memory ledger's ids.
pub(crate) struct Decimal {
    digits: [u8; 20],
    start: usize,
}

impl Decimal {
    pub(crate) fn new(mut n: u64) -> Self {
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        loop {
            start -= 1;
            if let Some(d) = digits.get_mut(start) {
                *d = b'0' + (n % 10) as u8;
            }
            n /= 10;
            if n == 0 || start == 0 {
                break;
            }
        }
        Decimal { digits, start }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.digits.get(self.start..).unwrap_or(&[])
    }

    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
}

/// Write a string in canonical form: quoted, with only the mandatory
/// escapes.
pub(crate) fn write_canonical_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.push(b'"');
    let mut i = 0;
    loop {
        let end = plain_run(bytes, i);
        out.extend_from_slice(bytes.get(i..end).unwrap_or(&[]));
        let Some(&b) = bytes.get(end) else {
            break;
        };
        // A quote, a backslash or a control character: one byte, ASCII.
        write_canonical_char(out, char::from(b), &[b]);
        i = end + 1;
    }
    out.push(b'"');
}

/// `"sha256:" + hex(SHA-256(canonical form))`.
pub fn sha256_ref(input: &[u8]) -> Result<String, CanonicalError> {
    Ok(sha256_ref_of_canonical(&canonicalize(input)?))
}

/// `"sha256:" + hex(SHA-256(bytes))` for bytes already canonical.
pub fn sha256_ref_of_canonical(canonical: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(canonical)))
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(hex_digit(b >> 4)));
        s.push(char::from(hex_digit(b & 15)));
    }
    s
}

/// Lowercase hex digit of the low four bits.
fn hex_digit(n: u8) -> u8 {
    let n = n & 15;
    if n < 10 { b'0' + n } else { b'a' + n - 10 }
}

/// One object member while its object is being read: the key's unescaped
/// bytes in `keys`, the member's canonical bytes (`"key":value`) in `out`.
#[derive(Debug, Clone, Copy)]
struct Member {
    key: (usize, usize),
    bytes: (usize, usize),
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
    members: Vec<Member>,
    keys: Vec<u8>,
    scratch: Vec<u8>,
}

impl<'a> Parser<'a> {
    fn new(s: &'a [u8]) -> Self {
        Parser {
            s,
            i: 0,
            depth: 0,
            members: Vec::new(),
            keys: Vec::new(),
            scratch: Vec::new(),
        }
    }

    fn syntax(&self, message: &str) -> CanonicalError {
        CanonicalError::Syntax {
            offset: self.i,
            pointer: String::new(),
            message: message.to_string(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    fn literal(&mut self, word: &[u8], out: &mut Vec<u8>) -> Result<(), CanonicalError> {
        if self.s.get(self.i..self.i + word.len()) == Some(word) {
            self.i += word.len();
            out.extend_from_slice(word);
            Ok(())
        } else {
            Err(self.syntax("expected a JSON value"))
        }
    }

    fn value(&mut self, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
        match self.peek() {
            Some(b'{') => self.object(out),
            Some(b'[') => self.array(out),
            Some(b'"') => self.string(out, false),
            Some(b't') => self.literal(b"true", out),
            Some(b'f') => self.literal(b"false", out),
            Some(b'n') => self.literal(b"null", out),
            Some(b'-' | b'0'..=b'9') => self.number(out),
            Some(_) => Err(self.syntax("expected a JSON value")),
            None => Err(self.syntax("unexpected end of input")),
        }
    }

    fn enter(&mut self) -> Result<(), CanonicalError> {
        if self.depth >= MAX_DEPTH {
            return Err(CanonicalError::TooDeep {
                pointer: String::new(),
                limit: MAX_DEPTH,
            });
        }
        self.depth += 1;
        Ok(())
    }

    fn array(&mut self, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
        self.enter()?;
        self.i += 1;
        out.push(b'[');
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
        } else {
            let mut index = 0usize;
            loop {
                self.ws();
                self.value(out).map_err(|e| e.within(&index.to_string()))?;
                self.ws();
                match self.peek() {
                    Some(b',') => {
                        self.i += 1;
                        out.push(b',');
                        index += 1;
                    }
                    Some(b']') => {
                        self.i += 1;
                        break;
                    }
                    _ => return Err(self.syntax("expected ',' or ']' in array")),
                }
            }
        }
        out.push(b']');
        self.depth -= 1;
        Ok(())
    }

    fn object(&mut self, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
        self.enter()?;
        self.i += 1;
        let open = out.len();
        out.push(b'{');
        let base = self.members.len();
        let keys_base = self.keys.len();
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
        } else {
            loop {
                self.ws();
                if self.peek() != Some(b'"') {
                    return Err(self.syntax("expected a string key"));
                }
                let start = out.len();
                let key_start = self.keys.len();
                self.string(out, true)?;
                let key = (key_start, self.keys.len());
                self.ws();
                if self.peek() != Some(b':') {
                    return Err(self.syntax("expected ':' after an object key"));
                }
                self.i += 1;
                out.push(b':');
                self.ws();
                if let Err(e) = self.value(out) {
                    let k = String::from_utf8_lossy(self.keys.get(key.0..key.1).unwrap_or(&[]))
                        .into_owned();
                    return Err(e.within(&k));
                }
                self.members.push(Member {
                    key,
                    bytes: (start, out.len()),
                });
                self.ws();
                match self.peek() {
                    Some(b',') => {
                        self.i += 1;
                        out.push(b',');
                    }
                    Some(b'}') => {
                        self.i += 1;
                        break;
                    }
                    _ => return Err(self.syntax("expected ',' or '}' in object")),
                }
            }
        }
        self.finish_object(out, open, base)?;
        self.members.truncate(base);
        self.keys.truncate(keys_base);
        out.push(b'}');
        self.depth -= 1;
        Ok(())
    }

    /// Sort the members written after `open` by key (UTF-16 order), reject
    /// duplicates, and rewrite them in order when they were not sorted.
    fn finish_object(
        &mut self,
        out: &mut Vec<u8>,
        open: usize,
        base: usize,
    ) -> Result<(), CanonicalError> {
        let keys = &self.keys;
        let key_of = |m: &Member| keys.get(m.key.0..m.key.1).unwrap_or(&[]);
        let members = self.members.get_mut(base..).unwrap_or(&mut []);
        let sorted = members
            .windows(2)
            .all(|w| matches!(w, [a, b] if cmp_utf16(key_of(a), key_of(b)) == Ordering::Less));
        if sorted {
            return Ok(());
        }
        members.sort_by(|a, b| cmp_utf16(key_of(a), key_of(b)));
        if let Some(dup) = members.windows(2).find_map(|w| match w {
            [a, b] if key_of(a) == key_of(b) => Some(*b),
            _ => None,
        }) {
            let key = String::from_utf8_lossy(key_of(&dup)).into_owned();
            return Err(CanonicalError::DuplicateKey {
                pointer: format!("/{}", crate::jcs::escape_pointer_token(&key)),
                key,
            });
        }
        self.scratch.clear();
        self.scratch
            .extend_from_slice(out.get(open + 1..).unwrap_or(&[]));
        out.truncate(open + 1);
        for (n, m) in members.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            let (a, b) = (m.bytes.0 - open - 1, m.bytes.1 - open - 1);
            out.extend_from_slice(self.scratch.get(a..b).unwrap_or(&[]));
        }
        Ok(())
    }

    /// Read a string; write its canonical form to `out` and, for keys, its
    /// unescaped bytes to `self.keys`.
    fn string(&mut self, out: &mut Vec<u8>, key: bool) -> Result<(), CanonicalError> {
        self.i += 1; // opening quote
        out.push(b'"');
        loop {
            // Copy the run of bytes that need no attention.
            let run_start = self.i;
            self.i = plain_run(self.s, self.i);
            let run = self.s.get(run_start..self.i).unwrap_or(&[]);
            out.extend_from_slice(run);
            if key {
                self.keys.extend_from_slice(run);
            }
            match self.peek() {
                Some(b'"') => {
                    self.i += 1;
                    out.push(b'"');
                    return Ok(());
                }
                Some(b'\\') => self.escape(out, key)?,
                Some(_) => {
                    return Err(self.syntax("control character in a string (must be escaped)"));
                }
                None => return Err(self.syntax("unterminated string")),
            }
        }
    }

    fn hex4(&self, at: usize) -> Option<u16> {
        let h = self.s.get(at..at + 4)?;
        let text = std::str::from_utf8(h).ok()?;
        if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u16::from_str_radix(text, 16).ok()
    }

    fn escape(&mut self, out: &mut Vec<u8>, key: bool) -> Result<(), CanonicalError> {
        let at = self.i;
        let c: char = match self.s.get(self.i + 1).copied() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                let hi = self
                    .hex4(self.i + 2)
                    .ok_or_else(|| self.syntax("\\u must be followed by four hex digits"))?;
                let lone = |_: &Self, code| CanonicalError::LoneSurrogate {
                    offset: at,
                    pointer: String::new(),
                    code,
                };
                if (0xDC00..0xE000).contains(&hi) {
                    return Err(lone(self, hi));
                }
                if (0xD800..0xDC00).contains(&hi) {
                    let lo = if self.s.get(self.i + 6..self.i + 8) == Some(b"\\u") {
                        self.hex4(self.i + 8)
                    } else {
                        None
                    };
                    match lo {
                        Some(lo) if (0xDC00..0xE000).contains(&lo) => {
                            self.i += 6;
                            let cp = 0x10000
                                + ((u32::from(hi) - 0xD800) << 10)
                                + (u32::from(lo) - 0xDC00);
                            char::from_u32(cp).ok_or_else(|| lone(self, hi))?
                        }
                        _ => return Err(lone(self, hi)),
                    }
                } else {
                    char::from_u32(u32::from(hi)).ok_or_else(|| lone(self, hi))?
                }
            }
            _ => return Err(self.syntax("invalid escape in a string")),
        };
        self.i += if self.s.get(self.i + 1) == Some(&b'u') {
            6
        } else {
            2
        };
        let mut buf = [0u8; 4];
        let utf8 = c.encode_utf8(&mut buf).as_bytes();
        if key {
            self.keys.extend_from_slice(utf8);
        }
        write_canonical_char(out, c, utf8);
        Ok(())
    }

    fn number(&mut self, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
        let scan =
            scan_number(self.s, self.i).map_err(|(offset, message)| CanonicalError::Syntax {
                offset,
                pointer: String::new(),
                message: message.into(),
            })?;
        let lit = self.s.get(self.i..scan.end).unwrap_or(&[]);
        self.i = scan.end;
        let literal = || String::from_utf8_lossy(lit).into_owned();
        write_canonical_number(out, lit, &scan).map_err(|problem| match problem {
            NumberProblem::Invalid => self.syntax("invalid number"),
            NumberProblem::OutOfRange => CanonicalError::NumberOutOfRange {
                pointer: String::new(),
                literal: literal(),
            },
            NumberProblem::Inexact { nearest } => CanonicalError::InexactInteger {
                pointer: String::new(),
                literal: literal(),
                nearest,
            },
        })
    }
}

/// A JSON number's literal, as scanned by [`scan_number`].
struct NumberScan {
    /// Where the literal ends.
    end: usize,
    /// How many digits its integer part has.
    int_digits: usize,
    /// No fraction and no exponent.
    integer: bool,
}

/// Scan the number literal starting at `s[at]` (RFC 8259's grammar: a
/// minus, integer digits without a leading zero, a fraction, an exponent),
/// or say where and why it is not one.
fn scan_number(s: &[u8], at: usize) -> Result<NumberScan, (usize, &'static str)> {
    let mut i = at;
    let digits = |i: &mut usize| -> usize {
        let from = *i;
        while let Some(b'0'..=b'9') = s.get(*i) {
            *i += 1;
        }
        *i - from
    };
    if s.get(i) == Some(&b'-') {
        i += 1;
    }
    let int_start = i;
    let int_digits = digits(&mut i);
    if int_digits == 0 {
        return Err((i, "a number needs digits"));
    }
    if int_digits > 1 && s.get(int_start) == Some(&b'0') {
        return Err((int_start, "leading zeros are not allowed in numbers"));
    }
    let mut integer = true;
    if s.get(i) == Some(&b'.') {
        integer = false;
        i += 1;
        if digits(&mut i) == 0 {
            return Err((i, "a fraction needs digits"));
        }
    }
    if let Some(b'e' | b'E') = s.get(i) {
        integer = false;
        i += 1;
        if let Some(b'+' | b'-') = s.get(i) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return Err((i, "an exponent needs digits"));
        }
    }
    Ok(NumberScan {
        end: i,
        int_digits,
        integer,
    })
}

/// Why a number literal has no canonical spelling.
enum NumberProblem {
    /// Not a number Rust's float parser reads (cannot happen after a scan).
    Invalid,
    /// Beyond the double range.
    OutOfRange,
    /// An integer literal no double holds exactly (its nearest double).
    Inexact { nearest: String },
}

/// Write the canonical spelling of the number literal `lit` (scanned as
/// `scan`). Three rules, in this order: an integer of at most 15 digits is
/// exact and written as it is (`-0` as `0`); a short plain decimal is its
/// trimmed literal ([`write_plain_decimal`]); anything else is its double's
/// ECMAScript spelling, and an integer literal must then denote that double
/// exactly, or already be its spelling (which keeps canonical output
/// canonical when read again). Both the canonicalizer and the check-only
/// pass spell numbers here.
fn write_canonical_number(
    out: &mut Vec<u8>,
    lit: &[u8],
    scan: &NumberScan,
) -> Result<(), NumberProblem> {
    if scan.integer && scan.int_digits <= 15 {
        out.extend_from_slice(if lit == b"-0" { b"0" } else { lit });
        return Ok(());
    }
    if write_plain_decimal(out, lit) {
        return Ok(());
    }
    let text = std::str::from_utf8(lit).map_err(|_| NumberProblem::Invalid)?;
    let v: f64 = text.parse().map_err(|_| NumberProblem::Invalid)?;
    if !v.is_finite() {
        return Err(NumberProblem::OutOfRange);
    }
    let canonical_start = out.len();
    write_es6_number(out, v);
    if scan.integer {
        let exact = format!("{:.0}", v.abs());
        if exact != text.trim_start_matches('-') && out.get(canonical_start..) != Some(lit) {
            return Err(NumberProblem::Inexact {
                nearest: format!("{}{exact}", if v < 0.0 { "-" } else { "" }),
            });
        }
    }
    Ok(())
}

/// Write one character of a string in canonical form.
#[inline]
fn write_canonical_char(out: &mut Vec<u8>, c: char, utf8: &[u8]) {
    match c {
        '"' => out.extend_from_slice(b"\\\""),
        '\\' => out.extend_from_slice(b"\\\\"),
        '\u{8}' => out.extend_from_slice(b"\\b"),
        '\u{c}' => out.extend_from_slice(b"\\f"),
        '\n' => out.extend_from_slice(b"\\n"),
        '\r' => out.extend_from_slice(b"\\r"),
        '\t' => out.extend_from_slice(b"\\t"),
        c if (c as u32) < 0x20 => {
            let n = c as u8;
            out.extend_from_slice(b"\\u00");
            out.push(hex_digit(n >> 4));
            out.push(hex_digit(n));
        }
        _ => out.extend_from_slice(utf8),
    }
}

/// Compare UTF-8 strings by their UTF-16 code units (RFC 8785 §3.2.3).
///
/// UTF-8 byte order is code point order, which agrees with UTF-16 order
/// except between supplementary characters (lead byte F0..F4, surrogates in
/// UTF-16) and U+E000..U+FFFF (lead byte EE or EF), where it is reversed.
pub fn cmp_utf16(a: &[u8], b: &[u8]) -> Ordering {
    match a.iter().zip(b).find(|(x, y)| x != y) {
        None => a.len().cmp(&b.len()),
        Some((&x, &y)) => {
            let supplementary = |v: u8| v >= 0xF0;
            let high_bmp = |v: u8| v == 0xEE || v == 0xEF;
            if (supplementary(x) && high_bmp(y)) || (high_bmp(x) && supplementary(y)) {
                y.cmp(&x)
            } else {
                x.cmp(&y)
            }
        }
    }
}

/// The first byte at or after `i` that a string cannot copy as it is: a
/// quote, a backslash or a control character (`s.len()` when there is none).
/// Eight bytes at a time: a byte is flagged when it equals `"` or `\` or is
/// below 0x20, by the borrow tricks of "Bit Twiddling Hacks" (`haszero`,
/// `hasless`); their lowest flag is always a real one, and the lowest is the
/// one taken.
#[inline]
fn plain_run(s: &[u8], mut i: usize) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = s.get(i..i + 8) {
        let Ok(bytes) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        let x = u64::from_le_bytes(bytes);
        let quote = x ^ (LO * u64::from(b'"'));
        let backslash = x ^ (LO * u64::from(b'\\'));
        let flags = ((quote.wrapping_sub(LO) & !quote)
            | (backslash.wrapping_sub(LO) & !backslash)
            | (x.wrapping_sub(LO * 0x20) & !x))
            & HI;
        if flags != 0 {
            return i + (flags.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&b) = s.get(i) {
        if b == b'"' || b == b'\\' || b < 0x20 {
            break;
        }
        i += 1;
    }
    i
}

/// Write the canonical form of a decimal literal without an exponent whose
/// canonical form is the literal itself, trimmed: at most 15 significant
/// digits (so its double's shortest round-trip spelling is those digits: no
/// other decimal of 15 digits or fewer reads as the same double) and a
/// magnitude ECMAScript prints without an exponent (at least 1e-6). False,
/// writing nothing, for any other literal (the general path handles it).
fn write_plain_decimal(out: &mut Vec<u8>, lit: &[u8]) -> bool {
    let (negative, body) = match lit.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, lit),
    };
    let Some(dot) = body.iter().position(|&b| b == b'.') else {
        return false;
    };
    let (int, frac) = (
        body.get(..dot).unwrap_or(&[]),
        body.get(dot + 1..).unwrap_or(&[]),
    );
    if !int.iter().chain(frac).all(u8::is_ascii_digit) {
        return false;
    }
    let frac_len = frac.iter().rposition(|&b| b != b'0').map_or(0, |p| p + 1);
    let frac = frac.get(..frac_len).unwrap_or(&[]);
    let zero_int = int == b"0";
    let significant = if zero_int {
        let leading = frac.iter().take_while(|&&b| b == b'0').count();
        if leading > 5 {
            return false;
        }
        frac.len() - leading
    } else {
        int.len() + frac.len()
    };
    if significant > 15 {
        return false;
    }
    if zero_int && frac.is_empty() {
        out.push(b'0');
        return true;
    }
    if negative {
        out.push(b'-');
    }
    out.extend_from_slice(int);
    if !frac.is_empty() {
        out.push(b'.');
        out.extend_from_slice(frac);
    }
    true
}

/// Write a finite double as ECMAScript's `Number.prototype.toString` does.
pub fn write_es6_number(out: &mut Vec<u8>, v: f64) {
    if v == 0.0 {
        out.push(b'0');
        return;
    }
    if v < 0.0 {
        out.push(b'-');
    }
    // Shortest round-trip digits and decimal exponent, from ryu's output
    // (at most 17 significant digits, in `1.5e-7`, `0.001` or `123.0`
    // form), without allocating.
    let mut buf = ryu::Buffer::new();
    let text = buf.format_finite(v.abs()).as_bytes();
    let mut digits = [0u8; 24];
    let mut k = 0usize;
    let (mut seen, mut leading, mut point, mut exp) = (0i32, 0i32, None, 0i32);
    let mut bytes = text.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b'0'..=b'9' => {
                if k == 0 && b == b'0' {
                    leading += 1;
                } else if let Some(d) = digits.get_mut(k) {
                    *d = b;
                    k += 1;
                }
                seen += 1;
            }
            b'.' => point = Some(seen),
            b'e' | b'E' => {
                let (sign, mut magnitude) = (bytes.clone().next() == Some(&b'-'), 0i32);
                for &d in bytes.by_ref() {
                    if d.is_ascii_digit() {
                        magnitude = magnitude * 10 + i32::from(d - b'0');
                    }
                }
                exp = if sign { -magnitude } else { magnitude };
            }
            _ => {}
        }
    }
    let mut digits = digits.get(..k).unwrap_or(&[]);
    while let Some((b'0', rest)) = digits.split_last() {
        digits = rest;
    }
    // value = 0.d1d2...dk x 10^n
    let k = digits.len() as i32;
    let n = point.unwrap_or(seen) - leading + exp;
    if k <= n && n <= 21 {
        out.extend_from_slice(digits);
        out.extend(std::iter::repeat_n(b'0', (n - k) as usize));
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(n as usize);
        out.extend_from_slice(int);
        out.push(b'.');
        out.extend_from_slice(frac);
    } else if -6 < n && n <= 0 {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', (-n) as usize));
        out.extend_from_slice(digits);
    } else {
        let e = n - 1;
        if let Some((first, rest)) = digits.split_first() {
            out.push(*first);
            if !rest.is_empty() {
                out.push(b'.');
                out.extend_from_slice(rest);
            }
        }
        out.push(b'e');
        out.push(if e < 0 { b'-' } else { b'+' });
        let e = e.unsigned_abs();
        for (place, always) in [(100, false), (10, false), (1, true)] {
            if always || e >= place {
                out.push(b'0' + ((e / place) % 10) as u8);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_written_as_display_writes_them() {
        for n in [0u64, 1, 9, 10, 99, 100, 1 << 53, u64::MAX] {
            let mut out = Vec::new();
            write_decimal(&mut out, n, false);
            assert_eq!(out, n.to_string().into_bytes());
        }
        for i in [-1i64, -10, -(1 << 53), i64::MIN] {
            let mut out = Vec::new();
            write_decimal(&mut out, i.unsigned_abs(), true);
            assert_eq!(out, i.to_string().into_bytes());
        }
    }

    fn c(s: &str) -> String {
        String::from_utf8(canonicalize(s.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn numbers() {
        for (input, want) in [
            ("1", "1"),
            ("1.0", "1"),
            ("1e0", "1"),
            ("-0", "0"),
            ("-0.0", "0"),
            ("1E30", "1e+30"),
            ("4.50", "4.5"),
            ("2e-3", "0.002"),
            ("0.000000000000000000000000001", "1e-27"),
            ("333333333.33333329", "333333333.3333333"),
            ("1e21", "1e+21"),
            ("1e20", "100000000000000000000"),
            ("123456789012345678", "123456789012345680"),
            ("9007199254740992", "9007199254740992"),
            ("0.000001", "0.000001"),
            ("0.0000001", "1e-7"),
            ("5e-324", "5e-324"),
            ("-1.5", "-1.5"),
        ] {
            let got = canonicalize(input.as_bytes());
            if input == "123456789012345678" {
                assert!(
                    matches!(got, Err(CanonicalError::InexactInteger { .. })),
                    "{input}"
                );
                continue;
            }
            assert_eq!(String::from_utf8(got.unwrap()).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn rejects_what_would_collide() {
        let e = canonicalize(b"{\"id\": [1, 9007199254740993]}").unwrap_err();
        assert_eq!(e.pointer(), Some("/id/1"), "{e}");
        assert!(e.to_string().contains("9007199254740992"));
        let e = canonicalize(br#"{"a": {"x": 1, "y": 2, "x": 3}}"#).unwrap_err();
        assert!(matches!(e, CanonicalError::DuplicateKey { .. }));
        assert_eq!(e.pointer(), Some("/a/x"));
        let e = canonicalize(br#"["\ud800"]"#).unwrap_err();
        assert!(
            matches!(e, CanonicalError::LoneSurrogate { code: 0xd800, .. }),
            "{e}"
        );
        assert!(matches!(
            canonicalize(br#""\udc00\ud800""#),
            Err(CanonicalError::LoneSurrogate { .. })
        ));
        assert!(matches!(
            canonicalize(b"1e400"),
            Err(CanonicalError::NumberOutOfRange { .. })
        ));
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(matches!(
            canonicalize(deep.as_bytes()),
            Err(CanonicalError::TooDeep { .. })
        ));
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(canonicalize(ok.as_bytes()).is_ok());
        assert!(matches!(
            canonicalize(b"\"\xff\""),
            Err(CanonicalError::InvalidUtf8 { .. })
        ));
    }

    #[test]
    fn syntax_errors() {
        for bad in [
            "",
            "{",
            "[1,]",
            "{\"a\" 1}",
            "01",
            "1.",
            "-",
            "tru",
            "\"a\nb\"",
            "{} {}",
            "[1 2]",
            "{1: 2}",
            "\"\\x\"",
        ] {
            assert!(
                matches!(
                    canonicalize(bad.as_bytes()),
                    Err(CanonicalError::Syntax { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn check_only_pass_accepts_canonical_documents_itself() {
        let deep = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        for doc in [
            r#"{"a":[1,-2,0,1.5,-0.25,0.000001,123456789012345,true,false,null],"b":{}}"#,
            r#"["\"\\\b\f\n\r\t\u0000\u001f","€","\u000b"]"#,
            "{\"\u{1f602}\":2,\"\u{fb33}\":1,\"\u{ffff}\":[]}",
            r#"{"":0,"a":{"":[[]]},"aa":"x"}"#,
            "[1e-7,1e+21,-1.5e-300,0.7559505602465842,123456789012345680,5e-324]",
            "\"\u{2028}\u{7f}\"",
            deep.as_str(),
        ] {
            assert_eq!(
                canonicalize(doc.as_bytes()).as_deref(),
                Ok(doc.as_bytes()),
                "{doc}"
            );
            assert!(surely_canonical(doc.as_bytes()), "{doc}");
            assert_eq!(is_canonical(doc.as_bytes()), Ok(true));
        }
    }

    #[test]
    fn check_only_pass_answers_as_canonicalize_does() {
        let too_deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        let inputs: Vec<&[u8]> = vec![
            b" 1",
            b"1 ",
            b"[1, 2]",
            br#"{"b":1,"a":2}"#,
            br#"{"a":1,"a":2}"#,
            br#"{"a\u0062":1,"ab":2}"#,
            br#"{"a\"":1,"a":2}"#,
            br#"{"a":1,"a\"":2}"#,
            "{\"\u{fb33}\":1,\"\u{1f602}\":2}".as_bytes(),
            br#""\/""#,
            br#""\u0041""#,
            br#""\u000a""#,
            br#""\u000A""#,
            br#""\u001F""#,
            br#""\u0080""#,
            br#""\ud83d\ude02""#,
            br#""\ud800""#,
            b"\"\x01\"",
            b"\"\xff\"",
            b"1.0",
            b"1.50",
            b"-0",
            b"-0.0",
            b"0.0000001",
            b"1e3",
            b"1E3",
            b"1.5e3",
            b"1234567890123456",
            b"9007199254740993",
            b"100000000000000000000",
            b"1e400",
            b"-1e400",
            b"1e-400",
            b"0e0",
            b"-01",
            b"1e",
            b"1e+",
            b"1.e3",
            b"123456789012345680000",
            b"-9007199254740993",
            b"9007199254740992",
            b"[1e400,1]",
            b"01",
            b"1.",
            b"-",
            b"[1,]",
            b"{\"a\":1,}",
            b"[1]x",
            b"",
            b"tru",
            too_deep.as_bytes(),
        ];
        for input in inputs {
            let want = canonicalize(input).map(|c| c == input);
            assert_eq!(
                is_canonical(input),
                want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
            if want != Ok(true) && std::str::from_utf8(input).is_ok() {
                assert!(
                    !surely_canonical(input),
                    "{:?}",
                    String::from_utf8_lossy(input)
                );
            }
        }
    }

    /// A malformed number is named where it goes wrong, in a document too.
    #[test]
    fn number_syntax_errors_say_where() {
        for (input, offset, message) in [
            ("-01", 1, "leading zeros are not allowed in numbers"),
            ("[1,-]", 4, "a number needs digits"),
            ("1.x", 2, "a fraction needs digits"),
            ("{\"a\":1e+}", 8, "an exponent needs digits"),
        ] {
            match canonicalize(input.as_bytes()) {
                Err(CanonicalError::Syntax {
                    offset: o,
                    message: m,
                    ..
                }) => assert_eq!((o, m.as_str()), (offset, message), "{input}"),
                other => panic!("{input}: {other:?}"),
            }
            assert_eq!(
                is_canonical(input.as_bytes()),
                canonicalize(input.as_bytes()).map(|_| true)
            );
        }
    }

    #[test]
    fn strings_and_sorting() {
        assert_eq!(c(r#""\u20ac\/\u000f\u007f""#), "\"€/\\u000f\u{7f}\"");
        assert_eq!(
            c(r#"{"b":1,"a":{"d":[],"c":null}}"#),
            r#"{"a":{"c":null,"d":[]},"b":1}"#
        );
        // U+1F602 (surrogates D83D DE02) sorts before U+FB33 in UTF-16.
        assert_eq!(
            c("{\"\u{fb33}\":1,\"\u{1f602}\":2}"),
            "{\"\u{1f602}\":2,\"\u{fb33}\":1}"
        );
        assert_eq!(c(" [ 1 , { } ] "), "[1,{}]");
    }
}
