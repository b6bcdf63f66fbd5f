//! Run-time device choice (CPU, or CUDA behind the `cuda` feature) and device profiles for modelled cost.
