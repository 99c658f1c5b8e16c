//! The memory functions LLVM may call on its own (`memcpy` for large moves,
//! `memset` for zeroing, `memcmp`/`bcmp` for slice comparison). There is no C
//! library to provide them.
//!
//! Each is one x86_64 string instruction in inline assembly, so LLVM cannot
//! recognise the body as a copy loop and turn it back into a call to itself.
//! The SysV ABI guarantees the direction flag is clear at every call, so
//! `rep movsb`/`rep stosb`/`repe cmpsb` run forward unless `memmove` sets it
//! (and clears it again).

use core::arch::asm;

/// C `memcpy`.
///
/// # Safety
///
/// `src` must be readable and `dest` writable for `n` bytes, and the two
/// ranges must not overlap.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees both ranges are valid for `n` bytes;
    // `rep movsb` copies exactly rcx = n bytes from [rsi] to [rdi] forward
    // (DF = 0 by the ABI) and changes only the declared registers.
    unsafe {
        asm!(
            "rep movsb",
            inout("rcx") n => _,
            inout("rdi") dest => _,
            inout("rsi") src => _,
            options(nostack, preserves_flags),
        );
    }
    dest
}

/// C `memmove`: the ranges may overlap.
///
/// # Safety
///
/// `src` must be readable and `dest` writable for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dest as usize).wrapping_sub(src as usize) >= n {
        // `dest` is below `src`, or the ranges are disjoint: a forward copy
        // reads every byte before it can be overwritten.
        // SAFETY: as in `memcpy`; forward byte order is correct for this case.
        unsafe {
            asm!(
                "rep movsb",
                inout("rcx") n => _,
                inout("rdi") dest => _,
                inout("rsi") src => _,
                options(nostack, preserves_flags),
            );
        }
    } else {
        // `dest` starts inside (src, src + n): copy from the last byte down.
        // Here n >= 1 (otherwise the difference could not be below n).
        // SAFETY: the caller guarantees both ranges are valid for `n` bytes, so
        // `dest + n - 1` and `src + n - 1` are in bounds; `std` makes
        // `rep movsb` walk downward over exactly n bytes and `cld` restores
        // DF = 0 as the ABI requires before returning.
        unsafe {
            asm!(
                "std",
                "rep movsb",
                "cld",
                inout("rcx") n => _,
                inout("rdi") dest.add(n - 1) => _,
                inout("rsi") src.add(n - 1) => _,
                options(nostack),
            );
        }
    }
    dest
}

/// C `memset`.
///
/// # Safety
///
/// `s` must be writable for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memset(s: *mut u8, c: i32, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees `s` is writable for `n` bytes; `rep stosb`
    // stores al to exactly rcx = n bytes forward from [rdi].
    unsafe {
        asm!(
            "rep stosb",
            inout("rcx") n => _,
            inout("rdi") s => _,
            in("al") c as u8,
            options(nostack, preserves_flags),
        );
    }
    s
}

/// C `memcmp`: sign of the first differing byte pair (as unsigned bytes).
///
/// # Safety
///
/// `a` and `b` must be readable for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    if n == 0 {
        return 0;
    }
    let (end_a, end_b): (*const u8, *const u8);
    // SAFETY: the caller guarantees both ranges are readable for `n` bytes;
    // `repe cmpsb` reads at most n bytes of each, stopping after the first
    // unequal pair, and writes no memory.
    unsafe {
        asm!(
            "repe cmpsb",
            inout("rcx") n => _,
            inout("rsi") a => end_a,
            inout("rdi") b => end_b,
            options(nostack, readonly),
        );
    }
    // The last pair compared decides: it is the first unequal pair, or, if all
    // n pairs were equal, an equal pair.
    // SAFETY: at least one pair was compared (n >= 1), so both pointers moved
    // forward by at least one byte and still point into or just past the
    // caller's ranges; `sub(1)` is the last byte read.
    let (x, y) = unsafe { (*end_a.sub(1), *end_b.sub(1)) };
    i32::from(x) - i32::from(y)
}

/// `bcmp`: zero if and only if the ranges are equal.
///
/// # Safety
///
/// `a` and `b` must be readable for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: same contract as `memcmp`.
    unsafe { memcmp(a, b, n) }
}
