//! The olsim simulator: scenario files, the epoch engine, agents and attackers, metrics and
//! reports. The `olsim` binary (`src/main.rs`) is a thin command-line layer over this library.

pub mod alloc;
pub mod bench;
pub mod check;
pub mod claims;
pub mod compare;
pub mod engine;
pub mod frames;
pub mod metrics;
pub mod output;
pub mod report;
pub mod scenario;
pub mod sweep;
pub mod units;
