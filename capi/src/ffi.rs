//! The FFI boundary: status codes, the thread-local error message, the panic
//! guard every entry point runs in, and the checks that turn a C pointer and
//! a length into a Rust slice.
//!
//! Every exported function is `guard(|| ...)` (or `guard_value` for the few
//! that return a value and cannot fail): a panic is caught here and becomes
//! [`edgedecoding_status::EDGEDECODING_ERR_PANIC`], so no unwind ever crosses
//! the C ABI. Failures allocate their message; successful calls allocate
//! nothing.

use core::ffi::c_char;
use std::any::Any;
use std::cell::RefCell;
use std::ffi::CString;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::string::String;

use edgedecoding_kernels::KernelError;
use edgedecoding_model::ModelError;

/// Result code of every fallible function. `EDGEDECODING_OK` is 0; on any other
/// value `edgedecoding_last_error()` describes the failure (same thread) and
/// the function wrote nothing to its outputs (operators validate before any
/// arithmetic).
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum edgedecoding_status {
    /// Success.
    EDGEDECODING_OK = 0,
    /// A required pointer is NULL (a buffer pointer may be NULL only when its
    /// length is 0).
    EDGEDECODING_ERR_NULL = 1,
    /// A buffer has the wrong length (kernel `Length` error), or a pointer is
    /// misaligned for its type, or a length overflows the address space.
    EDGEDECODING_ERR_LENGTH = 2,
    /// A dimension is not a multiple of what it must be (kernel `NotMultiple`).
    EDGEDECODING_ERR_NOT_MULTIPLE = 3,
    /// A parameter is outside the range the contract allows (kernel `Param`),
    /// or two buffers overlap where one is written.
    EDGEDECODING_ERR_PARAM = 4,
    /// The model bytes are not a valid `.edq` file (header, directory,
    /// checksum, shapes, value ranges).
    EDGEDECODING_ERR_MODEL = 5,
    /// The model file cannot be opened or mapped, or the path is not UTF-8.
    EDGEDECODING_ERR_IO = 6,
    /// A token id is outside the vocabulary or not in the kept list.
    EDGEDECODING_ERR_TOKEN = 7,
    /// The request would run past the KV-cache capacity (`ctx`).
    EDGEDECODING_ERR_CONTEXT_FULL = 8,
    /// The model handle is in use by another call (a concurrent call from
    /// another thread, or a call from inside a probe callback).
    EDGEDECODING_ERR_BUSY = 9,
    /// Nothing to return yet (logits before any prefill or decode).
    EDGEDECODING_ERR_EMPTY = 10,
    /// Not supported by this build or CPU (e.g. `EDGEDECODING_ISA` names an
    /// instruction set the CPU lacks).
    EDGEDECODING_ERR_UNSUPPORTED = 11,
    /// An internal panic was caught (a bug: please report the message). A
    /// model handle that saw one is poisoned: every later call on it returns
    /// this code; close it.
    EDGEDECODING_ERR_PANIC = 12,
    /// An internal inconsistency reported without a panic (a bug).
    EDGEDECODING_ERR_INTERNAL = 13,
}

pub use edgedecoding_status::*;

impl edgedecoding_status {
    /// The enumerator's name, NUL-terminated.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            EDGEDECODING_OK => "EDGEDECODING_OK\0",
            EDGEDECODING_ERR_NULL => "EDGEDECODING_ERR_NULL\0",
            EDGEDECODING_ERR_LENGTH => "EDGEDECODING_ERR_LENGTH\0",
            EDGEDECODING_ERR_NOT_MULTIPLE => "EDGEDECODING_ERR_NOT_MULTIPLE\0",
            EDGEDECODING_ERR_PARAM => "EDGEDECODING_ERR_PARAM\0",
            EDGEDECODING_ERR_MODEL => "EDGEDECODING_ERR_MODEL\0",
            EDGEDECODING_ERR_IO => "EDGEDECODING_ERR_IO\0",
            EDGEDECODING_ERR_TOKEN => "EDGEDECODING_ERR_TOKEN\0",
            EDGEDECODING_ERR_CONTEXT_FULL => "EDGEDECODING_ERR_CONTEXT_FULL\0",
            EDGEDECODING_ERR_BUSY => "EDGEDECODING_ERR_BUSY\0",
            EDGEDECODING_ERR_EMPTY => "EDGEDECODING_ERR_EMPTY\0",
            EDGEDECODING_ERR_UNSUPPORTED => "EDGEDECODING_ERR_UNSUPPORTED\0",
            EDGEDECODING_ERR_PANIC => "EDGEDECODING_ERR_PANIC\0",
            EDGEDECODING_ERR_INTERNAL => "EDGEDECODING_ERR_INTERNAL\0",
        }
    }

    /// All codes, in value order (for `edgedecoding_status_name`).
    pub(crate) const ALL: [edgedecoding_status; 14] = [
        EDGEDECODING_OK,
        EDGEDECODING_ERR_NULL,
        EDGEDECODING_ERR_LENGTH,
        EDGEDECODING_ERR_NOT_MULTIPLE,
        EDGEDECODING_ERR_PARAM,
        EDGEDECODING_ERR_MODEL,
        EDGEDECODING_ERR_IO,
        EDGEDECODING_ERR_TOKEN,
        EDGEDECODING_ERR_CONTEXT_FULL,
        EDGEDECODING_ERR_BUSY,
        EDGEDECODING_ERR_EMPTY,
        EDGEDECODING_ERR_UNSUPPORTED,
        EDGEDECODING_ERR_PANIC,
        EDGEDECODING_ERR_INTERNAL,
    ];
}

/// A failure on its way to the caller: a code and its message.
#[derive(Debug)]
pub(crate) struct Fail {
    pub(crate) status: edgedecoding_status,
    pub(crate) msg: String,
}

pub(crate) type R<T> = Result<T, Fail>;

pub(crate) fn fail(status: edgedecoding_status, msg: impl Into<String>) -> Fail {
    Fail {
        status,
        msg: msg.into(),
    }
}

impl From<KernelError> for Fail {
    fn from(e: KernelError) -> Self {
        let status = match e {
            KernelError::Length { .. } => EDGEDECODING_ERR_LENGTH,
            KernelError::NotMultiple { .. } => EDGEDECODING_ERR_NOT_MULTIPLE,
            KernelError::Param { .. } => EDGEDECODING_ERR_PARAM,
        };
        fail(status, e.to_string())
    }
}

impl From<ModelError> for Fail {
    fn from(e: ModelError) -> Self {
        let status = match e {
            ModelError::Kernel(k) => return k.into(),
            ModelError::TokenOutOfRange { .. } | ModelError::TokenNotKept(_) => {
                EDGEDECODING_ERR_TOKEN
            }
            ModelError::ContextFull { .. } => EDGEDECODING_ERR_CONTEXT_FULL,
            ModelError::Empty => EDGEDECODING_ERR_LENGTH,
            ModelError::Unsupported(_) => EDGEDECODING_ERR_UNSUPPORTED,
            ModelError::OutOfRange { .. } => EDGEDECODING_ERR_PARAM,
            ModelError::Internal(_)
            | ModelError::StateTooSmall { .. }
            | ModelError::Mismatch(_) => EDGEDECODING_ERR_INTERNAL,
            _ => EDGEDECODING_ERR_MODEL,
        };
        fail(status, e.to_string())
    }
}

thread_local! {
    /// The message of the last failure on this thread (NUL-terminated).
    static LAST: RefCell<CString> = RefCell::new(CString::default());
}

pub(crate) fn set_last_error(msg: &str) {
    // interior NULs cannot come from our messages, but never fail here
    let c = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    LAST.with(|l| *l.borrow_mut() = c);
}

/// Pointer to this thread's last message; valid until the next failing call
/// on this thread.
pub(crate) fn last_error_ptr() -> *const c_char {
    LAST.with(|l| l.borrow().as_ptr())
}

fn panic_text(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).into()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".into()
    }
}

/// Runs `f`, turning its error or a panic into a status and the thread's
/// last message.
///
/// The closure is asserted unwind-safe: after a panic the only state it can
/// have left half-updated is the caller's output buffers (documented: on
/// error their contents are unspecified only for `EDGEDECODING_ERR_PANIC`)
/// and a model handle, which [`crate::model`] poisons.
pub(crate) fn guard(f: impl FnOnce() -> R<()>) -> edgedecoding_status {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => EDGEDECODING_OK,
        Ok(Err(e)) => {
            set_last_error(&e.msg);
            e.status
        }
        Err(p) => {
            set_last_error(&std::format!("internal panic: {}", panic_text(&*p)));
            EDGEDECODING_ERR_PANIC
        }
    }
}

/// Runs an infallible `f`; a panic (a bug) returns `default` and records the
/// message like [`guard`].
pub(crate) fn guard_value<T>(default: T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(p) => {
            set_last_error(&std::format!("internal panic: {}", panic_text(&*p)));
            default
        }
    }
}

/// The byte range `[start, end)` a buffer argument covers, computed without
/// touching it; `what` names it in messages.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Span {
    what: &'static str,
    start: usize,
    end: usize,
}

/// Checks a buffer argument (non-NULL unless empty, aligned for `T`, its byte
/// length representable) and returns its span.
pub(crate) fn span<T>(what: &'static str, p: *const T, len: usize) -> R<Span> {
    if len == 0 {
        return Ok(Span {
            what,
            start: 0,
            end: 0,
        });
    }
    if p.is_null() {
        return Err(fail(
            EDGEDECODING_ERR_NULL,
            std::format!("{what}: NULL pointer with length {len}"),
        ));
    }
    if !(p as usize).is_multiple_of(core::mem::align_of::<T>()) {
        return Err(fail(
            EDGEDECODING_ERR_LENGTH,
            std::format!(
                "{what}: pointer {p:p} is not aligned to {} bytes",
                core::mem::align_of::<T>()
            ),
        ));
    }
    let bytes = len
        .checked_mul(core::mem::size_of::<T>())
        .filter(|&b| b <= isize::MAX as usize)
        .and_then(|b| (p as usize).checked_add(b).map(|end| (b, end)));
    match bytes {
        Some((_, end)) => Ok(Span {
            what,
            start: p as usize,
            end,
        }),
        None => Err(fail(
            EDGEDECODING_ERR_LENGTH,
            std::format!("{what}: length {len} overflows the address space"),
        )),
    }
}

/// Every span in `outs` (buffers the call writes) must overlap no other span
/// of `outs` or `ins` (Rust forbids a written slice aliasing another).
pub(crate) fn disjoint(outs: &[Span], ins: &[Span]) -> R<()> {
    for (i, o) in outs.iter().enumerate() {
        let others = outs[i + 1..].iter().chain(ins);
        for x in others {
            if o.start < x.end && x.start < o.end {
                return Err(fail(
                    EDGEDECODING_ERR_PARAM,
                    std::format!("{} overlaps {}: pass separate buffers", o.what, x.what),
                ));
            }
        }
    }
    Ok(())
}

/// An input buffer as a slice (the checks of [`span`] first).
///
/// # Safety
/// `p` must be valid for reads of `len` elements of `T` for `'a`, and nothing
/// may write them during `'a` (the header's contract for every input buffer).
pub(crate) unsafe fn slice<'a, T>(what: &'static str, p: *const T, len: usize) -> R<&'a [T]> {
    span(what, p, len)?;
    if len == 0 {
        return Ok(&[]);
    }
    // SAFETY: non-NULL, aligned and at most isize::MAX bytes (checked by
    // `span`); valid and unaliased by writes for `'a` by the caller's contract.
    Ok(unsafe { core::slice::from_raw_parts(p, len) })
}

/// An output buffer as a mutable slice (the checks of [`span`] first).
///
/// # Safety
/// `p` must be valid for reads and writes of `len` elements of `T` for `'a`,
/// initialised, and not accessed by anything else during `'a`; the caller
/// checks with [`disjoint`] that no other argument of the call overlaps it.
pub(crate) unsafe fn slice_mut<'a, T>(what: &'static str, p: *mut T, len: usize) -> R<&'a mut [T]> {
    span(what, p, len)?;
    if len == 0 {
        return Ok(&mut []);
    }
    // SAFETY: as in `slice`, plus exclusivity (checked with `disjoint` by
    // the caller, guaranteed for the rest of the process by the contract).
    Ok(unsafe { core::slice::from_raw_parts_mut(p, len) })
}

/// Reads a struct argument by value (NULL and alignment checked).
///
/// # Safety
/// `p` must be valid for one read of an initialised `T`.
pub(crate) unsafe fn read<T: Copy>(what: &'static str, p: *const T) -> R<T> {
    if p.is_null() {
        return Err(fail(
            EDGEDECODING_ERR_NULL,
            std::format!("{what}: NULL pointer"),
        ));
    }
    span(what, p, 1)?;
    // SAFETY: non-NULL and aligned (checked); valid by the caller's contract.
    Ok(unsafe { p.read() })
}

/// Checks a single-value output pointer; [`put`] writes it once the result is
/// known, so a failing call leaves it untouched.
pub(crate) fn out_ptr<T>(what: &'static str, p: *mut T) -> R<()> {
    if p.is_null() {
        return Err(fail(
            EDGEDECODING_ERR_NULL,
            std::format!("{what}: NULL pointer"),
        ));
    }
    span(what, p as *const T, 1).map(|_| ())
}

/// Writes a single value through a pointer checked by [`out_ptr`].
///
/// # Safety
/// `p` passed [`out_ptr`] and is valid for one write of `T`; no reference
/// to its memory is alive (outputs are written after the computation).
pub(crate) unsafe fn put<T>(p: *mut T, v: T) {
    // SAFETY: non-NULL and aligned (`out_ptr`), writable by the contract; a
    // raw write creates no reference, so it cannot alias a live slice.
    unsafe { p.write(v) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last() -> String {
        // SAFETY: the thread's message is a valid C string.
        unsafe { std::ffi::CStr::from_ptr(last_error_ptr()) }
            .to_string_lossy()
            .into_owned()
    }

    /// A panic inside an entry point becomes a status and a message; it never
    /// unwinds out of the guard.
    #[test]
    fn panics_are_caught() {
        let st = guard(|| panic!("boom {}", 42));
        assert_eq!(st, EDGEDECODING_ERR_PANIC);
        assert_eq!(last(), "internal panic: boom 42");
        assert_eq!(guard_value(-1, || -> i32 { panic!("static") }), -1);
        assert_eq!(last(), "internal panic: static");
        assert_eq!(
            guard(|| Err(fail(EDGEDECODING_ERR_PARAM, "x"))),
            EDGEDECODING_ERR_PARAM
        );
        assert_eq!(last(), "x");
        assert_eq!(guard(|| Ok(())), EDGEDECODING_OK);
        assert_eq!(last(), "x", "success keeps the last message");
    }

    #[test]
    fn spans_and_overlap() {
        let a = [0u32; 8];
        let s = span("a", a.as_ptr(), 8).unwrap();
        let t = span("b", a[4..].as_ptr(), 4).unwrap();
        assert!(disjoint(&[s], &[t]).is_err());
        assert!(disjoint(&[s], &[span("e", core::ptr::null::<u32>(), 0).unwrap()]).is_ok());
        assert_eq!(
            span("n", core::ptr::null::<u32>(), 1).unwrap_err().status,
            EDGEDECODING_ERR_NULL
        );
        assert_eq!(
            span("m", (a.as_ptr() as usize + 2) as *const u32, 1)
                .unwrap_err()
                .status,
            EDGEDECODING_ERR_LENGTH
        );
        // every status has a distinct value and a name
        for (i, s) in edgedecoding_status::ALL.iter().enumerate() {
            assert_eq!(*s as i32, i as i32);
            assert!(s.name().ends_with('\0'));
        }
    }
}
