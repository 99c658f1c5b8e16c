//! The whole "runtime": program entry, two Linux system calls, the panic
//! handler and a fixed-size line buffer. x86_64 Linux only.

use core::arch::{asm, global_asm};
use core::fmt;

/// File descriptor of standard output.
pub const STDOUT: i32 = 1;
/// File descriptor of standard error.
pub const STDERR: i32 = 2;

const SYS_WRITE: isize = 1;
const SYS_EXIT_GROUP: isize = 231;
const EINTR: isize = 4;

// The kernel starts the process at `_start` with `rsp` pointing at `argc`
// (16-byte aligned by the x86_64 SysV ABI, re-aligned here anyway) and no
// return address. Clear `rbp` to end frame-pointer chains, then call Rust with
// the stack aligned as the ABI requires at a call site. `entry` never returns;
// `ud2` traps if it ever did.
global_asm!(
    ".globl _start",
    ".type _start, @function",
    "_start:",
    "xor ebp, ebp",
    "and rsp, -16",
    "call {entry}",
    "ud2",
    ".size _start, . - _start",
    entry = sym entry,
);

extern "C" fn entry() -> ! {
    exit_group(crate::run())
}

/// `write(2)` of the whole buffer, retrying on partial writes and `EINTR`;
/// other errors are ignored (there is nobody left to tell).
pub fn write_all(fd: i32, mut buf: &[u8]) {
    while !buf.is_empty() {
        let ret: isize;
        // SAFETY: write(2) only reads `buf.len()` bytes at `buf.as_ptr()`, which
        // is a live borrowed slice. The `syscall` instruction clobbers rcx and
        // r11 (declared) and does not touch the user stack.
        unsafe {
            asm!(
                "syscall",
                inlateout("rax") SYS_WRITE => ret,
                in("rdi") fd as isize,
                in("rsi") buf.as_ptr(),
                in("rdx") buf.len(),
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack, readonly),
            );
        }
        if ret > 0 {
            buf = buf.get(ret as usize..).unwrap_or(&[]);
        } else if ret != -EINTR {
            return;
        }
    }
}

/// `exit_group(2)`: ends the process with `code`.
pub fn exit_group(code: i32) -> ! {
    // SAFETY: exit_group(2) takes a plain integer, reads no memory of ours and
    // does not return.
    unsafe {
        asm!(
            "syscall",
            in("rax") SYS_EXIT_GROUP,
            in("rdi") code as isize,
            options(noreturn, nostack),
        );
    }
}

/// A line built with `core::fmt` into a fixed buffer and written with one
/// system call; text beyond the buffer is dropped.
pub struct Line {
    buf: [u8; 512],
    len: usize,
}

impl Line {
    pub const fn new() -> Self {
        Self {
            buf: [0; 512],
            len: 0,
        }
    }

    pub fn flush(&mut self, fd: i32) {
        write_all(fd, &self.buf[..self.len]);
        self.len = 0;
    }
}

impl fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len() - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// The unwind tables of the precompiled `core` name this personality routine
/// (`DW.ref.rust_eh_personality`); unoptimized builds keep those tables, so the
/// symbol must exist to link. It is never called: with `panic = "abort"`
/// nothing unwinds. Should it ever be, the process ends.
#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() -> ! {
    exit_group(134)
}

/// Prints the panic (location and message) on stderr and exits with 101, the
/// status a `std` program's panic produces.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let mut line = Line::new();
    let _ = fmt::write(
        &mut line,
        format_args!("edgedecoding-no-std-check: {info}\n"),
    );
    line.flush(STDERR);
    exit_group(101)
}
