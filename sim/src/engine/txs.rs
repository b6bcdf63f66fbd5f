//! Turning agents' actions into signed transactions, sending them in batches, and keeping
//! every outcome: a refused transaction is data (who, what, why), never a crash.

use std::collections::BTreeSet;
use std::num::NonZeroU64;

use alloy_primitives::{Address, Bytes, U256};
use alloy_sol_types::SolCall;
use olsim_chain::client::PRIORITY_FEE;
use olsim_chain::{Chain, ChainError, Receipt, TxRequest};
use serde::Serialize;

use super::actors::{Actors, AgentId};

/// One contract call an agent wants to make.
#[derive(Clone, Debug)]
pub struct Action {
    /// Who signs it.
    pub agent: AgentId,
    /// Short label for the log and the metrics (`"contribute"`).
    pub label: &'static str,
    /// Contract called.
    pub to: Address,
    /// ABI-encoded calldata.
    pub data: Bytes,
    /// Gas limit (batched transactions cannot be estimated one by one).
    pub gas: u64,
    /// Wei sent along.
    pub value: U256,
}

impl Action {
    /// `agent` calls `call` on `to` with the default gas limit.
    pub fn call<T: SolCall>(agent: AgentId, label: &'static str, to: Address, call: &T) -> Self {
        Self {
            agent,
            label,
            to,
            data: call.abi_encode().into(),
            gas: DEFAULT_GAS,
            value: U256::ZERO,
        }
    }

    /// `agent` sends `value` wei of ETH to `to`.
    pub fn eth(agent: AgentId, to: Address, value: U256) -> Self {
        Self {
            agent,
            label: "send ETH",
            to,
            data: Bytes::new(),
            gas: 21_000,
            value,
        }
    }

    /// The same action with a different gas limit.
    pub fn with_gas(mut self, gas: u64) -> Self {
        self.gas = gas;
        self
    }
}

/// Gas limit of an ordinary protocol call (the largest, a model's first inference payment
/// of an epoch, uses about 380k: fee split, pool accrual and the staking stream).
pub const DEFAULT_GAS: u64 = 600_000;

/// A refused transaction, recorded as data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// Epoch it happened in.
    pub epoch: u32,
    /// Name of the agent that sent it.
    pub agent: String,
    /// What it tried (`"contribute"`).
    pub action: &'static str,
    /// The decoded error's name (`StakeTooLow`), or what kind of refusal it was
    /// (`rejected: nonce too low`): what refusals are grouped by.
    pub error: String,
    /// Why it was refused, whole: the decoded revert reason with its arguments
    /// (`StakeTooLow(1, 100)`), or the chain's message.
    pub reason: String,
}

/// The name refusals are grouped by (see [`Failure::error`]).
pub fn error_name(error: &ChainError) -> String {
    match error {
        ChainError::Reverted { reason, .. } => match reason.split_once('(') {
            Some((name, _)) if !name.is_empty() && !name.contains(' ') => name.to_string(),
            _ => reason.clone(),
        },
        ChainError::Halted { reason, .. } => format!("halted: {}", numbers_as_n(reason)),
        ChainError::Rejected { reason, .. } => format!("rejected: {}", numbers_as_n(reason)),
        other => other.to_string(),
    }
}

/// `message` with each number (decimal or `0x` hex) written `N`, so that refusals of one
/// kind group together whatever their nonces and amounts ("nonce N too high, expected N").
fn numbers_as_n(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut chars = message.chars().peekable();
    let mut in_word = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() && !in_word {
            while chars.peek().is_some_and(|d| d.is_ascii_alphanumeric()) {
                chars.next();
            }
            out.push('N');
        } else {
            in_word = c.is_alphanumeric() || c == '_';
            out.push(c);
        }
    }
    out
}

/// One transaction sent, included or refused, kept compactly (a scale run sends about a
/// million): 48 bytes, the agent by id and the label as a static string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxRecord {
    /// What it tried (`"contribute"`).
    pub label: &'static str,
    /// Fee paid in wei (L2 execution plus L1 data fee) as `[low, high]` 64-bit halves, so
    /// the record packs to 8-byte alignment; 0 for a refused one. See [`TxRecord::fee_wei`].
    fee: [u64; 2],
    /// Gas used; `None` for a refused transaction, which was never included (an included
    /// one always uses at least the 21,000 gas of a transfer).
    pub gas_used: Option<NonZeroU64>,
    /// Epoch it was sent in.
    pub epoch: u32,
    /// Who signed it.
    pub agent: AgentId,
}

impl TxRecord {
    /// The record of `action`, sent in `epoch`: included with `receipt`, or refused.
    pub fn new(epoch: u32, action: &Action, receipt: Option<&Receipt>) -> Self {
        // No fee reaches 2^128 wei (ETH's whole supply is below 2^88 wei).
        let fee = receipt.map_or(0, |r| {
            (r.execution_fee() + r.l1_fee.unwrap_or_default()).saturating_to::<u128>()
        });
        Self {
            label: action.label,
            fee: [fee as u64, (fee >> 64) as u64],
            gas_used: receipt.and_then(|r| NonZeroU64::new(r.gas_used)),
            epoch,
            agent: action.agent,
        }
    }

    /// Whether it was included in a block.
    pub fn included(&self) -> bool {
        self.gas_used.is_some()
    }

    /// Fee paid in wei, exactly.
    pub fn fee_wei(&self) -> u128 {
        u128::from(self.fee[0]) | (u128::from(self.fee[1]) << 64)
    }
}

/// Every transaction a run sent, for the transaction-log table of its data files: the
/// records in sending order, the refusals' details (the `k`-th refused record is
/// `failures[k]`) and the agents' names by [`AgentId`]. Outside the report and its digest.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Transactions {
    /// One per transaction sent, in order.
    pub records: Vec<TxRecord>,
    /// One per refused record, in order.
    pub failures: Vec<Failure>,
    /// Agent names, indexed by [`AgentId`].
    pub agents: Vec<String>,
}

impl Transactions {
    /// Each record with its sender's name and, for a refused one, its failure.
    pub fn rows(&self) -> impl Iterator<Item = (&TxRecord, &str, Option<&Failure>)> {
        let mut failures = self.failures.iter();
        self.records.iter().map(move |r| {
            let failure = if r.included() { None } else { failures.next() };
            (r, self.agents[r.agent.0 as usize].as_str(), failure)
        })
    }
}

/// Counts of what was sent and what was refused, by action label.
#[derive(Clone, Debug, Default)]
pub struct TxLog {
    /// Every transaction sent, in order.
    pub records: Vec<TxRecord>,
    /// Every refused transaction, in order.
    pub failures: Vec<Failure>,
    /// Included transactions.
    pub included: u64,
    /// Gas used by included transactions.
    pub gas_used: u64,
    /// Execution fees paid (gas times effective price), wei.
    pub execution_fees: U256,
    /// L1 data fees paid, wei.
    pub l1_fees: U256,
}

/// Sends `actions` in the given order and returns one outcome per action.
///
/// Large batches go in chunks whose gas limits add up to at most one block's gas target
/// (the limit over the elasticity), one block each, so a flood of agents paces itself over
/// blocks instead of driving the base fee up 2% per full block until nobody can pay. Each
/// chunk is signed against the base fee in force when it is sent. Agents whose transaction
/// was refused get their nonce back from the chain before the next chunk, so their later
/// transactions stay valid; the refusal is appended to `log.failures`.
pub fn send<C: Chain + ?Sized>(
    chain: &mut C,
    actors: &mut Actors,
    log: &mut TxLog,
    epoch: u32,
    actions: Vec<Action>,
) -> Result<Vec<Option<Receipt>>, ChainError> {
    let mut receipts = Vec::with_capacity(actions.len());
    if actions.is_empty() {
        return Ok(receipts);
    }
    let elasticity = olsim_chain::embedded::BaseFeeParams::OP_STACK.elasticity;
    let budget = (chain.head()?.gas_limit / elasticity).max(1);
    let mut start = 0;
    while start < actions.len() {
        let mut end = start;
        let mut gas = 0u64;
        while end < actions.len() && (end == start || gas + actions[end].gas <= budget) {
            gas += actions[end].gas;
            end += 1;
        }
        receipts.extend(send_chunk(chain, actors, log, epoch, &actions[start..end])?);
        start = end;
    }
    Ok(receipts)
}

/// Signs and sends one chunk (see [`send`]); the fee cap allows the base fee to double.
fn send_chunk<C: Chain + ?Sized>(
    chain: &mut C,
    actors: &mut Actors,
    log: &mut TxLog,
    epoch: u32,
    actions: &[Action],
) -> Result<Vec<Option<Receipt>>, ChainError> {
    let max_fee = 2 * u128::from(chain.next_base_fee()?) + PRIORITY_FEE;
    let chain_id = chain.chain_id();
    let requests = actions.iter().map(|a| {
        let req = TxRequest {
            to: Some(a.to),
            data: a.data.clone(),
            value: a.value,
            gas_limit: a.gas,
            max_fee_per_gas: max_fee,
            max_priority_fee_per_gas: PRIORITY_FEE,
        };
        (a.agent, req)
    });
    let txs = actors.transactions(chain_id, requests);
    let outcomes = chain.send_batch(txs);
    let mut resync = BTreeSet::new();
    let mut receipts = Vec::with_capacity(outcomes.len());
    for (action, outcome) in actions.iter().zip(outcomes) {
        match outcome {
            Ok(receipt) => {
                log.records
                    .push(TxRecord::new(epoch, action, Some(&receipt)));
                log.included += 1;
                log.gas_used += receipt.gas_used;
                log.execution_fees += receipt.execution_fee();
                log.l1_fees += receipt.l1_fee.unwrap_or_default();
                receipts.push(Some(receipt));
            }
            Err(error) => {
                if let ChainError::Backend { .. } = error {
                    return Err(error);
                }
                resync.insert(action.agent);
                log.records.push(TxRecord::new(epoch, action, None));
                log.failures.push(Failure {
                    epoch,
                    agent: actors.get(action.agent).name.clone(),
                    action: action.label,
                    error: error_name(&error),
                    reason: error
                        .revert_reason()
                        .map_or_else(|| error.to_string(), str::to_string),
                });
                receipts.push(None);
            }
        }
    }
    for agent in resync {
        let nonce = chain.nonce(actors.address(agent))?;
        actors.get_mut(agent).wallet.set_nonce(nonce);
    }
    Ok(receipts)
}

#[cfg(test)]
mod tests {
    use alloy_primitives::B256;

    use super::*;

    #[test]
    fn refusals_group_by_kind_not_by_their_numbers() {
        let rejected = |reason: &str| ChainError::Rejected {
            tx_hash: B256::ZERO,
            call: "DatanetRegistry.review(1, true)".into(),
            from: Address::ZERO,
            reason: reason.into(),
        };
        let a = error_name(&rejected("nonce 5 too high, expected 3"));
        let b = error_name(&rejected("nonce 17 too high, expected 12"));
        assert_eq!(a, "rejected: nonce N too high, expected N");
        assert_eq!(a, b);
        assert_eq!(
            error_name(&rejected("lack of funds (0x1f) for max fee (1000)")),
            "rejected: lack of funds (N) for max fee (N)"
        );
        // Names with digits in them are kept.
        assert_eq!(
            error_name(&rejected("EIP7623 floor above gas limit")),
            "rejected: EIP7623 floor above gas limit"
        );
        let reverted = ChainError::Reverted {
            call: "DatanetRegistry.contribute(1, 0xab, 10, 1)".into(),
            from: Address::ZERO,
            reason: "StakeTooLow(1, 100)".into(),
            data: Default::default(),
        };
        assert_eq!(error_name(&reverted), "StakeTooLow");
    }

    #[test]
    fn a_record_is_48_bytes_and_keeps_a_fee_above_64_bits_exactly() {
        assert_eq!(std::mem::size_of::<TxRecord>(), 48);
        let action = Action::eth(AgentId(3), Address::ZERO, U256::ZERO);
        let receipt = Receipt {
            tx_hash: B256::ZERO,
            block_number: 1,
            from: Address::ZERO,
            to: None,
            contract_address: None,
            gas_used: 21_000,
            effective_gas_price: u128::from(u64::MAX),
            l1_fee: Some(U256::from(7)),
            logs: Vec::new(),
        };
        let r = TxRecord::new(2, &action, Some(&receipt));
        assert_eq!(r.fee_wei(), 21_000 * u128::from(u64::MAX) + 7);
        assert!(r.included());
        let refused = TxRecord::new(2, &action, None);
        assert_eq!((refused.fee_wei(), refused.included()), (0, false));
    }
}
