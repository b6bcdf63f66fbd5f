//! Language model: word-level tokenizer and a small causal transformer with LoRA adapters.
