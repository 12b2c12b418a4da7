//! Arguments and results across the boundary: C strings, out-parameters,
//! objects, JSON.

use std::ffi::{CStr, CString, c_char};

use smm_core::sim::RunOptions;

use crate::errors::{Failure, smm_status};

/// Borrow a C string argument as UTF-8.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string valid for the call.
pub(crate) unsafe fn arg_str<'a>(p: *const c_char, name: &str) -> Result<&'a str, Failure> {
    if p.is_null() {
        return Err((smm_status::SMM_NULL_ARGUMENT, format!("{name} is NULL")));
    }
    // SAFETY: non-NULL and NUL-terminated per the caller's contract.
    let c = unsafe { CStr::from_ptr(p) };
    c.to_str().map_err(|e| {
        (
            smm_status::SMM_INVALID_UTF8,
            format!("{name} is not UTF-8: {e}"),
        )
    })
}

/// A time argument, parsed once at the front door: the library takes a
/// `Timestamp` (SMM_INVALID_INPUT when the text is not RFC 3339).
pub(crate) fn arg_time(s: &str, name: &str) -> Result<smm_core::time::Timestamp, Failure> {
    smm_core::time::Timestamp::parse(s).ok_or_else(|| {
        (
            smm_status::SMM_INVALID_INPUT,
            format!("{name} {s:?} is not an RFC 3339 date-time (e.g. 2025-09-01T12:00:00Z)"),
        )
    })
}

/// Hand a Rust string to C through an out-parameter.
///
/// # Safety
/// `out` is non-NULL and writable.
pub(crate) unsafe fn write_out(out: *mut *mut c_char, s: String) -> Result<(), Failure> {
    let c = CString::new(s).map_err(|_| {
        (
            smm_status::SMM_INTERNAL,
            "internal: output contains a NUL byte".to_string(),
        )
    })?;
    // SAFETY: checked non-NULL by the caller of this helper.
    unsafe { *out = c.into_raw() };
    Ok(())
}

pub(crate) fn options(threads: u32) -> RunOptions {
    RunOptions {
        threads: if threads == 0 {
            None
        } else {
            Some(threads as usize)
        },
        ..Default::default()
    }
}

pub(crate) fn check_out<T>(out: *mut *mut T, name: &str) -> Result<(), Failure> {
    if out.is_null() {
        Err((smm_status::SMM_NULL_ARGUMENT, format!("{name} is NULL")))
    } else {
        Ok(())
    }
}

pub(crate) fn to_json_string<T: serde::Serialize>(v: &T) -> Result<String, Failure> {
    serde_json::to_string(v).map_err(|e| (smm_status::SMM_INTERNAL, format!("internal: {e}")))
}

/// Write a new object to an out-parameter.
///
/// # Safety
/// `out` is non-NULL and writable.
pub(crate) unsafe fn write_obj<T>(out: *mut *mut T, v: T) {
    // SAFETY: per the contract.
    unsafe { *out = Box::into_raw(Box::new(v)) };
}

/// Borrow an object argument.
///
/// # Safety
/// `p` is NULL or a live object made by this library.
pub(crate) unsafe fn arg_obj<'a, T>(p: *const T, name: &str) -> Result<&'a T, Failure> {
    // SAFETY: per the contract.
    unsafe { p.as_ref() }.ok_or_else(|| (smm_status::SMM_NULL_ARGUMENT, format!("{name} is NULL")))
}
