//! Each epoch's row of the report, and the report read back from the chain and the event
//! books at the end of the run.

use burn::tensor::backend::AutodiffBackend;
use std::collections::BTreeMap;
use std::time::Instant;

use alloy_primitives::U256;
use olsim_chain::contracts::{InferenceMarket, StakingGovernance};
use olsim_ml::model::cost::Precision;

use super::actors::Role;
use super::data::{Contribution, DatanetState, Status};
use super::governance::proposal_results;
use super::grants::GrantState;
use super::lab::{Compute, cost_profile};
use super::models::ModelState;
use super::net::Net;
use super::truth::{Truth, ground_truth};
use super::txs::Transactions;
use super::{EngineError, Run, Sim, Work, to_open};
use crate::metrics::fairness::{gini, lorenz, rank_correlation, rank_correlation_interval};
use crate::report::HONEST;
use crate::report::{
    AttackResult, ChainResult, ComputeResult, ContributorResult, Economy, EpochResult, Fairness,
    GrantTierResult, GroupResult, MeasuredCompute, MeasuredSeconds, ModelResult, PerfSection,
    Refusal, Report, ResultSection, ScenarioInfo,
};
use crate::scenario::{AttackKind, ModelKind, Scenario, Tier};
use olsim_ml::data::ContributorId;

/// Ends epoch `epoch`: its books, read from the chain, become its row of the report.
pub(super) fn close_epoch(
    chain: &mut Net,
    epochs: &mut Vec<EpochResult>,
    epoch: u32,
) -> Result<(), EngineError> {
    let d = chain.deployment;
    let b = chain.books.close_epoch();
    let treasury = d.balance_of(chain.chain.as_mut(), d.treasury)?;
    let staked = chain.view(d.governance, &StakingGovernance::totalStakedCall {})?;
    let split = chain.view(d.market, &InferenceMarket::feeSplitCall {})?;
    epochs.push(EpochResult {
        epoch,
        inference_calls: b.calls,
        fees: to_open(b.fees),
        contributor_pool: to_open(b.to_contributors),
        rewards_paid: to_open(b.rewards),
        contributions: [b.submitted, b.accepted, b.rejected],
        slashed: to_open(b.slashed),
        treasury: to_open(treasury),
        staked: to_open(staked),
        fee_split: [split._0, split._1, split._2, split._3],
    });
    Ok(())
}

/// The report of the finished run, and its transactions.
pub(super) fn report<B: AutodiffBackend>(
    mut sim: Sim<B>,
    started: Instant,
    retrain_truth: bool,
) -> Result<Run, EngineError> {
    let d = sim.net.deployment;
    let subsets = sim.scenario.run.truth_subsets;
    let truth = match retrain_truth {
        true => ground_truth(&mut sim.lab, &sim.models, &sim.datanets, subsets)?,
        false => Truth::Generator,
    };
    let contributors = contributor_results(&sim.net, &sim.datanets, &truth);
    let mut fairness = fairness(&contributors, sim.scenario.run.seed);
    fairness.truth = truth.label(&sim.datanets);
    fairness.truth_reliability = truth.reliability();
    fairness.slash_rule = sim.scenario.tokenomics.slash_rule.name().to_string();
    fairness.reward_rule = sim.scenario.tokenomics.reward_rule.name().to_string();
    fairness.honest_slash_rate = honest_slash_rate(&sim.net, &sim.datanets);
    fairness.honest_slashed_as_harmful = contributors
        .iter()
        .filter(|c| c.kind == HONEST)
        .map(|c| c.harmful_contributions)
        .sum();
    let attacks = attack_results(&sim.scenario, &sim.net, &sim.datanets);
    let net = &mut sim.net;
    let ledger = d.ledger(net.chain.as_mut())?;
    // The long-term stakers' yield: what the [[stakers]] groups earned (claimed, and
    // pending at the end) over the stake they hold.
    let (mut earned, mut held) = (U256::ZERO, U256::ZERO);
    for &(_, staker) in &sim.stakers {
        let account = net.address(staker);
        earned += net
            .books
            .staking_claimed
            .get(&account)
            .copied()
            .unwrap_or_default();
        earned += net.view(
            d.governance,
            &StakingGovernance::pendingRewardsCall { account },
        )?;
        held += net
            .books
            .stake_peak
            .get(&account)
            .copied()
            .unwrap_or_default();
    }
    let staker_rewards = to_open(net.books.split_totals[2]);
    let economy = Economy {
        fees: sim.epochs.iter().map(|e| e.fees).sum(),
        contributor_rewards: to_open(net.books.rewards.values().copied().sum()),
        owner_fees: to_open(net.books.split_totals[1]),
        staker_rewards,
        staking_streaming: to_open(
            net.view(d.governance, &StakingGovernance::unearnedRewardsCall {})?,
        ),
        settlement: file_name(sim.scenario.tokenomics.settlement),
        treasury: to_open(ledger.treasury),
        treasury_fee_share: to_open(net.books.split_totals[3] - net.books.unstaked_staker_share),
        treasury_unstaked_share: to_open(net.books.unstaked_staker_share),
        pools: to_open(ledger.rewards_pooled + ledger.rewards_reserved),
        staking_yield: (!held.is_zero()).then(|| to_open(earned) / to_open(held)),
        slashed: to_open(net.books.slashed.values().copied().sum()),
    };
    let governance = proposal_results(net, &sim.scenario, &sim.proposals)?;
    let grants = grant_results(&sim.scenario, net, &sim.grants, &sim.models);
    let head = net.chain.head()?;
    let mut groups: BTreeMap<(&str, &str), Refusal> = BTreeMap::new();
    for f in &net.log.failures {
        groups
            .entry((f.action, f.error.as_str()))
            .or_insert_with(|| Refusal {
                action: f.action.to_string(),
                error: f.error.clone(),
                count: 0,
                first: format!("epoch {}, {}: {}", f.epoch, f.agent, f.reason),
            })
            .count += 1;
    }
    let mut refusals: Vec<Refusal> = groups.into_values().collect();
    refusals.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.error.cmp(&b.error)));
    let chain = ChainResult {
        blocks: head.number,
        transactions: net.log.included,
        refused: net.log.failures.len() as u64,
        gas_used: net.log.gas_used,
        gas_fees_eth: to_open(net.log.execution_fees + net.log.l1_fees),
        refusals,
        books_digest: books_digest(net)?,
    };
    let profile = cost_profile();
    let mut compute = Vec::new();
    let mut measured = Vec::new();
    let mut on_gpu = Vec::new();
    let lab = &sim.lab;
    for line in &lab.compute.lines {
        let modelled = profile
            .model(line.counted, Precision::F32)
            .expect("every profile has f32 figures");
        let models = match line.models {
            ModelKind::Classifier => "classifiers",
            ModelKind::LanguageModel => "language models",
        };
        compute.push(ComputeResult {
            stage: line.work.name().to_string(),
            models: models.to_string(),
            source: line.device.clone(),
            flops: line.counted.flops as f64,
            launches: line.counted.launches as f64,
            bytes: line.counted.bytes as f64,
            profile: format!("{} ({})", profile.name, modelled.precision),
            launch_seconds: modelled.launch_seconds,
            memory_seconds: modelled.memory_seconds,
            compute_seconds: modelled.compute_seconds,
            modelled_seconds: modelled.seconds,
            modelled_cost_usd: modelled.usd,
            bound: modelled.bound.to_string(),
        });
        let Some(seconds) = line.seconds else {
            continue;
        };
        let ran = MeasuredSeconds {
            stage: line.work.name().to_string(),
            models: models.to_string(),
            device: line.device.clone(),
            seconds,
        };
        if is_gpu(&line.device) {
            on_gpu.push(MeasuredCompute {
                stage: ran.stage.clone(),
                models: ran.models.clone(),
                device: ran.device.clone(),
                measured_seconds: seconds,
                modelled_seconds: modelled.seconds,
                ratio: seconds / modelled.seconds,
            });
        }
        measured.push(ran);
    }
    let device = format!(
        "{} ({})",
        B::name(&lab.device),
        std::any::type_name::<B::FloatElem>()
    );
    let measured_reason = on_gpu
        .is_empty()
        .then(|| format!("no GPU in this run (models ran on {device})"));
    let chain_s = net.timers.get(Work::Chain);
    let mut stages: Vec<(String, f64)> = net
        .timers
        .spent
        .iter()
        .chain(&lab.timers.spent)
        .map(|(w, t)| (w.name().to_string(), *t))
        .collect();
    let total_seconds = started.elapsed().as_secs_f64();
    let counted: f64 = stages.iter().map(|(_, t)| t).sum();
    stages.push((OTHER_WORK.to_string(), (total_seconds - counted).max(0.0)));
    let perf = PerfSection {
        stages,
        total_seconds,
        tx_per_second: rate(net.log.included as f64, chain_s),
        gas_per_second: rate(net.log.gas_used as f64, chain_s),
        inferences_per_second: rate(lab.served as f64, lab.timers.get(Work::Serving)),
        attributions_per_second: rate(lab.attributed as f64, lab.timers.get(Work::Attribution)),
        measured_compute: measured,
        measured: (!on_gpu.is_empty()).then_some(on_gpu),
        measured_reason,
        threads: rayon::current_num_threads(),
        // Set by `run_on`, which counts the run with its counterfactual runs.
        fine_tunes: None,
        influence_indexes: None,
        signatures: None,
    };
    let sc = &sim.scenario.run;
    let info = ScenarioInfo {
        name: sc.name.clone(),
        seed: sc.seed,
        epochs: sc.epochs,
        backend: net.chain.backend().to_string(),
        transactions: match sc.impersonate {
            true => "impersonated",
            false => "signed",
        }
        .to_string(),
        device,
    };
    let result = ResultSection {
        epochs: sim.epochs,
        groups: group_results(&contributors),
        contributors,
        fairness,
        attacks,
        economy,
        grants,
        governance,
        models: model_results(&sim.scenario, net, &sim.models, &lab.compute),
        chain,
        compute,
    };
    let mut report = Report::new(info, result, perf);
    report.chain_state_digest = net.chain.full_state_digest().map(|d| d.to_string());
    let log = std::mem::take(&mut net.log);
    let transactions = Transactions {
        records: log.records,
        failures: log.failures,
        agents: net.actors.iter().map(|(_, a)| a.name.clone()).collect(),
    };
    Ok(Run {
        report,
        transactions,
    })
}

/// How `value` is spelt in a scenario file (`merkle`, `suffix_array`): its serde name.
fn file_name<T: serde::Serialize>(value: T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .expect("a unit enum serialises as its name")
}

/// One row per model, from the event logs (docs/metrics.md, "models[]").
fn model_results<B: AutodiffBackend>(
    scenario: &Scenario,
    net: &Net,
    models: &[ModelState<B>],
    compute: &Compute,
) -> Vec<ModelResult> {
    let methods = scenario.tokenomics.attribution;
    models
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let gpu = compute
                .served
                .get(&i)
                .filter(|s| s.inferences > 0)
                .map(|s| s.usd / s.inferences as f64);
            let fee = m.price * scenario.tokenomics.open_price_usd;
            let books = m
                .chain_id
                .and_then(|id| net.books.by_model.get(&id))
                .cloned()
                .unwrap_or_default();
            ModelResult {
                name: m.name.clone(),
                kind: file_name(m.kind),
                attribution: match m.kind {
                    ModelKind::Classifier => file_name(methods.classifier),
                    ModelKind::LanguageModel => file_name(methods.language_model),
                },
                price: m.price,
                calls: books.calls,
                fees: to_open(books.fees),
                pool: to_open(books.pooled),
                paid: to_open(books.paid),
                settled_epochs: books.settlements,
                outputs_served: m.outputs.served,
                outputs_attributed: m.outputs.attributed,
                attributed_fraction: (m.outputs.served > 0)
                    .then(|| m.outputs.attributed as f64 / m.outputs.served as f64),
                attribution_sampling_error: m.outputs.sampling_error(),
                gpu_usd_per_inference: gpu,
                fee_usd_per_inference: fee,
                margin_usd_per_inference: gpu.map(|g| fee - g),
            }
        })
        .collect()
}

/// The perf stage of the time no other kind of work counted: the engine's own bookkeeping,
/// chain reads, ground-truth bookkeeping and building the report.
const OTHER_WORK: &str = "other";

/// A digest of the protocol's final books and every agent's OPEN
/// ([`crate::report::ChainResult::books_digest`]).
fn books_digest(net: &mut Net) -> Result<String, EngineError> {
    let d = net.deployment;
    let ledger = d.ledger(net.chain.as_mut())?;
    let mut bytes = format!("{ledger:?}").into_bytes();
    let addresses: Vec<_> = net.actors.iter().map(|(_, a)| a.wallet.address()).collect();
    for a in addresses {
        let balance = d.balance_of(net.chain.as_mut(), a)?;
        bytes.extend_from_slice(&balance.to_be_bytes::<32>());
    }
    Ok(alloy_primitives::keccak256(bytes).to_string())
}

fn contributor_results(
    chain: &Net,
    datanets: &[DatanetState],
    truth: &Truth,
) -> Vec<ContributorResult> {
    let mut out = Vec::new();
    for (n, net) in datanets.iter().enumerate() {
        let mut by_contributor = vec![Vec::new(); net.identities.len()];
        for c in &net.contributions {
            by_contributor[c.contributor.0 as usize].push(c);
        }
        for (i, (identity, mine)) in net.identities.iter().zip(by_contributor).enumerate() {
            let records: u64 = mine.iter().map(|c| c.items.len() as u64).sum();
            let records_with = |status| -> u64 {
                mine.iter()
                    .filter(|c| c.status == status)
                    .map(|c| c.items.len() as u64)
                    .sum()
            };
            let accepted = records_with(Status::Accepted);
            let pending = records_with(Status::Pending);
            let lapsed = records_with(Status::Lapsed);
            let slashed: U256 = mine
                .iter()
                .filter_map(|c| chain.books.slashed.get(&c.chain_id))
                .copied()
                .sum();
            let address = chain.address(identity.agent);
            let items = mine.iter().flat_map(|c| c.items.iter().copied());
            let id = ContributorId(i as u32);
            let spec = net.data.truth.as_ref().and_then(|t| t.contributors.get(i));
            let truth_interval = truth.interval(n, id).map(|(lo, hi)| [lo, hi]);
            let truth = truth.value(n, id, net, items);
            out.push(ContributorResult {
                name: chain.actors.get(identity.agent).name.clone(),
                kind: identity.attack.map_or(HONEST, AttackKind::name).to_string(),
                records,
                accepted,
                pending,
                lapsed,
                rewards: to_open(
                    chain
                        .books
                        .rewards
                        .get(&address)
                        .copied()
                        .unwrap_or_default(),
                ),
                slashed: to_open(slashed),
                truth,
                truth_interval,
                group: identity.group.map(|g| net.group_names[g].clone()),
                quality: spec.map(|spec| f64::from(spec.quality)),
                coverage: spec.map(|spec| f64::from(spec.coverage.volume_fraction())),
                harmful_contributions: mine
                    .iter()
                    .filter(|c| chain.books.harmful.contains_key(&c.chain_id))
                    .count() as u64,
            });
        }
    }
    out
}

/// The contributors summed by group (honest groups by name, attackers by kind), in order
/// of first appearance.
fn group_results(contributors: &[ContributorResult]) -> Vec<GroupResult> {
    let mut groups: Vec<(String, Vec<&ContributorResult>)> = Vec::new();
    for c in contributors {
        let label = c.group_label();
        match groups.iter_mut().find(|g| g.0 == label) {
            Some(g) => g.1.push(c),
            None => groups.push((label, vec![c])),
        }
    }
    let mean = |v: Vec<f64>| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    groups
        .into_iter()
        .map(|(name, members)| {
            let rewards: f64 = members.iter().map(|c| c.rewards).sum();
            GroupResult {
                name,
                contributors: members.len() as u64,
                mean_quality: mean(members.iter().filter_map(|c| c.quality).collect()),
                mean_coverage: mean(members.iter().filter_map(|c| c.coverage).collect()),
                records: members.iter().map(|c| c.records).sum(),
                accepted: members.iter().map(|c| c.accepted).sum(),
                pending: members.iter().map(|c| c.pending).sum(),
                lapsed: members.iter().map(|c| c.lapsed).sum(),
                rewards,
                rewards_per_contributor: rewards / members.len() as f64,
                slashed: members.iter().map(|c| c.slashed).sum(),
                mean_truth: mean(members.iter().filter_map(|c| c.truth).collect()),
            }
        })
        .collect()
}

/// One row per attacker kind of the scenario; every figure is defined in
/// docs/metrics.md ("Attacks").
fn attack_results(
    scenario: &Scenario,
    chain: &Net,
    datanets: &[DatanetState],
) -> Vec<AttackResult> {
    let mut kinds: Vec<AttackKind> = scenario.attackers.iter().map(|a| a.kind).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let books = &chain.books;
    let flagged =
        |c: &Contribution| c.status == Status::Rejected || books.harmful.contains_key(&c.chain_id);
    let mut honest_flagged = 0u64;
    for net in datanets {
        for c in &net.contributions {
            if net.identities[c.contributor.0 as usize].attack.is_none() && flagged(c) {
                honest_flagged += 1;
            }
        }
    }
    let mut out = Vec::new();
    for kind in kinds {
        let (mut mine, mut caught) = (0u64, 0u64);
        let (mut stake_posted, mut slashed) = (U256::ZERO, U256::ZERO);
        for net in datanets {
            for c in &net.contributions {
                let identity = &net.identities[c.contributor.0 as usize];
                if identity.attack == Some(kind) {
                    mine += 1;
                    stake_posted += identity.stake;
                    slashed += books.slashed.get(&c.chain_id).copied().unwrap_or_default();
                    if flagged(c) {
                        caught += 1;
                    }
                }
            }
        }
        let agents: Vec<_> = chain
            .actors
            .iter()
            .filter(|(_, agent)| agent.role == Role::Attacker(kind))
            .map(|(id, _)| chain.address(id))
            .collect();
        let sum = |map: &BTreeMap<alloy_primitives::Address, U256>| -> U256 {
            agents
                .iter()
                .map(|a| map.get(a).copied().unwrap_or_default())
                .sum()
        };
        let slashed = to_open(slashed);
        let fees_paid = to_open(sum(&books.fees_paid));
        let revenue =
            to_open(sum(&books.rewards) + sum(&books.owner_income) + sum(&books.staking_claimed));
        let capital = to_open(stake_posted + sum(&books.stake_peak)) + fees_paid;
        let cost = slashed + fees_paid;
        let captured = (kind == AttackKind::GovernanceCapture).then(|| {
            books
                .proposers
                .iter()
                .any(|(id, p)| agents.contains(p) && books.executed.contains(id))
        });
        out.push(AttackResult {
            kind: kind.name().to_string(),
            identities: agents.len() as u32,
            capital,
            cost,
            revenue,
            slashed,
            roi: (capital > 0.0).then(|| (revenue - cost) / capital),
            // Precision is a property of what a kind submitted: none for kinds that
            // submit nothing.
            detection_precision: ratio(caught, caught + honest_flagged).filter(|_| mine > 0),
            detection_recall: ratio(caught, mine),
            split_gain: None,
            victim_loss: None,
            copy_gain: None,
            captured,
        });
    }
    out
}

fn grant_results<B: AutodiffBackend>(
    scenario: &Scenario,
    chain: &Net,
    all: &[GrantState],
    models: &[ModelState<B>],
) -> Vec<GrantTierResult> {
    let price = scenario.tokenomics.open_price_usd;
    let books = &chain.books;
    let mut out = Vec::new();
    for tier in [Tier::Exploration, Tier::Building, Tier::Expansion] {
        let grants: Vec<_> = all.iter().filter(|g| g.tier == tier).collect();
        if grants.is_empty() {
            continue;
        }
        let granted_usd: f64 = grants.iter().map(|g| g.usd as f64).sum();
        let fees: f64 = models
            .iter()
            .filter(|m| m.grant.is_some_and(|(_, t)| t == tier))
            .filter_map(|m| m.chain_id)
            .map(|id| books.by_model.get(&id).map_or(0.0, |m| to_open(m.fees)))
            .sum();
        let amount = |map: &BTreeMap<U256, U256>| -> f64 {
            grants
                .iter()
                .map(|g| to_open(map.get(&g.id).copied().unwrap_or_default()))
                .sum()
        };
        out.push(GrantTierResult {
            tier: format!("{tier:?}").to_lowercase(),
            funded: grants.len() as u32,
            completed: grants.iter().filter(|g| g.outcome == Some(true)).count() as u32,
            failed: grants.iter().filter(|g| g.outcome == Some(false)).count() as u32,
            granted_usd,
            released: amount(&books.grant_released),
            returned: amount(&books.grant_returned),
            fees_generated: fees,
            roi: if granted_usd > 0.0 {
                fees * price / granted_usd
            } else {
                0.0
            },
        });
    }
    out
}

/// The fairness figures of `contributors` (bootstrap stream of run seed `seed`); the rules
/// and the truth's name and reliability are the caller's to fill in.
fn fairness(contributors: &[ContributorResult], seed: u64) -> Fairness {
    let rewards: Vec<f64> = contributors.iter().map(|c| c.rewards).collect();
    // Correlations over the contributors that have a ground-truth value.
    let pairs = |x: fn(&ContributorResult) -> f64, accepted_only: bool| -> (Vec<f64>, Vec<f64>) {
        contributors
            .iter()
            .filter(|c| !accepted_only || c.accepted > 0)
            .filter_map(|c| Some((x(c), c.truth?)))
            .unzip()
    };
    let (judged, truth) = pairs(|c| c.rewards, false);
    let (accepted, accepted_truth) = pairs(|c| c.rewards, true);
    let (volume, volume_truth) = pairs(|c| c.accepted as f64, false);
    let total: f64 = rewards.iter().sum();
    let honest: f64 = contributors
        .iter()
        .filter(|c| c.kind == HONEST)
        .map(|c| c.rewards)
        .sum();
    Fairness {
        gini: gini(&rewards),
        honest_share: (total > 0.0).then(|| honest / total),
        spearman_vs_truth: rank_correlation(&judged, &truth),
        spearman_vs_truth_interval: rank_correlation_interval(&judged, &truth, seed)
            .map(|(lo, hi)| [lo, hi]),
        spearman_vs_truth_accepted: rank_correlation(&accepted, &accepted_truth),
        spearman_volume_vs_truth: rank_correlation(&volume, &volume_truth),
        lorenz: lorenz(&rewards, 50),
        ..Fairness::default()
    }
}

/// Honest stake slashed over honest stake posted (`None` when none was posted).
fn honest_slash_rate(chain: &Net, datanets: &[DatanetState]) -> Option<f64> {
    let (mut posted, mut slashed) = (U256::ZERO, U256::ZERO);
    for net in datanets {
        for c in &net.contributions {
            let identity = &net.identities[c.contributor.0 as usize];
            if identity.attack.is_some() {
                continue;
            }
            posted += identity.stake;
            slashed += chain
                .books
                .slashed
                .get(&c.chain_id)
                .copied()
                .unwrap_or_default();
        }
    }
    (!posted.is_zero()).then(|| to_open(slashed) / to_open(posted))
}

/// `a / b`, or `None` when `b` is 0 (the share of nothing is undefined).
fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

fn rate(count: f64, seconds: f64) -> f64 {
    if seconds > 0.0 { count / seconds } else { 0.0 }
}

/// Whether a compute line's device is a GPU backend (burn names CUDA devices `cuda`).
fn is_gpu(device: &str) -> bool {
    device.contains("cuda")
}
