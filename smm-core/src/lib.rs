#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![deny(unsafe_code)]

// The layers, bottom up; a module imports only from layers below its own
// (`tests/layers.rs` reads every `use crate::` path and fails on any other).
//
// 0. leaf: canonical JSON and pointers, time, limits, error kinds, the pool,
//    huge-page columns (the one module allowed `unsafe`: one `madvise` call),
//    and the unit tests' generator.
mod hugepages;
pub mod jcs;
mod kind;
pub mod limits;
#[cfg(feature = "postgres")]
mod pg;
mod pool;
#[cfg(test)]
mod test_rng;
pub mod time;
// 1-5. the domains, in this order.
pub mod audit;
pub mod contract;
pub mod policy;
pub mod sim;
pub mod usage;
// 6. on top: the flow and what composes the domains.
pub mod breach;
pub mod error;
pub mod flow;
#[cfg(feature = "fs")]
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "fs")]
pub mod host;
pub mod schema;

pub use error::Error;

/// The workspace README's Rust examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
