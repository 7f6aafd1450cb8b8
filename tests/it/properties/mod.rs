//! Property tests (proptest) of the parts that read data vt-enrich did not choose: the address
//! parser, the free-text extractor and the flattener.
//!
//! Each property runs a few hundred cases by default so that `cargo test` stays fast. Set
//! `PROPTEST_CASES` for a long run by hand, for example `PROPTEST_CASES=100000 cargo test
//! --release --test it properties::`.

mod address;
mod extract;
mod flatten;
mod oracle;

use proptest::test_runner::Config;

/// Returns the proptest settings with `default_cases` cases, or `PROPTEST_CASES` when it is set.
///
/// Failing cases are not saved to `proptest-regressions` files: each failure found is kept as
/// an ordinary test beside the code it broke instead.
pub fn config(default_cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default_cases);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}
