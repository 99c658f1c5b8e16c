//! Prints `kernels/src/tables.rs`'s two ROM tables from their definitions.
//!
//! `cargo run -p edgedecoding-kernels --example gen_tables > /tmp/t.rs` and
//! compare; the unit tests in `tables.rs` recompute every entry the same way.
fn main() {
    println!("pub const EXP2_NEG_Q15: [u16; 256] = [");
    for f in 0..256 {
        let v = libm::round(32768.0 * libm::exp2(-(f as f64) / 256.0));
        print!("{}{}", v as u16, if f % 16 == 15 { ",\n" } else { ", " });
    }
    println!("];");
    println!("pub const SIGMOID_Q15: [u16; 257] = [");
    for i in 0..257 {
        let x = -8.0 + i as f64 / 16.0;
        let v = libm::round(32768.0 / (1.0 + libm::exp(-x)));
        print!(
            "{}{}",
            v as u16,
            if i % 16 == 15 || i == 256 {
                ",\n"
            } else {
                ", "
            }
        );
    }
    println!("];");
}
