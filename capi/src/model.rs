//! The decoder behind an opaque handle: open a `.edq` model, prefill, decode
//! (incremental or accelerator-parity), read logits, reset, close, and a
//! stage probe that lends each layer stage's integers to a C callback.
//!
//! Everything here calls `edgedecoding_model`: the decoder, its stage probe
//! (`Decoder::prefill_probed`, `Decoder::decode_parity_probed`) and the CPU
//! backends. Nothing of a pass is computed in this crate.
//!
//! # Ownership of a handle
//!
//! A handle owns the model bytes ([`ModelBuf`], copied or memory-mapped), the
//! state memory ([`StateMem`]) and the decoder that borrows both. The two
//! owners are boxed and held as raw pointers ([`Owners`]) so that moving the
//! handle never moves what the decoder borrows; the decoder is dropped first
//! ([`Session`]'s `Drop`), then the owners free the boxes. Nothing borrowed
//! from them leaves the handle.

use core::cell::UnsafeCell;
use core::ffi::{c_char, c_void};
use core::mem::ManuallyDrop;
use core::sync::atomic::{AtomicBool, Ordering};
use std::boxed::Box;
use std::ffi::{CStr, CString};
use std::sync::OnceLock;
use std::vec::Vec;

use ::edgedecoding_model::fast::Fast;
use ::edgedecoding_model::owned::ModelBuf;
use ::edgedecoding_model::{
    Decoder, Head, ModelError, Serial, Site, Stage, StageRef, State, StateMem, Values,
};
use edgedecoding_kernels::KernelError;

use crate::ffi::*;

/// Backend of `edgedecoding_model_open`: the fast CPU backend (SIMD panels,
/// a thread pool; bit-identical to the reference).
pub const EDGEDECODING_BACKEND_FAST: u32 = 0;
/// Backend of `edgedecoding_model_open`: the scalar reference kernels, one
/// thread (the arithmetic every other path is tested against).
pub const EDGEDECODING_BACKEND_REFERENCE: u32 = 1;

/// `edgedecoding_stage_data.site`: the embedding lookup.
pub const EDGEDECODING_SITE_EMBEDDING: i32 = 0;
/// `edgedecoding_stage_data.site`: a decoder layer (`layer` says which).
pub const EDGEDECODING_SITE_LAYER: i32 = 1;
/// `edgedecoding_stage_data.site`: the final RMSNorm and its BFP blocks.
pub const EDGEDECODING_SITE_FINAL: i32 = 2;
/// `edgedecoding_stage_data.site`: the lm_head (logits).
pub const EDGEDECODING_SITE_HEAD: i32 = 3;

/// `edgedecoding_stage_data.dtype`: `int32_t` values.
pub const EDGEDECODING_DTYPE_I32: i32 = 0;
/// `edgedecoding_stage_data.dtype`: `int16_t` values.
pub const EDGEDECODING_DTYPE_I16: i32 = 1;
/// `edgedecoding_stage_data.dtype`: `uint32_t` values.
pub const EDGEDECODING_DTYPE_U32: i32 = 2;
/// `edgedecoding_stage_data.dtype`: `edgedecoding_bfp_block` values.
pub const EDGEDECODING_DTYPE_BFP: i32 = 3;

/// Number of stages of a pass (`edgedecoding_stage_data.stage` is in
/// `[0, EDGEDECODING_STAGE_COUNT)`; `edgedecoding_stage_name` names them).
pub const EDGEDECODING_STAGE_COUNT: i32 = 26;
const _: () = assert!(EDGEDECODING_STAGE_COUNT as usize == Stage::ALL.len());

/// An open model and its decoder (opaque). Create with
/// `edgedecoding_model_open` or `edgedecoding_model_open_bytes`, free with
/// `edgedecoding_model_close`.
#[allow(non_camel_case_types)]
pub struct edgedecoding_model {
    /// Held by the one call using the session; a second call (another thread,
    /// or a probe callback re-entering) gets `EDGEDECODING_ERR_BUSY`.
    busy: AtomicBool,
    session: UnsafeCell<Session>,
}

/// Shape and globals of an open model.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct edgedecoding_model_info {
    /// Decoder layers.
    pub n_layers: u32,
    /// Hidden size C.
    pub hidden: u32,
    /// FFN size.
    pub ffn: u32,
    /// Query heads.
    pub n_heads: u32,
    /// Key/value heads.
    pub n_kv_heads: u32,
    /// Head dimension.
    pub head_dim: u32,
    /// Full vocabulary (token ids).
    pub vocab: u32,
    /// Stored (kept) vocabulary rows: the number of logits.
    pub n_kept: u32,
    /// RoPE theta.
    pub rope_theta: u32,
    /// KV-cache capacity in positions.
    pub ctx: u32,
    /// Embedding exponent (real = code * 2^emb_exp).
    pub emb_exp: i32,
    /// Fraction bits of the final norm's gamma.
    pub final_norm_frac: u32,
    /// RMSNorm epsilon in Q40.
    pub eps_q40: u64,
    /// `EDGEDECODING_BACKEND_*` in use.
    pub backend: u32,
    /// Threads of the backend.
    pub threads: u32,
}

/// Number formats of one layer (SPEC §9.3).
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct edgedecoding_layer_formats {
    /// Fraction bits of Q (int16 after RoPE).
    pub q_frac: u32,
    /// Fraction bits of K in the cache.
    pub k_frac: u32,
    /// Fraction bits of V in the cache.
    pub v_frac: u32,
    /// Fraction bits of the attention RMSNorm gamma.
    pub attn_norm_frac: u32,
    /// Fraction bits of the MLP RMSNorm gamma.
    pub ffn_norm_frac: u32,
}

/// One stage of a pass, lent to a probe callback for the duration of the
/// call (docs/VECTORS.md §4 names; SPEC §9.3 order).
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct edgedecoding_stage_data {
    /// `EDGEDECODING_SITE_*`.
    pub site: i32,
    /// The layer for `EDGEDECODING_SITE_LAYER`, else -1.
    pub layer: i32,
    /// Stage index in pass order, `[0, EDGEDECODING_STAGE_COUNT)`.
    pub stage: i32,
    /// `EDGEDECODING_DTYPE_*` of `values`.
    pub dtype: i32,
    /// The stage's tensor name (`"x_in"`, `"attn_bfp"`, `"logits"`, ...),
    /// static and NUL-terminated.
    pub name: *const c_char,
    /// Position of the first token of `values`.
    pub start: usize,
    /// Tokens in `values` (positions `start .. start + tokens`), at least 1.
    pub tokens: usize,
    /// `[tokens][width]`, token-major; valid only during the callback.
    pub values: *const c_void,
    /// Elements in `values` (blocks for `EDGEDECODING_DTYPE_BFP`).
    pub len: usize,
}

/// A probe callback: called once per stage of every pass, in pass order, on
/// the thread that called prefill / decode, with `user` as given. It must
/// not unwind or `longjmp` out; calls on the same model handle from inside it
/// return `EDGEDECODING_ERR_BUSY`.
#[allow(non_camel_case_types)]
pub type edgedecoding_probe_fn =
    Option<unsafe extern "C" fn(user: *mut c_void, stage: *const edgedecoding_stage_data)>;

/// The decoder on one of the two backends, borrowing the session's owners.
// One per handle, inside the handle's box: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum Dec {
    Fast(Decoder<'static, 'static, Fast<'static>>),
    Reference(Decoder<'static, 'static, Serial>),
}

macro_rules! with_dec {
    ($dec:expr, $d:ident => $e:expr) => {
        match $dec {
            Dec::Fast($d) => $e,
            Dec::Reference($d) => $e,
        }
    };
}

// A handle may be used from any thread, one call at a time: what it holds
// must be `Send` (the raw owner pointers aside, which are plain boxes).
const _: fn() = || {
    fn send<T: Send>() {}
    send::<Dec>();
    send::<ModelBuf>();
    send::<StateMem>();
};

/// The boxes the decoder borrows, freed when the session is dropped (after
/// the decoder). Null until allocated.
struct Owners {
    buf: *mut ModelBuf,
    mem: *mut StateMem,
}

impl Drop for Owners {
    fn drop(&mut self) {
        // SAFETY: each pointer is null or came from `Box::into_raw` in
        // `open` and is freed only here, once. No borrow of them is alive:
        // the decoder is dropped before (by `Session::drop`, or, in `open`,
        // as a local declared after this one); this holds during unwinding
        // too, since drop order does not change then.
        unsafe {
            if !self.buf.is_null() {
                drop(Box::from_raw(self.buf));
            }
            if !self.mem.is_null() {
                drop(Box::from_raw(self.mem));
            }
        }
    }
}

struct Session {
    /// Borrows `*owners.buf` and `*owners.mem`; dropped first.
    dec: ManuallyDrop<Dec>,
    info: edgedecoding_model_info,
    /// Logits of a computed position are available.
    has_logits: bool,
    /// A call panicked or failed half-way: the state may be inconsistent.
    poisoned: bool,
    /// Frees what `dec` borrows; only held for its `Drop`, after `dec`'s.
    _owners: Owners,
}

impl Drop for Session {
    fn drop(&mut self) {
        // SAFETY: `dec` is dropped exactly once, here; `_owners` (a field) is
        // dropped after this body, so what `dec` borrows outlives it.
        unsafe { ManuallyDrop::drop(&mut self.dec) }
    }
}

fn open(buf: ModelBuf, backend: u32, threads: u32) -> R<Box<edgedecoding_model>> {
    if backend > EDGEDECODING_BACKEND_REFERENCE {
        return Err(fail(
            EDGEDECODING_ERR_PARAM,
            std::format!(
                "backend = {backend}: use EDGEDECODING_BACKEND_FAST (0) or _REFERENCE (1)"
            ),
        ));
    }
    let threads = match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n as usize,
    };
    // Declared first, so dropped last on every early return or unwind.
    let mut owners = Owners {
        buf: Box::into_raw(Box::new(buf)),
        mem: core::ptr::null_mut(),
    };
    // SAFETY: `owners.buf` is a live box, freed only by `Owners::drop`, which
    // runs after everything borrowing it (see `Owners`); the reference is
    // shared and nothing writes the `ModelBuf` while the handle lives.
    let buf: &'static ModelBuf = unsafe { &*owners.buf };
    let model = buf.model()?;
    let cfg = model.config;
    // the CPU decoder's prefill chunk, at most the context rounded up to 8
    let chunk = ::edgedecoding_model::cpu_chunk(&cfg);
    owners.mem = Box::into_raw(Box::new(StateMem::with_chunk(&cfg, chunk)));
    // SAFETY: as for `buf`; this is the only reference ever made to the
    // state memory, handed to the decoder's `State`.
    let mem: &'static mut StateMem = unsafe { &mut *owners.mem };
    let st = State::with_chunk(&cfg, mem.bytes(), chunk)?;
    let head = Head::derived(&model)?;
    let dec = match backend {
        EDGEDECODING_BACKEND_FAST => {
            Dec::Fast(Decoder::new(model, head, st, Fast::new(&model, threads)?)?)
        }
        _ => Dec::Reference(Decoder::new(model, head, st, Serial)?),
    };
    let used = match &dec {
        Dec::Fast(_) => threads,
        Dec::Reference(_) => 1,
    };
    let info = edgedecoding_model_info {
        n_layers: cfg.n_layers as u32,
        hidden: cfg.hidden as u32,
        ffn: cfg.ffn as u32,
        n_heads: cfg.n_heads as u32,
        n_kv_heads: cfg.n_kv_heads as u32,
        head_dim: cfg.head_dim as u32,
        vocab: cfg.vocab as u32,
        n_kept: cfg.n_kept as u32,
        rope_theta: cfg.rope_theta,
        ctx: cfg.ctx as u32,
        emb_exp: model.globals.emb_exp,
        final_norm_frac: model.globals.final_norm_frac,
        eps_q40: model.globals.eps_q40,
        backend,
        threads: used as u32,
    };
    Ok(Box::new(edgedecoding_model {
        busy: AtomicBool::new(false),
        session: UnsafeCell::new(Session {
            dec: ManuallyDrop::new(dec),
            info,
            has_logits: false,
            poisoned: false,
            _owners: owners,
        }),
    }))
}

/// Releases the busy flag when the call ends, also by unwinding.
struct Release<'a>(&'a AtomicBool);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Runs `f` on the session of handle `h`, holding its busy flag. The session
/// is marked poisoned while `f` runs: a panic leaves it so.
///
/// # Safety
/// `h` is NULL or a handle from `edgedecoding_model_open*` not yet closed.
unsafe fn with_session<T>(
    h: *const edgedecoding_model,
    f: impl FnOnce(&mut Session) -> R<T>,
) -> R<T> {
    if h.is_null() {
        return Err(fail(EDGEDECODING_ERR_NULL, "model: NULL handle"));
    }
    // SAFETY: a live handle by the contract; only shared references to the
    // handle are ever made, the session is reached through its cell.
    let handle = unsafe { &*h };
    if handle
        .busy
        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        return Err(fail(
            EDGEDECODING_ERR_BUSY,
            "model handle in use by another call (another thread, or a probe callback)",
        ));
    }
    let _release = Release(&handle.busy);
    // SAFETY: holding the busy flag makes this the only reference to the
    // session until `_release` drops (after `f` returns or unwinds).
    let s = unsafe { &mut *handle.session.get() };
    if s.poisoned {
        return Err(fail(
            EDGEDECODING_ERR_PANIC,
            "model handle poisoned by an earlier internal error: close it",
        ));
    }
    s.poisoned = true;
    let r = f(s);
    // errors the decoder reports before changing anything keep the handle
    // usable; any other failure leaves it poisoned
    if r.as_ref().err().is_none_or(|e| clean_error(e.status)) {
        s.poisoned = false;
    }
    r
}

/// Failures after which the decoder state is unchanged.
fn clean_error(s: edgedecoding_status) -> bool {
    matches!(
        s,
        EDGEDECODING_ERR_NULL
            | EDGEDECODING_ERR_LENGTH
            | EDGEDECODING_ERR_PARAM
            | EDGEDECODING_ERR_TOKEN
            | EDGEDECODING_ERR_CONTEXT_FULL
            | EDGEDECODING_ERR_EMPTY
    )
}

fn write_handle(out: *mut *mut edgedecoding_model, m: Box<edgedecoding_model>) {
    // SAFETY: `out` passed `out_ptr` in the caller; the box is handed over
    // to the C caller, who frees it with `edgedecoding_model_close`.
    unsafe { put(out, Box::into_raw(m)) }
}

/// Opens a `.edq` model file (memory-mapped read-only: the file must not be
/// modified while the handle is open) with a backend
/// (`EDGEDECODING_BACKEND_FAST` or `EDGEDECODING_BACKEND_REFERENCE`) on
/// `threads` threads (0: one per CPU; the reference backend uses one). The
/// first open validates the whole file (checksum, value ranges). On success
/// `*out` is a new handle; on failure `*out` is untouched.
#[no_mangle]
pub unsafe extern "C" fn edgedecoding_model_open(
    path: *const c_char,
    backend: u32,
    threads: u32,
    out: *mut *mut edgedecoding_model,
) -> edgedecoding_status {
    guard(|| {
        out_ptr("out", out)?;
        if path.is_null() {
            return Err(fail(EDGEDECODING_ERR_NULL, "path: NULL pointer"));
        }
        // SAFETY: a NUL-terminated string by the contract.
        let p = unsafe { CStr::from_ptr(path) };
        #[cfg(unix)]
        let pb = std::path::PathBuf::from(
            <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(p.to_bytes()),
        );
        #[cfg(not(unix))]
        let pb = std::path::PathBuf::from(
            p.to_str()
                .map_err(|_| fail(EDGEDECODING_ERR_IO, "path is not UTF-8"))?,
        );
        let buf = ModelBuf::map(&pb)
            .map_err(|e| fail(EDGEDECODING_ERR_IO, std::format!("{}: {e}", pb.display())))?;
        let m = open(buf, backend, threads).map_err(|e| Fail {
            msg: std::format!("{}: {}", pb.display(), e.msg),
            ..e
        })?;
        write_handle(out, m);
        Ok(())
    })
}

/// Opens a model from `.edq` bytes in memory (copied: the caller may free
/// them when this returns). Otherwise as `edgedecoding_model_open`.
#[no_mangle]
pub unsafe extern "C" fn edgedecoding_model_open_bytes(
    data: *const u8,
    len: usize,
    backend: u32,
    threads: u32,
    out: *mut *mut edgedecoding_model,
) -> edgedecoding_status {
    guard(|| {
        out_ptr("out", out)?;
        // SAFETY: an input buffer of `len` bytes by the contract.
        let bytes = unsafe { slice("data", data, len)? };
        let m = open(ModelBuf::from_bytes(bytes), backend, threads)?;
        write_handle(out, m);
        Ok(())
    })
}

/// Closes a handle and frees everything it owns. NULL is a no-op. A handle
/// in use (from inside its own probe callback, or by another thread) is not
/// closed: `EDGEDECODING_ERR_BUSY`.
#[no_mangle]
pub unsafe extern "C" fn edgedecoding_model_close(
    model: *mut edgedecoding_model,
) -> edgedecoding_status {
    guard(|| {
        if model.is_null() {
            return Ok(());
        }
        {
            // SAFETY: a live handle by the contract (shared reference only).
            let h = unsafe { &*model };
            // taken for good: no call can start on the handle any more
            if h.busy
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                return Err(fail(
                    EDGEDECODING_ERR_BUSY,
                    "model handle in use: not closed",
                ));
            }
        }
        // SAFETY: the handle came from `Box::into_raw` in `write_handle`, no
        // call is running on it (its busy flag is ours) and, by the
        // contract, it is not used again.
        drop(unsafe { Box::from_raw(model) });
        Ok(())
    })
}

/// The model's shape and globals.
#[no_mangle]
pub unsafe extern "C" fn edgedecoding_model_get_info(
    model: *const edgedecoding_model,
    out: *mut edgedecoding_model_info,
) -> edgedecoding_status {
    guard(|| {
        out_ptr("out", out)?;
        // SAFETY: a live handle or NULL (checked inside).
        let info = unsafe { with_session(model, |s| Ok(s.info))? };
        // SAFETY: checked by `out_ptr`.
        unsafe { put(out, info) };
        Ok(())
    })
}

/// The number formats of layer `layer` (`[0, n_layers)`).
#[no_mangle]
pub unsafe extern "C" fn edgedecoding_model_layer_formats(
    model: *const edgedecoding_model,
    layer: u32,
    out: *mut edgedecoding_layer_formats,
) -> edgedecoding_status {
    guard(|| {
        out_ptr("out", out)?;
        // SAFETY: a live handle or NULL (checked inside).
        let f = unsafe {
            with_session(model, |s| {
                if layer >= s.info.n_layers {
                    return Err(fail(
                        EDGEDECODING_ERR_PARAM,
                        std::format!("layer = {layer} is outside [0, {})", s.info.n_layers),
                    ));
                }
                let fm = with_dec!(&*s.dec, d => d.model().layer(layer as usize))?.fmt;
                Ok(edgedecoding_layer_formats {
                    q_frac: fm.q_frac,
                    k_frac: fm.k_frac,
                    v_frac: fm.v_frac,
                    attn_norm_frac: fm.attn_norm_frac,
                    ffn_norm_frac: fm.ffn_norm_frac,
                })
            })?
        };
        // SAFETY: checked by `out_ptr`.
        unsafe { put(out, f) };
        Ok(())
    })
}

/// Full token id of logit / embedding row `row` (`[0, n_kept)`; the identity
/// unless the vocabulary is pruned).
#[no_mangle]
pub unsafe extern "C" fn edgedecoding_model_token_of_row(
    model: *const edgedecoding_model,
    row: u32,
    token: *mut u32,
) -> edgedecoding_status {
    guard(|| {
        out_ptr("token", token)?;
        // SAFETY: a live handle or NULL (checked inside).
        let t = unsafe {
            with_session(model, |s| {
                if row >= s.info.n_kept {
                    return Err(fail(
                        EDGEDECODING_ERR_PARAM,
                        std::format!("row = {row} is outside [0, {})", s.info.n_kept),
                    ));
                }
                Ok(with_dec!(&*s.dec, d => d.model().token_of_row(row as usize)))
            })?
        };
        // SAFETY: checked by `out_ptr`.
        unsafe { put(token, t) };
        Ok(())
    })
}

/// Positions used so far (the next token's position).
#[no_mangle]
pub unsafe extern "C" fn edgedecoding_model_position(
    model: *const edgedecoding_model,
    pos: *mut usize,
) -> edgedecoding_status {
    guard(|| {
        out_ptr("pos", pos)?;
        // SAFETY: a live handle or NULL (checked inside).
        let p = unsafe { with_session(model, |s| Ok(with_dec!(&*s.dec, d => d.pos())))? };
        // SAFETY: checked by `out_ptr`.
        unsafe { put(pos, p) };
        Ok(())
    })
}

/// Forgets the context: position 0, no logits.
#[no_mangle]
pub unsafe extern "C" fn edgedecoding_model_reset(
    model: *mut edgedecoding_model,
) -> edgedecoding_status {
    guard(|| {
        // SAFETY: a live handle or NULL (checked inside).
        unsafe {
            with_session(model, |s| {
                with_dec!(&mut *s.dec, d => d.reset());
                s.has_logits = false;
                Ok(())
            })
        }
    })
}

/// The names of the stages, NUL-terminated, built once.
fn stage_names() -> &'static [CString] {
    static NAMES: OnceLock<Vec<CString>> = OnceLock::new();
    NAMES.get_or_init(|| {
        Stage::ALL
            .iter()
            .map(|s| CString::new(s.name()).unwrap_or_default())
            .collect()
    })
}

/// Name of stage `stage` (`[0, EDGEDECODING_STAGE_COUNT)`, pass order) as in
/// docs/VECTORS.md §4, static; NULL if out of range.
#[no_mangle]
pub extern "C" fn edgedecoding_stage_name(stage: i32) -> *const c_char {
    guard_value(core::ptr::null(), || {
        usize::try_from(stage)
            .ok()
            .and_then(|i| stage_names().get(i))
            .map_or(core::ptr::null(), |c| c.as_ptr())
    })
}

/// Hands one stage to the C callback.
fn report(
    cb: unsafe extern "C" fn(*mut c_void, *const edgedecoding_stage_data),
    user: *mut c_void,
    s: StageRef<'_>,
) {
    let (site, layer) = match s.site {
        Site::Embedding => (EDGEDECODING_SITE_EMBEDDING, -1),
        Site::Layer(l) => (EDGEDECODING_SITE_LAYER, l as i32),
        Site::Final => (EDGEDECODING_SITE_FINAL, -1),
        Site::Head => (EDGEDECODING_SITE_HEAD, -1),
    };
    let (dtype, values) = match s.values {
        Values::I32(v) => (EDGEDECODING_DTYPE_I32, v.as_ptr().cast::<c_void>()),
        Values::I16(v) => (EDGEDECODING_DTYPE_I16, v.as_ptr().cast::<c_void>()),
        Values::U32(v) => (EDGEDECODING_DTYPE_U32, v.as_ptr().cast::<c_void>()),
        // `BfpBlock` is laid out as `edgedecoding_bfp_block` (checked in ops.rs)
        Values::Bfp(v) => (EDGEDECODING_DTYPE_BFP, v.as_ptr().cast::<c_void>()),
    };
    let idx = Stage::ALL.iter().position(|&x| x == s.stage).unwrap_or(0);
    let data = edgedecoding_stage_data {
        site,
        layer,
        stage: idx as i32,
        dtype,
        name: stage_names()[idx].as_ptr(),
        start: s.start,
        tokens: s.tokens,
        values,
        len: s.values.len(),
    };
    // SAFETY: `cb` is a valid function by the contract (it does not unwind
    // and may not keep the pointers); `data` and the values it points to are
    // alive for the whole call.
    unsafe { cb(user, &data) }
}

/// Prefill / decode flavours.
#[derive(Clone, Copy)]
enum Step<'t> {
    Prefill(&'t [u32]),
    Decode(u32),
    DecodeParity(u32),
}

/// Runs one step on the session, with the probe if given, and writes the
/// next token if asked.
///
/// # Safety
/// `model` as in [`with_session`]; `next` NULL or writable.
unsafe fn step(
    model: *mut edgedecoding_model,
    what: Step<'_>,
    probe: edgedecoding_probe_fn,
    user: *mut c_void,
    next: *mut u32,
) -> R<()> {
    if !next.is_null() {
        out_ptr("next_token", next)?;
    }
    // SAFETY: a live handle or NULL (checked inside).
    let t = unsafe {
        with_session(model, |s| {
            let r: Result<u32, ModelError> = match (what, probe) {
                (Step::Prefill(toks), None) => with_dec!(&mut *s.dec, d => d.prefill(toks)),
                (Step::Prefill(toks), Some(cb)) => {
                    let mut p = |st: StageRef<'_>| report(cb, user, st);
                    with_dec!(&mut *s.dec, d => d.prefill_probed(toks, &mut p))
                }
                (Step::Decode(t), None) => with_dec!(&mut *s.dec, d => d.decode(t)),
                (Step::Decode(t), Some(cb)) => {
                    let mut p = |st: StageRef<'_>| report(cb, user, st);
                    with_dec!(&mut *s.dec, d => d.prefill_probed(core::slice::from_ref(&t), &mut p))
                }
                (Step::DecodeParity(t), None) => with_dec!(&mut *s.dec, d => d.decode_parity(t)),
                (Step::DecodeParity(t), Some(cb)) => {
                    let mut p = |st: StageRef<'_>| report(cb, user, st);
                    with_dec!(&mut *s.dec, d => d.decode_parity_probed(t, &mut p))
                }
            };
            let t = r?;
            s.has_logits = true;
            Ok(t)
        })?
    };
    if !next.is_null() {
        // SAFETY: checked by `out_ptr` above.
        unsafe { put(next, t) };
    }
    Ok(())
}

/// Runs `n_tokens` tokens (full ids) at the next positions, in chunks aligned
/// to multiples of 8 positions, and writes the greedy next token (full id) to
/// `*next_token` (may be NULL). The logits of the last token are then
/// available. On `EDGEDECODING_ERR_TOKEN`, `_CONTEXT_FULL` or `_LENGTH`
/// nothing changed.
#[no_mangle]
pub unsafe extern "C" fn edgedecoding_model_prefill(
    model: *mut edgedecoding_model,
    tokens: *const u32,
    n_tokens: usize,
    next_token: *mut u32,
) -> edgedecoding_status {
    // SAFETY: the contract of every argument is passed on.
    guard(|| unsafe {
        let toks = slice("tokens", tokens, n_tokens)?;
        step(
            model,
            Step::Prefill(toks),
            None,
            core::ptr::null_mut(),
            next_token,
        )
    })
}

/// `edgedecoding_model_prefill` reporting every stage of every pass to
/// `probe` (NULL: none): the layer stages of all tokens, and the final norm
/// and logits of every token (not only the last). An incremental decode step
/// with a probe is this function with one token.
#[no_mangle]
pub unsafe extern "C" fn edgedecoding_model_prefill_probed(
    model: *mut edgedecoding_model,
    tokens: *const u32,
    n_tokens: usize,
    probe: edgedecoding_probe_fn,
    user: *mut c_void,
    next_token: *mut u32,
) -> edgedecoding_status {
    // SAFETY: the contract of every argument is passed on.
    guard(|| unsafe {
        let toks = slice("tokens", tokens, n_tokens)?;
        step(model, Step::Prefill(toks), probe, user, next_token)
    })
}

/// One incremental decode step: `token` at the next position, only that
/// position computed; writes the greedy next token (may be NULL).
#[no_mangle]
pub unsafe extern "C" fn edgedecoding_model_decode(
    model: *mut edgedecoding_model,
    token: u32,
    next_token: *mut u32,
) -> edgedecoding_status {
    // SAFETY: the contract of every argument is passed on.
    guard(|| unsafe {
        step(
            model,
            Step::Decode(token),
            None,
            core::ptr::null_mut(),
            next_token,
        )
    })
}

/// One decode step exactly as the accelerator runs it: the whole current
/// chunk of 8 positions is re-run (earlier tokens recomputed, later slots
/// padded with the new token) and read at the new token's slot. Same result
/// as `edgedecoding_model_decode` (by causality; tested).
#[no_mangle]
pub unsafe extern "C" fn edgedecoding_model_decode_parity(
    model: *mut edgedecoding_model,
    token: u32,
    next_token: *mut u32,
) -> edgedecoding_status {
    // SAFETY: the contract of every argument is passed on.
    guard(|| unsafe {
        step(
            model,
            Step::DecodeParity(token),
            None,
            core::ptr::null_mut(),
            next_token,
        )
    })
}

/// `edgedecoding_model_decode_parity` reporting the stages of the re-run
/// chunk to `probe` (NULL: none): layer stages for all of its slots (padding
/// included), final norm and logits for the new token's slot.
#[no_mangle]
pub unsafe extern "C" fn edgedecoding_model_decode_parity_probed(
    model: *mut edgedecoding_model,
    token: u32,
    probe: edgedecoding_probe_fn,
    user: *mut c_void,
    next_token: *mut u32,
) -> edgedecoding_status {
    // SAFETY: the contract of every argument is passed on.
    guard(|| unsafe { step(model, Step::DecodeParity(token), probe, user, next_token) })
}

/// Copies the logits (Q12, one per kept row, `out_len == n_kept`) of the last
/// computed position. `EDGEDECODING_ERR_EMPTY` before the first prefill or
/// decode (and after a reset).
#[no_mangle]
pub unsafe extern "C" fn edgedecoding_model_logits(
    model: *const edgedecoding_model,
    out: *mut i32,
    out_len: usize,
) -> edgedecoding_status {
    guard(|| {
        span("out", out, out_len)?;
        let copy = |s: &mut Session| {
            if !s.has_logits {
                return Err(fail(
                    EDGEDECODING_ERR_EMPTY,
                    "no logits yet: prefill or decode first",
                ));
            }
            let l = with_dec!(&*s.dec, d => d.logits());
            if l.len() != out_len {
                return Err(KernelError::Length {
                    what: "logits",
                    expected: l.len(),
                    got: out_len,
                }
                .into());
            }
            // SAFETY: the caller's writable buffer of `out_len` values; it is
            // not memory of the handle (the handle's memory is never lent out).
            unsafe { slice_mut("out", out, out_len)? }.copy_from_slice(l);
            Ok(())
        };
        // SAFETY: a live handle or NULL (checked inside).
        unsafe { with_session(model, copy) }
    })
}

/// The greedy next token (full id) of the last computed position: the
/// argmax of its logits, the lowest row on ties (SPEC §10).
/// `EDGEDECODING_ERR_EMPTY` before the first prefill or decode.
#[no_mangle]
pub unsafe extern "C" fn edgedecoding_model_next_token(
    model: *const edgedecoding_model,
    token: *mut u32,
) -> edgedecoding_status {
    guard(|| {
        out_ptr("token", token)?;
        // SAFETY: a live handle or NULL (checked inside).
        let t = unsafe {
            with_session(model, |s| {
                if !s.has_logits {
                    return Err(fail(
                        EDGEDECODING_ERR_EMPTY,
                        "no logits yet: prefill or decode first",
                    ));
                }
                Ok(with_dec!(&*s.dec, d => d.next_token()))
            })?
        };
        // SAFETY: checked by `out_ptr`.
        unsafe { put(token, t) };
        Ok(())
    })
}
