//! Attacker kinds whose behaviour lives in the engine, one module each. Every attacker acts
//! only through the contracts and data paths honest agents use.
//!
//! | kind | where its behaviour is |
//! |---|---|
//! | `label_flip`, `backdoor`, `spammer`, `copycat` | data made by the `ml` generator ([`olsim_ml::data::Behaviour`]) |
//! | `sybil` | one honest-quality contributor split over identities (`scenario::convert`) |
//! | `attribution_gaming` | [`attribution_gaming`]: records crafted where served inputs concentrate |
//! | `wash_inference` | its own model and paying keys (`engine::models`, `engine::economy`) |
//! | `colluding_reviewers` | extra reviewers who vote by intent (`engine::data`) |
//! | `jit_staker` | [`jit_staker`]: stake just before the payments, unstake after |

pub mod attribution_gaming;
pub mod jit_staker;
