//! Links the executable without the C runtime and without any C library.
//!
//! * `-nostartfiles`: no `crt1.o`/`crti.o`/`crtbegin.o`; `_start` is ours
//!   (`src/main.rs`).
//! * `-nostdlib`: no `libc`, no `libgcc`, no default libraries at all
//!   (`compiler_builtins` of the Rust toolchain supplies the integer helpers).
//! * `-static`, `-no-pie`: a fixed-address `ET_EXEC` without `PT_INTERP` or
//!   `PT_DYNAMIC`, so no dynamic loader and no relocation at start-up (we have
//!   no code to apply relocations).
//!
//! Only the binary gets these arguments (`rustc-link-arg-bins`); build scripts
//! and proc macros of dependencies link normally.
fn main() {
    for arg in ["-nostartfiles", "-nostdlib", "-static", "-no-pie"] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
