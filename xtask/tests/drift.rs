//! Generated files must match the code that generates them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code

#[test]
fn c_header_is_current() {
    let fresh = xtask::generate_header(&xtask::root().join("smm-ffi")).unwrap();
    let on_disk = std::fs::read_to_string(xtask::header_path()).unwrap_or_default();
    assert!(
        fresh == on_disk,
        "smm-ffi/include/smm.h is stale: run `cargo xtask bless` and commit the result"
    );
}
