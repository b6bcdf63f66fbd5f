//! Money each epoch: stakers stake, users pay for inferences (demand spread by popularity and
//! price), the served outputs are attributed, contributor pools are settled by push or Merkle
//! claims, harmful contributions are slashed, and stakers claim their share.

use burn::tensor::backend::AutodiffBackend;
use std::collections::BTreeMap;

use alloy_primitives::{Address, U256, keccak256};
use olsim_chain::contracts::{
    AttributionRewards, DatanetRegistry, InferenceMarket, ModelRegistry, StakingGovernance,
};
use olsim_chain::merkle::RewardTree;

use super::actors::AgentId;
use super::data::{DatanetState, Status};
use super::epoch::Weights;
use super::models::ModelState;
use super::net::Net;
use super::slashing::Verdict;
use super::txs::Action;
use super::{EngineError, open};
use crate::scenario::{ModelKind, Scenario, Settlement};

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

/// The `[[stakers]]` stake their OPEN (in setup, before epoch 0).
pub(super) fn stake(
    chain: &mut Net,
    scenario: &Scenario,
    stakers: &[(usize, AgentId)],
    epoch: u32,
) -> Result<(), EngineError> {
    let d = chain.deployment;
    let mut actions = Vec::new();
    for &(g, staker) in stakers {
        actions.push(Action::call(
            staker,
            "stake",
            d.governance,
            &StakingGovernance::stakeCall {
                amount: open(scenario.stakers[g].stake)?,
            },
        ));
    }
    chain.send(epoch, actions)?;
    Ok(())
}

/// Calls per model this epoch: `[inference]` demand spread by popularity and scaled by
/// price elasticity, plus grant-funded models' own demand.
pub(super) fn demand<B: AutodiffBackend>(
    scenario: &Scenario,
    models: &[ModelState<B>],
) -> Vec<u64> {
    let live: Vec<usize> = (0..models.len())
        .filter(|&m| models[m].chain_id.is_some())
        .collect();
    let offers: Vec<(f64, f64)> = live
        .iter()
        .map(|&m| (models[m].price, models[m].weight))
        .collect();
    let mut calls = vec![0u64; models.len()];
    for (&m, n) in live.iter().zip(scenario.inference.demand(&offers)) {
        calls[m] = n + models[m].extra_calls;
    }
    calls
}

/// `users` pay for this epoch's `calls` per model, `calls_per_payment` at a time, in turn
/// from `next_payer` (which moves on); returns the calls paid per model.
pub(super) fn pay<B: AutodiffBackend>(
    chain: &mut Net,
    scenario: &Scenario,
    users: &[AgentId],
    next_payer: &mut usize,
    models: &[ModelState<B>],
    epoch: u32,
    calls: &[u64],
) -> Result<Vec<u64>, EngineError> {
    let per_payment = u64::from(scenario.inference.calls_per_payment.max(1));
    let mut purchases = Vec::new();
    let mut next_user = *next_payer;
    for (m, model) in models.iter().enumerate() {
        if model.chain_id.is_none() {
            continue;
        }
        let mut left = calls[m];
        while left > 0 && !users.is_empty() {
            let count = left.min(per_payment);
            purchases.push(Purchase {
                agent: users[next_user % users.len()],
                model: m,
                calls: count,
                label: "pay inference",
            });
            next_user += 1;
            left -= count;
        }
    }
    *next_payer = next_user;
    buy(chain, models, epoch, &purchases)
}

/// Sends `purchases` (`InferenceMarket.payInference`, at most the model's price per call)
/// and returns the calls paid per model; a refused purchase pays for nothing.
pub(super) fn buy<B: AutodiffBackend>(
    chain: &mut Net,
    models: &[ModelState<B>],
    epoch: u32,
    purchases: &[Purchase],
) -> Result<Vec<u64>, EngineError> {
    let d = chain.deployment;
    let mut actions = Vec::with_capacity(purchases.len());
    for p in purchases {
        let model = &models[p.model];
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
    let receipts = chain.send(epoch, actions)?;
    let mut paid = vec![0u64; models.len()];
    for (p, receipt) in purchases.iter().zip(receipts) {
        if receipt.is_some() {
            paid[p.model] += p.calls.min(u64::from(u32::MAX));
        }
    }
    Ok(paid)
}

/// The epoch number AttributionRewards settlements of engine epoch `epoch` carry (from 1).
pub(super) fn epoch_tag(epoch: u32) -> u64 {
    u64::from(epoch) + 1
}

/// Pays the contributor pool of the model with on-chain id `model_id` in proportion to the
/// positive `shares` (the reward rule's, [`super::rewarding`]; push or Merkle claims, by
/// `tokenomics.settlement`).
pub(super) fn settle(
    chain: &mut Net,
    scenario: &Scenario,
    datanets: &[DatanetState],
    model_id: U256,
    epoch: u32,
    shares: &Weights,
) -> Result<(), EngineError> {
    let d = chain.deployment;
    let pool = chain.view(d.rewards, &AttributionRewards::poolOfCall(model_id))?;
    let positive: Vec<(Address, f64)> = shares
        .iter()
        .filter(|(_, s)| **s > 0.0)
        .map(|(&(n, c), &s)| {
            let agent = datanets[n].identities[c.0 as usize].agent;
            (chain.address(agent), s)
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
    let mode = scenario.tokenomics.settlement;
    pay_out(chain, mode, epoch, model_id, entries.into_iter().collect())
}

/// Pays `entries` from the model's pool by the scenario's settlement mode.
fn pay_out(
    chain: &mut Net,
    mode: Settlement,
    epoch: u32,
    model_id: U256,
    entries: Vec<(Address, U256)>,
) -> Result<(), EngineError> {
    if entries.is_empty() {
        return Ok(());
    }
    let d = chain.deployment;
    let admin = chain.admin;
    let epoch_tag = epoch_tag(epoch);
    match mode {
        Settlement::Push => {
            let actions = entries
                .chunks(PUSH_CHUNK)
                .map(|chunk| {
                    let (recipients, amounts): (Vec<_>, Vec<_>) = chunk.iter().copied().unzip();
                    Action::call(
                        admin,
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
            chain.send(epoch, actions)?;
        }
        Settlement::Merkle => {
            let tree = RewardTree::new(&entries)
                .map_err(|e| EngineError::Scenario(format!("reward tree: {e}")))?;
            let post = Action::call(
                admin,
                "post reward root",
                d.rewards,
                &AttributionRewards::postRootCall {
                    modelId: model_id,
                    epoch: epoch_tag,
                    root: tree.root(),
                    total: tree.total(),
                },
            );
            if chain.send(epoch, vec![post])?[0].is_none() {
                return Ok(());
            }
            let claims = entries
                .iter()
                .filter_map(|&(account, amount)| {
                    let agent = chain.actors.by_address(account)?;
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
            chain.send(epoch, claims)?;
        }
    }
    Ok(())
}

/// The attributor slashes the contributions of the contributors found harmful (each
/// contribution at most once), with the convicting figure as evidence.
pub(super) fn slash(
    chain: &mut Net,
    datanets: &[DatanetState],
    epoch: u32,
    harmful: &[Verdict],
) -> Result<(), EngineError> {
    let d = chain.deployment;
    let mut actions = Vec::new();
    for verdict in harmful {
        let (n, c) = verdict.identity;
        for contribution in datanets[n]
            .contributions
            .iter()
            .filter(|x| x.contributor == c)
        {
            if contribution.status != Status::Accepted
                || chain.books.harmful.contains_key(&contribution.chain_id)
            {
                continue;
            }
            let evidence = format!("influence {:e} epoch {epoch}", verdict.influence);
            actions.push(Action::call(
                chain.admin,
                "slash harmful contribution",
                d.datanets,
                &DatanetRegistry::slashHarmfulCall {
                    contributionId: contribution.chain_id,
                    evidence: keccak256(evidence),
                },
            ));
        }
    }
    chain.send(epoch, actions)?;
    Ok(())
}

/// Stakers with pending staking rewards claim them.
pub(super) fn claim_staking(
    chain: &mut Net,
    stakers: &[(usize, AgentId)],
    epoch: u32,
) -> Result<(), EngineError> {
    let d = chain.deployment;
    let mut actions = Vec::new();
    for &(_, staker) in stakers {
        let account = chain.address(staker);
        let pending = chain.view(
            d.governance,
            &StakingGovernance::pendingRewardsCall { account },
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
    chain.send(epoch, actions)?;
    Ok(())
}

/// Registers the models `fresh` (indices of `models`), trained for the first time this
/// epoch, and keeps their on-chain ids.
pub(super) fn register<B: AutodiffBackend>(
    chain: &mut Net,
    datanets: &[DatanetState],
    models: &mut [ModelState<B>],
    epoch: u32,
    fresh: &[usize],
) -> Result<(), EngineError> {
    let d = chain.deployment;
    let mut actions = Vec::new();
    for &m in fresh {
        let model = &models[m];
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
            .map(|&n| datanets[n].chain_id)
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
    let receipts = chain.send(epoch, actions)?;
    for (&m, receipt) in fresh.iter().zip(receipts) {
        if let Some(receipt) = receipt {
            let registered = receipt.event::<ModelRegistry::ModelRegistered>(d.models)?;
            models[m].chain_id = Some(registered.modelId);
        }
    }
    Ok(())
}
