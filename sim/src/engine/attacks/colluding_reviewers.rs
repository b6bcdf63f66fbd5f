//! `colluding_reviewers`: reviewers of a Datanet who, from `start_epoch` on, accept every
//! attacker's contribution and reject an honest one with probability `rate` (before it they
//! review honestly, like the Datanet's other reviewers).
//!
//! The curator appoints them like any reviewer (`DatanetRegistry.addReviewer`), and they vote
//! with `review` like any reviewer; only their intent differs ([`vote`]). Their own stake is
//! none, so their return on capital is undefined: their effect shows in the other kinds'
//! detection and in the honest contributions rejected.

use burn::tensor::backend::AutodiffBackend;
use rand::RngExt;

use super::{Attack, Cast};
use crate::engine::EngineError;
use crate::engine::actors::Role;
use crate::engine::data::Reviewer;
use crate::scenario::AttackKind;

/// The scenario's colluding reviewers (they live among their Datanets' reviewers).
#[derive(Default)]
pub struct Colluders;

impl<B: AutodiffBackend> Attack<B> for Colluders {
    fn cast(&mut self, cast: &mut Cast<'_>) -> Result<(), EngineError> {
        for (a, attacker) in cast.scenario.attackers_of(AttackKind::ColludingReviewers) {
            let target = attacker.datanet.as_deref().unwrap_or_default();
            let Some(net) = cast.datanets.iter_mut().find(|n| n.name == target) else {
                return Err(EngineError::Scenario(format!(
                    "attackers[{a}]: no Datanet named `{target}`"
                )));
            };
            for i in 0..attacker.count {
                net.reviewers.push(Reviewer {
                    agent: cast.actors.add(
                        format!("{}/colluding-reviewer-{a}-{i}", net.name),
                        Role::Attacker(AttackKind::ColludingReviewers),
                    ),
                    colluding: Some((attacker.rate(), attacker.start_epoch)),
                });
            }
        }
        Ok(())
    }
}

/// A colluding reviewer's vote: accept any attacker's contribution; reject an honest one with
/// probability `reject_rate`.
pub fn vote(rng: &mut impl rand::Rng, by_attacker: bool, reject_rate: f64) -> bool {
    by_attacker || !rng.random_bool(reject_rate)
}
