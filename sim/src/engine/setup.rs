//! Before epoch 0: the agents, their ETH for gas and OPEN budgets, the protocol deployment,
//! the Datanets on chain with their reviewers, and their data (generated, or loaded from the
//! scenario's data files).

use std::collections::BTreeMap;

use alloy_primitives::{Address, U256};
use burn::tensor::backend::AutodiffBackend;
use olsim_chain::contracts::{DatanetRegistry, GrantVault, OpenToken};
use olsim_chain::protocol::OPEN;
use olsim_chain::{Chain, Deployment, Origin, Roles};
use olsim_ml::data::Datanet;

use super::actors::{Actors, AgentId, Role};
use super::attacks::{self, Cast};
use super::books::Books;
use super::data::{DatanetState, Identity, Reviewer};
use super::lab::Lab;
use super::memo::RunMemos;
use super::net::Net;
use super::txs::{Action, TxLog, send};
use super::{EngineError, Sim, Timers, Work, economy, models, open};
use crate::scenario::data_file::load_file;
use crate::scenario::{Scenario, Source};

/// Gas limit of an OPEN transfer or approval: a margin over the usual 30k-52k gas of an
/// ERC-20 transfer or approval (warm or cold storage slots).
const TOKEN_GAS: u64 = 80_000;

/// ETH each agent gets for gas: plenty for a long run at OP-Stack fees.
const GAS_ETH: u128 = 1_000_000_000_000_000_000;

/// Creates the agents, funds them, deploys the protocol and sets up the Datanets; models
/// fine-tune and agents sign through `memos`.
pub(super) fn setup<B: AutodiffBackend>(
    scenario: Scenario,
    mut chain: Box<dyn Chain>,
    device: B::Device,
    memos: &RunMemos<B>,
) -> Result<Sim<B>, EngineError> {
    let start = std::time::Instant::now();
    let seed = scenario.run.seed;
    let mut params = scenario
        .tokenomics
        .protocol_params()
        .map_err(|e| EngineError::Scenario(e.to_string()))?;
    // The contract's settlement epochs are the run's epochs.
    params.reward_epoch = scenario.run.epoch_seconds;
    let origin = match scenario.run.impersonate {
        true => Origin::Impersonated,
        false => Origin::Signed,
    };
    let mut actors = Actors::new(seed, origin, memos.signatures.clone());
    let admin = actors.add("admin".into(), Role::Admin);
    let attributor = actors.add("attributor".into(), Role::Attributor);
    let guardian = actors.add("guardian".into(), Role::Guardian);
    let treasury = actors.add("treasury".into(), Role::Treasury);
    let committee: Vec<AgentId> = (0..scenario.grants.committee)
        .map(|i| actors.add(format!("committee-{i}"), Role::Committee))
        .collect();

    let mut datanets = Vec::new();
    for (index, config) in scenario.datanets.iter().enumerate() {
        let (data, generated) = match config.source {
            Source::Generated => {
                let generated = scenario
                    .datanet_spec(index)
                    .map_err(|e| EngineError::Scenario(e.to_string()))?;
                let data = Datanet::generate(&generated.spec).map_err(|e| {
                    EngineError::Scenario(format!("datanet `{}`: {e}", config.name))
                })?;
                (data, Some(generated))
            }
            Source::File => {
                let data = load_file(&scenario, index).map_err(|e| {
                    EngineError::Scenario(format!("datanets[{index}] `{}`: {e}", config.name))
                })?;
                (data, None)
            }
        };
        let curator = actors.add(format!("{}/curator", config.name), Role::Curator);
        let reviewers: Vec<Reviewer> = (0..config.reviewers.count)
            .map(|i| Reviewer {
                agent: actors.add(format!("{}/reviewer-{i}", config.name), Role::Reviewer),
                colluding: None,
            })
            .collect();
        let identities = match &generated {
            Some(generated) => Identity::assign(&scenario, config, generated, &data, &mut actors)?,
            None => Identity::from_file(&scenario, config, &data, &mut actors)?,
        };
        let items = DatanetState::items_by_contributor(&data, config.task);
        datanets.push(DatanetState {
            items,
            name: config.name.clone(),
            chain_id: U256::ZERO,
            curator,
            reviewers,
            identities,
            data,
            contributions: Vec::new(),
            task: config.task,
            accepted: Vec::new(),
            submitted: Default::default(),
            attackers: generated.map(|g| g.groups).unwrap_or_default(),
            group_names: (config.contributor_groups().iter().enumerate())
                .map(|(g, c)| c.name.clone().unwrap_or_else(|| format!("group-{g}")))
                .collect(),
        });
    }

    let mut owners = BTreeMap::new();
    let attacks = attacks::cast_all::<B>(&mut Cast {
        scenario: &scenario,
        actors: &mut actors,
        datanets: &mut datanets,
        owners: &mut owners,
    })?;
    let models = models::ModelState::<B>::all(&scenario, &datanets, &mut actors, &owners)?;
    let users: Vec<AgentId> = actors.add_all(
        (0..scenario.inference.users)
            .map(|i| (format!("user-{i}"), Role::User))
            .collect(),
    );
    let mut stakers = Vec::new();
    for (g, group) in scenario.stakers.iter().enumerate() {
        let names = (0..group.count).map(|i| (format!("{}-{i}", group.name), Role::Staker));
        let ids = actors.add_all(names.collect());
        stakers.extend(ids.into_iter().map(|id| (g, id)));
    }

    // ETH for gas: one deposit to the admin, then a batch of transfers of GAS_ETH to
    // every other agent. The admin keeps about as much again as all of them received:
    // a safety margin for the gas of those transfers and of the deployment, not a
    // computed need.
    let total_eth = U256::from(GAS_ETH) * U256::from(2 * actors.len() as u64 + 1);
    chain.deposit(actors.address(admin), total_eth)?;
    let mut log = TxLog::default();
    let eth: Vec<Action> = actors
        .iter()
        .filter(|(id, _)| *id != admin)
        .map(|(_, a)| Action::eth(admin, a.wallet.address(), U256::from(GAS_ETH)))
        .collect();
    send(chain.as_mut(), &mut actors, &mut log, 0, eth)?;

    let committee_addrs: Vec<_> = committee.iter().map(|c| actors.address(*c)).collect();
    let treasury_addr = actors.address(treasury);
    let roles = Roles {
        attributor: actors.address(attributor),
        guardian: match scenario.tokenomics.guardian {
            true => actors.address(guardian),
            false => Address::ZERO,
        },
    };
    let deployment = Deployment::deploy(
        chain.as_mut(),
        &mut actors.get_mut(admin).wallet,
        treasury_addr,
        &committee_addrs,
        roles,
        &params,
    )?;

    let net = Net {
        chain,
        actors,
        log,
        deployment,
        admin,
        attributor,
        guardian,
        books: Books::new(params.fee_split.stakers_bps),
        timers: Timers::default(),
    };
    let mut sim = Sim {
        net,
        lab: Lab::new(device, seed, memos.training.clone()),
        committee,
        users,
        stakers,
        datanets,
        models,
        proposals: Vec::new(),
        grants: Vec::new(),
        evidence: Vec::new(),
        smoothed: Vec::new(),
        attacks,
        epochs: Vec::new(),
        next_payer: 0,
        scenario,
    };
    fund(&mut sim)?;
    create_datanets(&mut sim.net, &sim.scenario, &mut sim.datanets)?;
    economy::stake(&mut sim.net, &sim.scenario, &sim.stakers, 0)?;
    // Setup's own time: its transaction batches already count as chain time.
    let chain_seconds = sim.net.timers.get(Work::Chain);
    sim.net.timers.add_less(Work::Setup, start, chain_seconds);
    Ok(sim)
}

/// Sends every agent its OPEN budget and has it approve the contract it pays (every part
/// of the run has a budget, the attacks' included).
fn fund<B: AutodiffBackend>(sim: &mut Sim<B>) -> Result<(), EngineError> {
    let d = sim.net.deployment;
    let sc = &sim.scenario;
    let mut budgets: Vec<(AgentId, U256, Option<alloy_primitives::Address>)> = Vec::new();
    let max_price = open(
        sc.models
            .iter()
            .map(|m| m.price)
            .chain(sc.grants.cohorts.iter().map(|c| c.price))
            .fold(sc.inference.reference_price, f64::max),
    )?;
    let epochs = u64::from(sc.run.epochs);
    // An epoch's spend is at most the `[inference]` demand going to the single model
    // that costs most with it (shares of popularity add up to one, so no mix of models
    // costs more), plus what grant-funded models bring at their price.
    let inf = &sc.inference;
    let mut epoch_spend = U256::ZERO;
    for price in sc
        .models
        .iter()
        .map(|m| m.price)
        .chain(sc.grants.cohorts.iter().map(|c| c.price))
    {
        let calls = (inf.calls_per_epoch as f64
            * (price / inf.reference_price).powf(-inf.price_elasticity))
        .ceil() as u64;
        epoch_spend = epoch_spend.max(open(price)? * U256::from(calls));
    }
    for c in &sc.grants.cohorts {
        epoch_spend += open(c.price)? * U256::from(c.calls_per_epoch * u64::from(c.teams));
    }
    // Users can afford twice their share of that, and always two payments of
    // `calls_per_payment` calls at the highest price.
    let users = U256::from(inf.users.max(1));
    let per_user = U256::from(2)
        * (epoch_spend * U256::from(epochs))
            .div_ceil(users)
            .max(max_price * U256::from(inf.calls_per_payment));
    for &u in &sim.users {
        budgets.push((u, per_user, Some(d.market)));
    }
    for net in &sim.datanets {
        for identity in &net.identities {
            budgets.push((identity.agent, identity.stake, Some(d.datanets)));
        }
    }
    for &(g, staker) in &sim.stakers {
        budgets.push((staker, open(sc.stakers[g].stake)?, Some(d.governance)));
    }
    for attack in &sim.attacks {
        for (agent, amount, spender) in attack.budgets(sim)? {
            budgets.push((agent, amount, Some(spender)));
        }
    }
    let transfers = budgets
        .iter()
        .filter(|(_, amount, _)| !amount.is_zero())
        .map(|&(agent, amount, _)| {
            Action::call(
                sim.net.admin,
                "distribute OPEN",
                d.token,
                &OpenToken::transferCall {
                    to: sim.net.address(agent),
                    amount,
                },
            )
            .with_gas(TOKEN_GAS)
        })
        .collect();
    let fund = grant_fund(&sim.scenario)?;
    sim.net.send(0, transfers)?;
    let approvals = budgets
        .iter()
        .filter_map(|&(agent, _, spender)| {
            spender.map(|spender| {
                Action::call(
                    agent,
                    "approve",
                    d.token,
                    &OpenToken::approveCall {
                        spender,
                        amount: U256::MAX,
                    },
                )
                .with_gas(TOKEN_GAS)
            })
        })
        .collect();
    sim.net.send(0, approvals)?;

    if !fund.is_zero() {
        let admin = sim.net.admin;
        let deposit = vec![
            Action::call(
                admin,
                "approve",
                d.token,
                &OpenToken::approveCall {
                    spender: d.grants,
                    amount: fund,
                },
            ),
            Action::call(
                admin,
                "fund OpenCircle",
                d.grants,
                &GrantVault::depositCall { amount: fund },
            ),
        ];
        sim.net.send(0, deposit)?;
    }
    Ok(())
}

/// The OpenCircle fund in OPEN wei at the start price (zero without cohorts).
fn grant_fund(scenario: &Scenario) -> Result<U256, EngineError> {
    if scenario.grants.cohorts.is_empty() {
        return Ok(U256::ZERO);
    }
    let price = scenario.tokenomics.open_price_usd;
    let open_amount = scenario.grants.fund_usd as f64 / price;
    if open_amount > 1e9 {
        return Err(EngineError::Scenario(format!(
            "grants.fund_usd = {} at {price} USD per OPEN is more than the OPEN supply",
            scenario.grants.fund_usd
        )));
    }
    Ok(U256::from(open_amount.floor() as u128) * OPEN)
}

/// Creates each Datanet on chain and appoints its reviewers.
fn create_datanets(
    chain: &mut Net,
    scenario: &Scenario,
    datanets: &mut [DatanetState],
) -> Result<(), EngineError> {
    let d = chain.deployment;
    for (net, config) in datanets.iter_mut().zip(&scenario.datanets) {
        let domain = config.domain.name().to_string();
        let create = Action::call(
            net.curator,
            "create Datanet",
            d.datanets,
            &DatanetRegistry::createDatanetCall {
                name: net.name.clone(),
                domain,
            },
        );
        let Some(receipt) = chain.send(0, vec![create])?.pop().flatten() else {
            let why = chain.log.failures.last().map(|f| f.reason.clone());
            return Err(EngineError::Scenario(format!(
                "Datanet `{}` could not be created: {}",
                net.name,
                why.unwrap_or_default()
            )));
        };
        let created = receipt.event::<DatanetRegistry::DatanetCreated>(d.datanets)?;
        net.chain_id = created.datanetId;
        let adds = net
            .reviewers
            .iter()
            .map(|r| {
                Action::call(
                    net.curator,
                    "add reviewer",
                    d.datanets,
                    &DatanetRegistry::addReviewerCall {
                        datanetId: net.chain_id,
                        reviewer: chain.address(r.agent),
                    },
                )
            })
            .collect();
        chain.send(0, adds)?;
    }
    Ok(())
}
