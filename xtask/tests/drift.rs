//! Generated files must match the code that generates them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code"
)]

#[test]
fn c_header_is_current() {
    let fresh = xtask::generate_header(&xtask::root().join("smm-ffi")).unwrap();
    let on_disk = std::fs::read_to_string(xtask::header_path()).unwrap_or_default();
    assert!(
        fresh == on_disk,
        "smm-ffi/include/smm.h is stale: run `cargo xtask bless` and commit the result"
    );
}

#[test]
fn c_limits_are_generated_from_the_core() {
    let on_disk = std::fs::read_to_string(xtask::ffi_limits_path()).unwrap_or_default();
    assert!(
        xtask::generate_ffi_limits() == on_disk,
        "smm-ffi/src/limits.rs is stale: run `cargo xtask bless` and commit the result"
    );
}

#[test]
fn v2_example_chains_to_the_v1_example() {
    let fresh = xtask::chained_v2_example().unwrap();
    let on_disk =
        std::fs::read_to_string(xtask::root().join("examples/workspace.icblabs.v2.json")).unwrap();
    assert!(
        fresh == on_disk,
        "examples/workspace.icblabs.v2.json does not point at the v1 example's terms hash: run `cargo xtask bless`"
    );
}

#[test]
fn examples_carry_the_default_policy_checksum_and_a_current_policy_input() {
    let dir = xtask::root().join("examples");
    for (name, fresh) in [
        ("workspace.icblabs.v1.json", xtask::v1_example().unwrap()),
        (
            "policy-input.icblabs.json",
            xtask::policy_input_example().unwrap(),
        ),
    ] {
        let on_disk = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        assert!(
            fresh == on_disk,
            "examples/{name} is stale: run `cargo xtask bless`"
        );
    }
}
