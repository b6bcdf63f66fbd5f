//! `wash_inference`: an attacker owns a model and pays for inferences on it with its other
//! keys, to farm the owner's share of the fees (and, for the data it contributed, the
//! contributors' share).
//!
//! It registers the model as its developer would (it is the model's owner) and, from its
//! `start_epoch` on and once the model is registered, buys `calls_per_epoch` calls on it each
//! epoch through `InferenceMarket.payInference`, right after the honest users paid. The
//! calls are served and attributed like any others.

use std::collections::BTreeMap;

use alloy_primitives::U256;
use burn::tensor::backend::AutodiffBackend;

use super::{Attack, Budget, Cast, Moment};
use crate::engine::actors::{AgentId, Role};
use crate::engine::economy::{self, Purchase};
use crate::engine::epoch::{EpochState, Stage};
use crate::engine::{EngineError, Sim};
use crate::scenario::AttackKind;

/// A wash-trading key buying calls on its owner's model.
#[derive(Clone, Copy, Debug)]
struct Buyer {
    agent: AgentId,
    /// The model, by `[[models]]` index.
    model: usize,
    /// Calls it buys per epoch.
    calls: u64,
    /// First epoch it buys in.
    start_epoch: u32,
}

/// The scenario's wash traders: one owner per attacked model, one buyer per attacker.
#[derive(Default)]
pub struct WashTraders(Vec<Buyer>);

impl<B: AutodiffBackend> Attack<B> for WashTraders {
    fn cast(&mut self, cast: &mut Cast<'_>) -> Result<(), EngineError> {
        let role = Role::Attacker(AttackKind::WashInference);
        let mut entries: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (a, attacker) in cast.scenario.attackers_of(AttackKind::WashInference) {
            let name = attacker.model.as_deref().unwrap_or_default();
            let model = cast
                .scenario
                .models
                .iter()
                .position(|m| m.name == name)
                .ok_or_else(|| {
                    EngineError::Scenario(format!("attackers[{a}]: no model named `{name}`"))
                })?;
            entries.entry(model).or_default().push(a);
        }
        for (model, attackers) in entries {
            // The first entry naming a model owns it; every attacker buys with its own key.
            let name = &cast.scenario.models[model].name;
            let owner = cast
                .actors
                .add(format!("{name}/wash-owner-{}", attackers[0]), role);
            cast.owners.insert(model, owner);
            for a in attackers {
                let attacker = &cast.scenario.attackers[a];
                for k in 0..attacker.count {
                    self.0.push(Buyer {
                        agent: cast.actors.add(format!("{name}/wash-buyer-{a}-{k}"), role),
                        model,
                        calls: attacker.calls_per_epoch(),
                        start_epoch: attacker.start_epoch,
                    });
                }
            }
        }
        Ok(())
    }

    /// Twice the fees of every call it buys over the run.
    fn budgets(&self, sim: &Sim<B>) -> Result<Vec<Budget>, EngineError> {
        let epochs = u64::from(sim.scenario.run.epochs);
        let mut out = Vec::new();
        for b in &self.0 {
            let active = epochs.saturating_sub(u64::from(b.start_epoch));
            let calls = U256::from(2 * b.calls * active);
            let price = sim.models[b.model].price_wei;
            out.push((b.agent, calls * price, sim.net.deployment.market));
        }
        Ok(out)
    }

    /// Right after the users paid, each buyer pays for its calls on its registered model.
    fn act(
        &mut self,
        at: Moment,
        sim: &mut Sim<B>,
        epoch: &mut EpochState,
    ) -> Result<(), EngineError> {
        if at != Moment::After(Stage::Payment) {
            return Ok(());
        }
        let purchases: Vec<Purchase> = self
            .0
            .iter()
            .filter(|b| epoch.number >= b.start_epoch && sim.models[b.model].chain_id.is_some())
            .map(|b| Purchase {
                agent: b.agent,
                model: b.model,
                calls: b.calls,
                label: "pay inference (wash)",
            })
            .collect();
        let paid = economy::buy(&mut sim.net, &sim.models, epoch.number, &purchases)?;
        for (total, more) in epoch.paid.iter_mut().zip(paid) {
            *total += more;
        }
        Ok(())
    }
}
