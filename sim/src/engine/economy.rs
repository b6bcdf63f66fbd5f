//! Money each epoch: stakers stake, users pay for inferences (demand spread by popularity and
//! price), the served outputs are attributed, contributor pools are settled by push or Merkle
//! claims, harmful contributions are slashed, and stakers claim their share.

use burn::tensor::backend::AutodiffBackend;
use std::collections::BTreeMap;

use alloy_primitives::{Address, U256, keccak256};
use olsim_chain::client::view;
use olsim_chain::contracts::{
    AttributionRewards, DatanetRegistry, InferenceMarket, ModelRegistry, StakingGovernance,
};
use olsim_chain::merkle::RewardTree;
use olsim_ml::data::ContributorId;

use super::actors::AgentId;
use super::pipeline::Weights;
use super::txs::Action;
use super::{EngineError, Sim, open};
use crate::scenario::{ModelKind, Settlement};

/// A contribution is slashed as harmful when its summed influence is below minus this many
/// times the mean absolute summed influence of the model's contributions.
pub const HARM_THRESHOLD: f64 = 1.0;

/// `agent` buys `calls` inference calls on model `model` (an index of the run's models).
#[derive(Clone, Copy, Debug)]
pub struct Purchase {
    /// Who pays.
    pub agent: AgentId,
    /// The model, by index.
    pub model: usize,
    /// Calls bought (at most `u32::MAX` in one payment).
    pub calls: u64,
    /// The transaction's label in the log.
    pub label: &'static str,
}

/// Recipients per `settlePush` transaction (about 35k gas each, well under the block limit).
const PUSH_CHUNK: usize = 200;

impl<B: AutodiffBackend> Sim<B> {
    /// The `[[stakers]]` stake their OPEN (in setup, before epoch 0).
    pub(super) fn stake(&mut self, epoch: u32) -> Result<(), EngineError> {
        let d = self.deployment;
        let mut actions = Vec::new();
        for &(g, staker) in &self.stakers {
            actions.push(Action::call(
                staker,
                "stake",
                d.governance,
                &StakingGovernance::stakeCall {
                    amount: open(self.scenario.stakers[g].stake)?,
                },
            ));
        }
        self.send(epoch, actions)?;
        Ok(())
    }

    /// Calls per model this epoch: `[inference]` demand spread by popularity and scaled by
    /// price elasticity, plus grant-funded models' own demand.
    pub(super) fn demand(&self) -> Vec<u64> {
        let live: Vec<usize> = (0..self.models.len())
            .filter(|&m| self.models[m].chain_id.is_some())
            .collect();
        let offers: Vec<(f64, f64)> = live
            .iter()
            .map(|&m| (self.models[m].price, self.models[m].weight))
            .collect();
        let mut calls = vec![0u64; self.models.len()];
        for (&m, n) in live.iter().zip(self.scenario.inference.demand(&offers)) {
            calls[m] = n + self.models[m].extra_calls;
        }
        calls
    }

    /// Users pay for this epoch's `calls` per model, `calls_per_payment` at a time, in turn;
    /// returns the calls paid per model.
    pub(super) fn pay(&mut self, epoch: u32, calls: &[u64]) -> Result<Vec<u64>, EngineError> {
        let per_payment = u64::from(self.scenario.inference.calls_per_payment.max(1));
        let mut purchases = Vec::new();
        let mut next_user = self.next_payer;
        for (m, model) in self.models.iter().enumerate() {
            if model.chain_id.is_none() {
                continue;
            }
            let mut left = calls[m];
            while left > 0 && !self.users.is_empty() {
                let count = left.min(per_payment);
                purchases.push(Purchase {
                    agent: self.users[next_user % self.users.len()],
                    model: m,
                    calls: count,
                    label: "pay inference",
                });
                next_user += 1;
                left -= count;
            }
        }
        self.next_payer = next_user;
        self.buy(epoch, &purchases)
    }

    /// Sends `purchases` (`InferenceMarket.payInference`, at most the model's price per call)
    /// and returns the calls paid per model; a refused purchase pays for nothing.
    pub(super) fn buy(
        &mut self,
        epoch: u32,
        purchases: &[Purchase],
    ) -> Result<Vec<u64>, EngineError> {
        let d = self.deployment;
        let mut actions = Vec::with_capacity(purchases.len());
        for p in purchases {
            let model = &self.models[p.model];
            let id = model.chain_id.ok_or_else(|| {
                EngineError::Scenario(format!("model `{}` is not registered yet", model.name))
            })?;
            let count = p.calls.min(u64::from(u32::MAX)) as u32;
            actions.push(Action::call(
                p.agent,
                p.label,
                d.market,
                &InferenceMarket::payInferenceCall {
                    modelId: id,
                    count,
                    maxFee: model.price_wei * U256::from(count),
                },
            ));
        }
        let receipts = self.send(epoch, actions)?;
        let mut paid = vec![0u64; self.models.len()];
        for (p, receipt) in purchases.iter().zip(receipts) {
            if receipt.is_some() {
                paid[p.model] += p.calls.min(u64::from(u32::MAX));
            }
        }
        Ok(paid)
    }

    /// Slashes the contributions whose attributed influence on model `m`'s outputs is
    /// harmful, then pays the model's contributor pool by the positive weights.
    pub(super) fn settle(
        &mut self,
        epoch: u32,
        m: usize,
        by_contributor: &Weights,
    ) -> Result<(), EngineError> {
        let d = self.deployment;
        let Some(model_id) = self.models[m].chain_id else {
            return Ok(());
        };
        self.slash_harmful(epoch, by_contributor)?;
        let pool = view(
            self.chain.as_mut(),
            d.rewards,
            &AttributionRewards::poolOfCall(model_id),
        )?;
        let positive: Vec<(Address, f64)> = by_contributor
            .iter()
            .filter(|(_, s)| **s > 0.0)
            .map(|(&(n, c), &s)| {
                let agent = self.datanets[n].identities[c.0 as usize].agent;
                (self.actors.address(agent), s)
            })
            .collect();
        let total: f64 = positive.iter().map(|p| p.1).sum();
        if pool.is_zero() || total <= 0.0 {
            return Ok(());
        }
        // Shares in parts per billion, so amounts are exact integer arithmetic on chain.
        const PARTS: u64 = 1_000_000_000;
        let mut entries: BTreeMap<Address, U256> = BTreeMap::new();
        for (account, s) in positive {
            let parts = ((s / total) * PARTS as f64).floor() as u64;
            let amount = pool * U256::from(parts) / U256::from(PARTS);
            if !amount.is_zero() {
                *entries.entry(account).or_default() += amount;
            }
        }
        self.pay_out(epoch, model_id, entries.into_iter().collect())
    }

    /// Pays `entries` from the model's pool by the scenario's settlement mode.
    fn pay_out(
        &mut self,
        epoch: u32,
        model_id: U256,
        entries: Vec<(Address, U256)>,
    ) -> Result<(), EngineError> {
        if entries.is_empty() {
            return Ok(());
        }
        let d = self.deployment;
        let epoch_tag = u64::from(epoch) + 1;
        match self.scenario.tokenomics.settlement {
            Settlement::Push => {
                let actions = entries
                    .chunks(PUSH_CHUNK)
                    .map(|chunk| {
                        let (recipients, amounts): (Vec<_>, Vec<_>) = chunk.iter().copied().unzip();
                        Action::call(
                            self.admin,
                            "settle rewards (push)",
                            d.rewards,
                            &AttributionRewards::settlePushCall {
                                modelId: model_id,
                                epoch: epoch_tag,
                                recipients,
                                amounts,
                            },
                        )
                        .with_gas(100_000 + 40_000 * chunk.len() as u64)
                    })
                    .collect();
                self.send(epoch, actions)?;
            }
            Settlement::Merkle => {
                let tree = RewardTree::new(&entries)
                    .map_err(|e| EngineError::Scenario(format!("reward tree: {e}")))?;
                let post = Action::call(
                    self.admin,
                    "post reward root",
                    d.rewards,
                    &AttributionRewards::postRootCall {
                        modelId: model_id,
                        epoch: epoch_tag,
                        root: tree.root(),
                        total: tree.total(),
                    },
                );
                if self.send(epoch, vec![post])?[0].is_none() {
                    return Ok(());
                }
                let claims = entries
                    .iter()
                    .filter_map(|&(account, amount)| {
                        let agent = self.actors.by_address(account)?;
                        Some(Action::call(
                            agent,
                            "claim reward",
                            d.rewards,
                            &AttributionRewards::claimCall {
                                modelId: model_id,
                                epoch: epoch_tag,
                                account,
                                amount,
                                proof: tree.proof(account).unwrap_or_default(),
                            },
                        ))
                    })
                    .collect();
                self.send(epoch, claims)?;
            }
        }
        Ok(())
    }

    /// The attributor slashes accepted contributions whose net influence is harmful.
    fn slash_harmful(
        &mut self,
        epoch: u32,
        by_contributor: &BTreeMap<(usize, ContributorId), f64>,
    ) -> Result<(), EngineError> {
        if by_contributor.is_empty() {
            return Ok(());
        }
        let mean_abs =
            by_contributor.values().map(|s| s.abs()).sum::<f64>() / by_contributor.len() as f64;
        let d = self.deployment;
        let mut actions = Vec::new();
        for (&(n, c), &s) in by_contributor {
            if s >= -HARM_THRESHOLD * mean_abs {
                continue;
            }
            let net = &self.datanets[n];
            for contribution in net.contributions.iter().filter(|x| x.contributor == c) {
                if self.books.harmful.contains_key(&contribution.chain_id) {
                    continue;
                }
                actions.push(Action::call(
                    self.admin,
                    "slash harmful contribution",
                    d.datanets,
                    &DatanetRegistry::slashHarmfulCall {
                        contributionId: contribution.chain_id,
                        evidence: keccak256(format!("influence {s:e} epoch {epoch}")),
                    },
                ));
            }
        }
        self.send(epoch, actions)?;
        Ok(())
    }

    /// Stakers with pending staking rewards claim them.
    pub(super) fn claim_staking(&mut self, epoch: u32) -> Result<(), EngineError> {
        let d = self.deployment;
        let mut actions = Vec::new();
        for &(_, staker) in &self.stakers {
            let pending = view(
                self.chain.as_mut(),
                d.governance,
                &StakingGovernance::pendingRewardsCall {
                    account: self.actors.address(staker),
                },
            )?;
            if !pending.is_zero() {
                actions.push(Action::call(
                    staker,
                    "claim staking rewards",
                    d.governance,
                    &StakingGovernance::claimRewardsCall {},
                ));
            }
        }
        self.send(epoch, actions)?;
        Ok(())
    }

    /// Registers every model trained for the first time this epoch.
    pub(super) fn register(&mut self, epoch: u32, fresh: &[usize]) -> Result<(), EngineError> {
        let d = self.deployment;
        let mut actions = Vec::new();
        for &m in fresh {
            let model = &self.models[m];
            let trained = model
                .trained
                .as_ref()
                .expect("registered models are trained");
            // The hash of the adapter's weights (saved burn records also carry random
            // parameter ids, so their bytes would differ run to run).
            let adapter = trained.adapter_hash();
            let datanet_ids = model
                .datanets
                .iter()
                .map(|&n| self.datanets[n].chain_id)
                .collect();
            actions.push(Action::call(
                model.owner,
                "register model",
                d.models,
                &ModelRegistry::registerModelCall {
                    baseModel: keccak256(match &model.mlp {
                        Some(mlp) => format!("olsim/base-mlp/{:?}", mlp.hidden),
                        None => "olsim/base-lm".to_string(),
                    }),
                    adapterHash: adapter,
                    datanetIds: datanet_ids,
                    kind: match model.kind {
                        ModelKind::Classifier => 0,
                        ModelKind::LanguageModel => 1,
                    },
                    pricePerInference: model.price_wei,
                },
            ));
        }
        let receipts = self.send(epoch, actions)?;
        for (&m, receipt) in fresh.iter().zip(receipts) {
            if let Some(receipt) = receipt {
                let registered = receipt.event::<ModelRegistry::ModelRegistered>(d.models)?;
                self.models[m].chain_id = Some(registered.modelId);
            }
        }
        Ok(())
    }
}
