//! Gradient influence of training records on model outputs (DataInf, TracIn, exact).
