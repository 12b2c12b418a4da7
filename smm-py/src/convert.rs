//! Conversions between Python values and JSON, with JSON pointers in every
//! error, and the small argument parsers shared by every capability.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Number, Value};

use crate::errors::validation;

pub(crate) fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Convert a Python value (dict/list/str/int/float/bool/None) to JSON,
/// naming the offending place by JSON pointer.
pub(crate) fn to_json(py: Python<'_>, obj: &Bound<'_, PyAny>, pointer: &str) -> PyResult<Value> {
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(v) = obj.extract::<i64>() {
            return Ok(Value::Number(v.into()));
        }
        if let Ok(v) = obj.extract::<u64>() {
            return Ok(Value::Number(v.into()));
        }
        return Err(validation(
            py,
            pointer,
            format!("integer at {pointer} is out of range"),
        ));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        let v = f.value();
        return Number::from_f64(v).map(Value::Number).ok_or_else(|| {
            validation(
                py,
                pointer,
                format!("{pointer} must be a finite number (got {v})"),
            )
        });
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::String(s.extract::<String>()?));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut map = Map::new();
        for (k, v) in d.iter() {
            let key: String = k.extract().map_err(|_| {
                validation(
                    py,
                    pointer,
                    format!("keys of the mapping at {pointer:?} must be strings"),
                )
            })?;
            let child = format!("{pointer}/{}", escape(&key));
            map.insert(key, to_json(py, &v, &child)?);
        }
        return Ok(Value::Object(map));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let mut out = Vec::new();
        for (i, item) in obj.try_iter()?.enumerate() {
            out.push(to_json(py, &item?, &format!("{pointer}/{i}"))?);
        }
        return Ok(Value::Array(out));
    }
    // numpy scalars (np.int64, np.float64, np.bool_) and arrays: their
    // Python value (`tolist()` gives ints, floats, bools and nested lists).
    let module = obj
        .get_type()
        .module()
        .map(|m| m.to_string())
        .unwrap_or_default();
    // decimal.Decimal (the dollars this package returns) in a document: a
    // number, an integer when it is one. (Money arguments take Decimals
    // exactly; a document's numbers are doubles.)
    if module == "decimal" && obj.get_type().name()? == "Decimal" {
        let f: f64 = obj.call_method0("__float__")?.extract()?;
        if f.is_finite() && f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
            return Ok(Value::Number((f as i64).into()));
        }
        return Number::from_f64(f).map(Value::Number).ok_or_else(|| {
            validation(
                py,
                pointer,
                format!("{pointer} must be a finite number (got {f})"),
            )
        });
    }
    if module == "numpy" && obj.hasattr("tolist")? {
        let plain = obj.call_method0("tolist")?;
        if !plain.get_type().is(obj.get_type()) {
            return to_json(py, &plain, pointer);
        }
    }
    let ty = obj.get_type().name()?.to_string();
    Err(validation(
        py,
        pointer,
        format!(
            "unsupported value of type {ty} at {pointer:?} (use a number, string, bool, None, list or dict)"
        ),
    ))
}

/// A document given as a Python value or as JSON text (str or bytes).
pub(crate) fn document(py: Python<'_>, obj: &Bound<'_, PyAny>, pointer: &str) -> PyResult<Value> {
    let text = if let Ok(s) = obj.cast::<PyString>() {
        Some(s.extract::<String>()?)
    } else if let Ok(b) = obj.cast::<PyBytes>() {
        Some(
            String::from_utf8(b.as_bytes().to_vec())
                .map_err(|e| validation(py, pointer, format!("{pointer:?} is not UTF-8: {e}")))?,
        )
    } else {
        None
    };
    match text {
        Some(t) => serde_json::from_str(&t)
            .map_err(|e| validation(py, pointer, format!("invalid JSON at {pointer:?}: {e}"))),
        None => to_json(py, obj, pointer),
    }
}

pub(crate) fn from_json<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(a) => {
            let items = a
                .iter()
                .map(|x| from_json(py, x))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any()
        }
        Value::Object(o) => {
            let d = PyDict::new(py);
            for (k, x) in o {
                d.set_item(k, from_json(py, x)?)?;
            }
            d.into_any()
        }
    })
}

/// `now` parsed once, here at the front door (the library takes a
/// `Timestamp`): what [`now_arg`] accepts; a `ValidationError` at `/now`
/// when it is not a time.
pub(crate) fn now_ts(
    py: Python<'_>,
    now: &Bound<'_, PyAny>,
) -> PyResult<smm_core::time::Timestamp> {
    let s = now_arg(py, now)?;
    smm_core::time::Timestamp::parse(&s).ok_or_else(|| {
        validation(
            py,
            "/now",
            format!("{s:?} is not an RFC 3339 date-time (e.g. 2025-09-01T12:00:00Z)"),
        )
    })
}

/// `now` as an RFC 3339 string: a str (a date alone, `2025-09-01`, is
/// midnight UTC), a timezone-aware datetime, or a `datetime.date` (midnight
/// UTC).
pub(crate) fn now_arg(py: Python<'_>, now: &Bound<'_, PyAny>) -> PyResult<String> {
    let date_only = |s: &str| {
        let b = s.as_bytes();
        s.len() == 10
            && b.iter().enumerate().all(|(i, c)| {
                if i == 4 || i == 7 {
                    *c == b'-'
                } else {
                    c.is_ascii_digit()
                }
            })
    };
    if let Ok(s) = now.cast::<PyString>() {
        let s = s.extract::<String>()?;
        return Ok(if date_only(&s) {
            format!("{s}T00:00:00Z")
        } else {
            s
        });
    }
    if now.hasattr("isoformat")? && !now.hasattr("tzinfo")? {
        // datetime.date: midnight UTC.
        let s: String = now.call_method0("isoformat")?.extract()?;
        if date_only(&s) {
            return Ok(format!("{s}T00:00:00Z"));
        }
    }
    if now.hasattr("isoformat")? && now.hasattr("tzinfo")? {
        if now.getattr("tzinfo")?.is_none() {
            return Err(validation(
                py,
                "",
                "now must be a timezone-aware datetime".into(),
            ));
        }
        return now.call_method0("isoformat")?.extract::<String>();
    }
    Err(validation(
        py,
        "",
        "now must be an RFC 3339 string or an aware datetime".into(),
    ))
}

/// A document as JSON text for the canonicalizer: str/bytes as given,
/// Python values through the pointer-aware converter.
pub(crate) fn document_text(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(s.extract::<String>()?.into_bytes());
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    let v = to_json(py, obj, "")?;
    serde_json::to_vec(&v).map_err(|e| validation(py, "", e.to_string()))
}

pub(crate) fn bytes_arg(py: Python<'_>, obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<u8>> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(s.extract::<String>()?.into_bytes());
    }
    obj.extract::<Vec<u8>>()
        .map_err(|_| validation(py, "", format!("{name} must be bytes or str")))
}

/// A whole number given as an `int` or an integral `float` (`1e5`, as data
/// people write it); anything else (a bool, `1.5`, `nan`, a string) is a
/// `TypeError` that pyo3 prefixes with the argument's name. The range is
/// checked by [`int_arg`], with the field's pointer.
pub(crate) fn count(obj: &Bound<'_, PyAny>) -> PyResult<i128> {
    if obj.is_instance_of::<pyo3::types::PyBool>() {
        return Err(pyo3::exceptions::PyTypeError::new_err(
            "must be a whole number, not a bool",
        ));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        let v = f.value();
        // 2**100 bounds every count this library takes; int_arg refuses
        // what is out of its range with the field's pointer.
        if v.is_finite() && v.fract() == 0.0 && v.abs() < 1.3e30 {
            return Ok(v as i128);
        }
        return Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "must be a whole number (got the float {v})"
        )));
    }
    obj.extract::<i128>().map_err(|_| {
        let ty = obj
            .get_type()
            .name()
            .map_or_else(|_| "?".to_string(), |n| n.to_string());
        pyo3::exceptions::PyTypeError::new_err(format!("must be a whole number (got a {ty})"))
    })
}

/// [`count`] for an optional argument (`None` stays `None`).
pub(crate) fn opt_count(obj: &Bound<'_, PyAny>) -> PyResult<Option<i128>> {
    if obj.is_none() {
        Ok(None)
    } else {
        count(obj).map(Some)
    }
}

pub(crate) fn int_arg(py: Python<'_>, v: i128, name: &str, pointer: &str) -> PyResult<u64> {
    u64::try_from(v).map_err(|_| {
        validation(
            py,
            pointer,
            format!("{name} must be a non-negative integer below 2**64 (got {v})"),
        )
    })
}

/// A typed document (`what`) from a Python value, dict or JSON text; a bad
/// field is a `ValidationError` naming it by JSON pointer under `pointer`.
pub(crate) fn typed<T: serde::de::DeserializeOwned>(
    py: Python<'_>,
    obj: &Bound<'_, PyAny>,
    pointer: &str,
    what: &str,
) -> PyResult<T> {
    let v = document(py, obj, pointer)?;
    serde_path_to_error::deserialize(&v).map_err(|e| {
        let p = format!(
            "{pointer}{}",
            smm_core::sim::SimulationError::from_path_error(&e)
        );
        validation(py, &p, format!("not {what} at {p:?}: {}", e.inner()))
    })
}

/// A JSON value as a Python object (dicts, lists, str, int, float).
pub(crate) fn to_py<'py, T: serde::Serialize>(
    py: Python<'py>,
    v: &T,
) -> PyResult<Bound<'py, PyAny>> {
    from_json(py, &to_value(py, v)?)
}

/// A value as JSON: a value this library made that does not serialize is an
/// `InternalError` (never `None` or `""`).
pub(crate) fn to_value<T: serde::Serialize + ?Sized>(py: Python<'_>, v: &T) -> PyResult<Value> {
    serde_json::to_value(v).map_err(|e| {
        crate::errors::raise(
            py,
            crate::errors::Class::InternalError,
            format!("cannot serialize {}: {e}", std::any::type_name::<T>()),
            None,
            Some(smm_core::error::ErrorKind::Internal),
        )
    })
}

/// A `str` argument held as Rust text: a `str` that is not valid Unicode (a
/// lone surrogate, `"\\ud800"`) is a `ValidationError` saying so, not a
/// `UnicodeEncodeError` from deep inside the binding.
#[derive(Debug, Clone)]
pub(crate) struct Text(pub(crate) String);

impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'a, 'py> FromPyObject<'a, 'py> for Text {
    type Error = PyErr;
    fn extract(obj: pyo3::Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let py = obj.py();
        let s = obj.cast::<pyo3::types::PyString>().map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err(format!(
                "expected a str, got {}",
                obj.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_else(|_| "another type".into())
            ))
        })?;
        let s = s.to_owned();
        match s.to_cow() {
            Ok(t) => Ok(Text(t.to_string())),
            Err(_) => Err(crate::errors::validation(
                py,
                "",
                "the text is not valid Unicode (it holds a lone surrogate)".into(),
            )),
        }
    }
}
