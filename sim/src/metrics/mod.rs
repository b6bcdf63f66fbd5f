//! Measures computed from what the chain recorded, judged against the scenario's ground truth.

pub mod fairness;
