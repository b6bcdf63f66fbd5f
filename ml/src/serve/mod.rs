//! OpenLoRA serving: adapter store, device cache and heterogeneous batched serving.
