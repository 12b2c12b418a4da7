#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod audit;
pub mod contract;
pub mod error;
pub mod flow;
#[cfg(feature = "fs")]
#[doc(hidden)]
pub mod fuzzing;
pub mod jcs;
pub mod limits;
pub mod policy;
mod pool;
pub mod schema;
pub mod sim;
pub mod time;
pub mod usage;

pub use error::Error;

/// The workspace README's Rust examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
