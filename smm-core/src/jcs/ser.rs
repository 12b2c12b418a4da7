//! The RFC 8785 form written straight from a `Serialize` value: no JSON
//! text written and read back in between.
//!
//! Each object's members are written as they come (a struct's in
//! declaration order) and, when that is not RFC 8785 order, moved into
//! order once the object is complete; members of every open object share
//! one stack, so a value costs no allocation per object. Whatever this
//! writer does not handle itself (a float of 32 bits, byte strings,
//! non-string map keys, an escaped key, a duplicate key, an integer beyond
//! 2^53, nesting past [`MAX_DEPTH`]) it declines, and
//! [`to_canonical_vec`] answers through the general path instead, so the
//! bytes and the errors are always those of [`canonicalize`] of
//! `serde_json`'s text.

use std::cmp::Ordering;

use serde::Serialize;
use serde::ser::{self, Impossible};

use super::{
    CanonicalError, MAX_DEPTH, canonicalize, cmp_utf16, write_canonical_str, write_es6_number,
    write_number_value,
};

/// The RFC 8785 form of `value`: the same bytes, and the same errors, as
/// [`canonicalize`] of `serde_json::to_vec(value)`, without that text.
///
/// ```
/// use smm_core::jcs::{canonicalize, to_canonical_vec};
/// #[derive(serde::Serialize)]
/// struct Event { sequence: u64, actor: &'static str, at: f64 }
/// let e = Event { sequence: 7, actor: "system", at: 1.5e-7 };
/// let want = canonicalize(&serde_json::to_vec(&e).unwrap()).unwrap();
/// assert_eq!(to_canonical_vec(&e).unwrap(), want);
/// assert_eq!(want, br#"{"actor":"system","at":1.5e-7,"sequence":7}"#);
/// ```
pub fn to_canonical_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    let mut w = Writer {
        out: Vec::with_capacity(1024),
        members: Vec::new(),
        depth: 0,
        scratch: Vec::new(),
        order: Vec::new(),
    };
    match value.serialize(&mut w) {
        Ok(()) if w.out.len() <= crate::limits::MAX_DOCUMENT_BYTES => Ok(w.out),
        // Declined: the general path writes it, or says why it cannot.
        _ => {
            let text = serde_json::to_vec(value).map_err(|e| CanonicalError::Syntax {
                offset: 0,
                pointer: String::new(),
                message: e.to_string(),
            })?;
            canonicalize(&text)
        }
    }
}

/// What the writer leaves to the general path.
#[derive(Debug)]
pub(super) struct Declined;

impl std::fmt::Display for Declined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("left to the general path")
    }
}

impl std::error::Error for Declined {}

impl ser::Error for Declined {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Declined
    }
}

/// A member written into `out`: `"key":value` from `start` to `end`, the
/// key's quoted form ending at `key_end`.
#[derive(Clone, Copy)]
struct Member {
    start: usize,
    key_end: usize,
    end: usize,
    /// The key's first eight bytes, big-endian, zero-padded: for a key
    /// with no escape and no byte from 0xEE up, comparing these compares
    /// the keys unless both are equal (then the bytes decide).
    prefix: u64,
    /// An escape (declined) or a byte from 0xEE up (compared by
    /// [`cmp_utf16`]).
    special: bool,
}

struct Writer {
    out: Vec<u8>,
    /// The members of every object still open, innermost last.
    members: Vec<Member>,
    depth: usize,
    /// Reused by [`Writer::close_object`]: an object's body, its members
    /// in order.
    scratch: Vec<u8>,
    order: Vec<Member>,
}

impl Writer {
    fn enter(&mut self) -> Result<(), Declined> {
        if self.depth >= MAX_DEPTH {
            return Err(Declined);
        }
        self.depth += 1;
        Ok(())
    }

    fn number(&mut self, n: serde_json::Number) -> Result<(), Declined> {
        write_number_value(&mut self.out, &n).map_err(|_| Declined)
    }

    /// The member from `start` to the end of `out`, its key's quoted form
    /// ending at `key_end`.
    fn member(&self, start: usize, key_end: usize) -> Member {
        let key = self.out.get(start + 1..key_end - 1).unwrap_or(&[]);
        let mut head = [0u8; 8];
        for (h, k) in head.iter_mut().zip(key) {
            *h = *k;
        }
        Member {
            start,
            key_end,
            end: self.out.len(),
            prefix: u64::from_be_bytes(head),
            special: key.iter().any(|&b| b == b'\\' || b >= 0xEE),
        }
    }

    /// RFC 8785 order of two members' keys; an escaped key is declined.
    fn key_order(&self, a: &Member, b: &Member) -> Result<Ordering, Declined> {
        if !(a.special || b.special) {
            return Ok(a
                .prefix
                .cmp(&b.prefix)
                .then_with(|| self.key_text(a).cmp(self.key_text(b))));
        }
        let (ka, kb) = (self.key_text(a), self.key_text(b));
        if ka.contains(&b'\\') || kb.contains(&b'\\') {
            return Err(Declined);
        }
        Ok(cmp_utf16(ka, kb))
    }

    /// A key's text as written (between its quotes).
    fn key_text(&self, m: &Member) -> &[u8] {
        self.out.get(m.start + 1..m.key_end - 1).unwrap_or(&[])
    }

    /// Close the object opened at `open` whose members start at `base` on
    /// the stack: put them in RFC 8785 order if they are not.
    fn close_object(&mut self, open: usize, base: usize) -> Result<(), Declined> {
        let members = self.members.get(base..).unwrap_or(&[]);
        let mut sorted = true;
        for pair in members.windows(2) {
            let [a, b] = pair else { continue };
            match self.key_order(a, b)? {
                Ordering::Less => {}
                Ordering::Equal => return Err(Declined),
                Ordering::Greater => sorted = false,
            }
        }
        if !sorted {
            let mut order = std::mem::take(&mut self.order);
            order.clear();
            order.extend_from_slice(members);
            // Keys are distinct and escape-free (checked above): any
            // order the comparison gives is the only one.
            let this = &*self;
            order.sort_unstable_by(|a, b| this.key_order(a, b).unwrap_or(Ordering::Equal));
            self.scratch.clear();
            self.scratch
                .extend_from_slice(self.out.get(open + 1..).unwrap_or(&[]));
            self.out.truncate(open + 1);
            for (n, m) in order.iter().enumerate() {
                if n > 0 {
                    self.out.push(b',');
                }
                let piece = self
                    .scratch
                    .get(m.start - open - 1..m.end - open - 1)
                    .ok_or(Declined)?;
                self.out.extend_from_slice(piece);
            }
            self.order = order;
        }
        self.members.truncate(base);
        self.out.push(b'}');
        self.depth -= 1;
        Ok(())
    }
}

/// An array being written.
struct Seq<'a> {
    w: &'a mut Writer,
    first: bool,
}

impl Seq<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Declined> {
        if !self.first {
            self.w.out.push(b',');
        }
        self.first = false;
        value.serialize(&mut *self.w)
    }

    fn close(self) -> Result<(), Declined> {
        self.w.out.push(b']');
        self.w.depth -= 1;
        Ok(())
    }
}

/// An object being written: where its `{` is, where its members start on
/// the stack, and (for a map) the member whose key is written.
struct Obj<'a> {
    w: &'a mut Writer,
    open: usize,
    base: usize,
    pending: Option<(usize, usize)>,
    /// Closing braces owed after this object's own (a variant's wrapper).
    wrappers: usize,
}

impl Obj<'_> {
    fn begin_member(&mut self) -> usize {
        if self.w.members.len() > self.base {
            self.w.out.push(b',');
        }
        self.w.out.len()
    }

    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), Declined> {
        let start = self.begin_member();
        write_canonical_str(&mut self.w.out, key);
        let key_end = self.w.out.len();
        self.w.out.push(b':');
        value.serialize(&mut *self.w)?;
        let m = self.w.member(start, key_end);
        self.w.members.push(m);
        Ok(())
    }

    fn close(self) -> Result<(), Declined> {
        let Obj {
            w,
            open,
            base,
            wrappers,
            ..
        } = self;
        w.close_object(open, base)?;
        for _ in 0..wrappers {
            w.out.push(b'}');
            w.depth -= 1;
        }
        Ok(())
    }
}

impl<'a> Writer {
    fn object(&'a mut self, wrappers: usize) -> Result<Obj<'a>, Declined> {
        self.enter()?;
        let open = self.out.len();
        self.out.push(b'{');
        let base = self.members.len();
        Ok(Obj {
            w: self,
            open,
            base,
            pending: None,
            wrappers,
        })
    }

    fn seq(&'a mut self) -> Result<Seq<'a>, Declined> {
        self.enter()?;
        self.out.push(b'[');
        Ok(Seq {
            w: self,
            first: true,
        })
    }

    /// `{"variant":` of an externally tagged enum variant (one member:
    /// nothing to sort), closed by its value's closer.
    fn variant_wrapper(&mut self, variant: &str) -> Result<(), Declined> {
        self.enter()?;
        self.out.push(b'{');
        write_canonical_str(&mut self.out, variant);
        self.out.push(b':');
        Ok(())
    }
}

/// An array inside a variant wrapper: `]` then `}`.
struct WrappedSeq<'a>(Seq<'a>);

impl ser::SerializeTupleVariant for WrappedSeq<'_> {
    type Ok = ();
    type Error = Declined;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Declined> {
        self.0.element(value)
    }
    fn end(self) -> Result<(), Declined> {
        let w = self.0.w;
        w.out.extend_from_slice(b"]}");
        w.depth -= 2;
        Ok(())
    }
}

impl<'a> ser::Serializer for &'a mut Writer {
    type Ok = ();
    type Error = Declined;
    type SerializeSeq = Seq<'a>;
    type SerializeTuple = Seq<'a>;
    type SerializeTupleStruct = Seq<'a>;
    type SerializeTupleVariant = WrappedSeq<'a>;
    type SerializeMap = Obj<'a>;
    type SerializeStruct = Obj<'a>;
    type SerializeStructVariant = Obj<'a>;

    fn serialize_bool(self, v: bool) -> Result<(), Declined> {
        self.out
            .extend_from_slice(if v { b"true" as &[u8] } else { b"false" });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), Declined> {
        self.number(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<(), Declined> {
        self.number(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<(), Declined> {
        self.number(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result<(), Declined> {
        self.number(v.into())
    }
    fn serialize_u8(self, v: u8) -> Result<(), Declined> {
        self.number(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<(), Declined> {
        self.number(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<(), Declined> {
        self.number(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<(), Declined> {
        self.number(v.into())
    }
    fn serialize_f32(self, _: f32) -> Result<(), Declined> {
        // serde_json writes an f32's own shortest digits, which read back
        // as a different double: the general path's business.
        Err(Declined)
    }
    fn serialize_f64(self, v: f64) -> Result<(), Declined> {
        if v.is_finite() {
            write_es6_number(&mut self.out, v);
        } else {
            // serde_json writes a NaN or an infinity as null.
            self.out.extend_from_slice(b"null");
        }
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), Declined> {
        write_canonical_str(&mut self.out, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), Declined> {
        write_canonical_str(&mut self.out, v);
        Ok(())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), Declined> {
        Err(Declined)
    }
    fn serialize_none(self) -> Result<(), Declined> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Declined> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Declined> {
        self.serialize_none()
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Declined> {
        self.serialize_none()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Declined> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Declined> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Declined> {
        self.variant_wrapper(variant)?;
        value.serialize(&mut *self)?;
        self.out.push(b'}');
        self.depth -= 1;
        Ok(())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Seq<'a>, Declined> {
        self.seq()
    }
    fn serialize_tuple(self, _: usize) -> Result<Seq<'a>, Declined> {
        self.seq()
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Seq<'a>, Declined> {
        self.seq()
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<WrappedSeq<'a>, Declined> {
        self.variant_wrapper(variant)?;
        Ok(WrappedSeq(self.seq()?))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Obj<'a>, Declined> {
        self.object(0)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Obj<'a>, Declined> {
        self.object(0)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Obj<'a>, Declined> {
        self.variant_wrapper(variant)?;
        self.object(1)
    }
}

/// The three sequence traits have the same two steps: an element, then
/// the closing bracket.
macro_rules! seq_impl {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for Seq<'_> {
            type Ok = ();
            type Error = Declined;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Declined> {
                self.element(value)
            }
            fn end(self) -> Result<(), Declined> {
                self.close()
            }
        }
    )*};
}

seq_impl!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field
);

impl ser::SerializeMap for Obj<'_> {
    type Ok = ();
    type Error = Declined;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Declined> {
        let start = self.begin_member();
        key.serialize(KeyWriter(&mut self.w.out))?;
        let key_end = self.w.out.len();
        self.w.out.push(b':');
        self.pending = Some((start, key_end));
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Declined> {
        let (start, key_end) = self.pending.take().ok_or(Declined)?;
        value.serialize(&mut *self.w)?;
        let m = self.w.member(start, key_end);
        self.w.members.push(m);
        Ok(())
    }
    fn end(self) -> Result<(), Declined> {
        self.close()
    }
}

impl ser::SerializeStruct for Obj<'_> {
    type Ok = ();
    type Error = Declined;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Declined> {
        self.field(key, value)
    }
    fn end(self) -> Result<(), Declined> {
        self.close()
    }
}

impl ser::SerializeStructVariant for Obj<'_> {
    type Ok = ();
    type Error = Declined;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Declined> {
        self.field(key, value)
    }
    fn end(self) -> Result<(), Declined> {
        self.close()
    }
}

/// Methods of one argument that decline whatever they are given.
macro_rules! declined {
    ($($name:ident: $ty:ty),* $(,)?) => {
        $(fn $name(self, _: $ty) -> Result<(), Declined> {
            Err(Declined)
        })*
    };
}

/// A map key: a string (or a char) only; serde_json's other keys (numbers,
/// booleans written as strings) are the general path's.
struct KeyWriter<'a>(&'a mut Vec<u8>);

impl ser::Serializer for KeyWriter<'_> {
    type Ok = ();
    type Error = Declined;
    type SerializeSeq = Impossible<(), Declined>;
    type SerializeTuple = Impossible<(), Declined>;
    type SerializeTupleStruct = Impossible<(), Declined>;
    type SerializeTupleVariant = Impossible<(), Declined>;
    type SerializeMap = Impossible<(), Declined>;
    type SerializeStruct = Impossible<(), Declined>;
    type SerializeStructVariant = Impossible<(), Declined>;

    fn serialize_str(self, v: &str) -> Result<(), Declined> {
        write_canonical_str(self.0, v);
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), Declined> {
        write_canonical_str(self.0, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Declined> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Declined> {
        value.serialize(self)
    }
    declined!(
        serialize_bool: bool,
        serialize_i8: i8,
        serialize_i16: i16,
        serialize_i32: i32,
        serialize_i64: i64,
        serialize_u8: u8,
        serialize_u16: u16,
        serialize_u32: u32,
        serialize_u64: u64,
        serialize_f32: f32,
        serialize_f64: f64,
        serialize_bytes: &[u8],
        serialize_unit_struct: &'static str,
    );
    fn serialize_none(self) -> Result<(), Declined> {
        Err(Declined)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), Declined> {
        Err(Declined)
    }
    fn serialize_unit(self) -> Result<(), Declined> {
        Err(Declined)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Declined> {
        Err(Declined)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Declined> {
        Err(Declined)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Declined> {
        Err(Declined)
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Declined> {
        Err(Declined)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Declined> {
        Err(Declined)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Declined> {
        Err(Declined)
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, Declined> {
        Err(Declined)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Declined> {
        Err(Declined)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use std::collections::{BTreeMap, HashMap};

    use serde::Serialize;
    use serde_json::json;

    use super::*;

    /// The general path: `serde_json`'s text, canonicalized.
    fn by_text<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CanonicalError> {
        match serde_json::to_vec(value) {
            Ok(text) => canonicalize(&text),
            Err(e) => Err(CanonicalError::Syntax {
                offset: 0,
                pointer: String::new(),
                message: e.to_string(),
            }),
        }
    }

    /// Whether the writer itself wrote `value` (not declined).
    fn written<T: Serialize + ?Sized>(value: &T) -> bool {
        let mut w = Writer {
            out: Vec::new(),
            members: Vec::new(),
            depth: 0,
            scratch: Vec::new(),
            order: Vec::new(),
        };
        value.serialize(&mut w).is_ok()
    }

    fn same<T: Serialize + ?Sized>(value: &T) {
        let want = by_text(value);
        assert_eq!(
            to_canonical_vec(value).map(String::from_utf8),
            want.map(String::from_utf8)
        );
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    enum Shape {
        Unit,
        Newtype(f64),
        Tuple(u8, String),
        Struct { zeta: i64, alpha: Option<bool> },
    }

    #[derive(Serialize)]
    struct Unsorted<'a> {
        z: u64,
        b: &'a str,
        a: Vec<Shape>,
        #[serde(rename = "\u{e000}")]
        private_use: u8,
        #[serde(rename = "\u{10000}")]
        astral: u8,
        nested: Inner,
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped: Option<u8>,
        unit: (),
        tuple: (i8, char),
    }

    #[derive(Serialize)]
    struct Inner {
        y: f64,
        x: f64,
        w: Vec<f64>,
    }

    #[derive(Serialize)]
    struct Newtype(u32);

    #[test]
    fn the_same_bytes_as_the_text_path() {
        let u = Unsorted {
            z: 1 << 53,
            b: "quote \" backslash \\ control \u{1} tab \t é 😀",
            a: vec![
                Shape::Unit,
                Shape::Newtype(-0.0),
                Shape::Tuple(7, "t".into()),
                Shape::Struct {
                    zeta: -(1 << 53),
                    alpha: None,
                },
                Shape::Struct {
                    zeta: 3,
                    alpha: Some(true),
                },
            ],
            private_use: 1,
            astral: 2,
            nested: Inner {
                y: 1e21,
                x: 5e-324,
                w: vec![f64::NAN, f64::INFINITY, 0.1 + 0.2, 1e-7, 123456789.125],
            },
            skipped: None,
            unit: (),
            tuple: (-8, 'c'),
        };
        same(&u);
        assert!(written(&u));
        let text = String::from_utf8(to_canonical_vec(&u).unwrap()).unwrap();
        assert!(text.starts_with(r#"{"a":["unit",{"newtype":0},"#), "{text}");
        // UTF-16 order: the astral key (a surrogate pair) before U+E000.
        assert!(text.find('\u{10000}') < text.find('\u{e000}'), "{text}");
        same(&Newtype(9));
        same(&json!({"b": [1, {"d": null, "c": "x"}], "a": {}, "": []}));
        same(&BTreeMap::from([("b", 1), ("a", 2)]));
        same(&HashMap::from([("k2", vec![1.5]), ("k1", vec![])]));
    }

    #[test]
    fn what_it_declines_the_text_path_answers() {
        // Integers past 2^53: exact ones are written, inexact ones refused.
        same(&json!({"n": 1u64 << 60}));
        same(&json!({"n": (1u64 << 53) + 1}));
        same(&((1i64 << 53) + 1).wrapping_neg());
        // A float of 32 bits, bytes, non-string keys, escaped and
        // duplicate keys.
        same(&0.1f32);
        same(&serde_bytes_like());
        same(&BTreeMap::from([(2, "b"), (1, "a")]));
        same(&BTreeMap::from([(true, 1)]));
        same(&BTreeMap::from([("b\n", 1), ("a\"", 2), ("c", 3)]));
        #[derive(Serialize)]
        struct Twice {
            a: u8,
            #[serde(flatten)]
            more: BTreeMap<&'static str, u8>,
        }
        same(&Twice {
            a: 1,
            more: BTreeMap::from([("a", 2)]),
        });
        // Nesting at and past the limit.
        for depth in [MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1] {
            let mut v = json!(1);
            for _ in 0..depth {
                v = json!([v]);
            }
            same(&v);
        }
    }

    /// A tree whose objects keep their members in the order given (so
    /// most are out of RFC 8785 order, nested in each other).
    enum Node {
        Leaf(serde_json::Value),
        List(Vec<Node>),
        Object(Vec<(String, Node)>),
    }

    impl Serialize for Node {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::{SerializeMap, SerializeSeq};
            match self {
                Node::Leaf(v) => v.serialize(s),
                Node::List(items) => {
                    let mut seq = s.serialize_seq(Some(items.len()))?;
                    for i in items {
                        seq.serialize_element(i)?;
                    }
                    seq.end()
                }
                Node::Object(members) => {
                    let mut map = s.serialize_map(Some(members.len()))?;
                    for (k, v) in members {
                        map.serialize_entry(k, v)?;
                    }
                    map.end()
                }
            }
        }
    }

    fn tree(r: &mut impl FnMut() -> u32, depth: u32) -> Node {
        const KEYS: [&str; 9] = ["a", "b", "ab", "ba", "", "z", "\u{e000}", "\u{10000}", "é"];
        let pick = r() % if depth == 0 { 3 } else { 6 };
        match pick {
            0 => Node::Leaf(json!(r() % 1000)),
            1 => Node::Leaf(json!(f64::from(r()) / 7.0)),
            2 => Node::Leaf(json!("s")),
            3 => Node::List((0..r() % 4).map(|_| tree(r, depth - 1)).collect()),
            _ => {
                let mut keys: Vec<&str> = KEYS.to_vec();
                let n = (r() % 6) as usize;
                let mut members = Vec::new();
                for _ in 0..n {
                    let k = keys.remove(r() as usize % keys.len());
                    members.push((k.to_string(), tree(r, depth - 1)));
                }
                Node::Object(members)
            }
        }
    }

    #[test]
    fn nested_objects_out_of_order_come_out_in_order() {
        for seed in 1..2000u64 {
            let mut rng = crate::test_rng::TestRng::new(seed);
            let mut r = move || rng.next_u32();
            let t = tree(&mut r, 5);
            assert!(written(&t));
            same(&t);
        }
    }

    fn serde_bytes_like() -> impl Serialize {
        struct Bytes;
        impl Serialize for Bytes {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(b"\x00\xff")
            }
        }
        Bytes
    }
}
