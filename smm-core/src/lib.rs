#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod audit;
pub mod contract;
pub mod error;
pub mod jcs;
pub mod policy;
mod pool;
pub mod schema;
pub mod sim;
pub mod time;

pub use error::Error;
