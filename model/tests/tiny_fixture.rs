//! The committed tiny model is exactly what the built-in generator produces,
//! and its no_std workload runs (the freestanding check compares its hash).

use edgedecoding_model::builtin::{generate, DEFAULT_SEED};
use edgedecoding_model::selftest::{tiny_edq, workload, TINY_CONFIG};

#[test]
fn committed_tiny_model_is_reproducible() {
    let fresh = generate(&TINY_CONFIG, DEFAULT_SEED, 2, &mut |_, _, _| {}).unwrap();
    assert!(
        fresh == tiny_edq(),
        "model/data/tiny.edq differs from the generator's output; regenerate with `cargo run -p edgedecoding-model --example gen_tiny_fixture`"
    );
}

#[test]
fn workload_runs_and_depends_on_the_model() {
    let h = workload().unwrap();
    assert_ne!(h, 0);
    assert_eq!(h, workload().unwrap());
}
