//! Shared workload builders for the benches.
