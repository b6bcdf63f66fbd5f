//! The embedded OP-Stack L2: op-revm executing blocks in this process.
//!
//! What it models, and where:
//! - blocks on a simulated clock (`block_time` seconds apart, pushed forward by
//!   [`Chain::advance_time`]) with an EIP-1559 base fee that follows gas used, using the
//!   OP-Stack parameters (elasticity 6, change denominator 250);
//! - the OP-Stack L1 data fee, computed by op-revm itself from the `L1Block` predeploy's
//!   storage, which [`EmbeddedChain::new`] fills from [`L1FeeParams`];
//! - deposit transactions (type 0x7E) minting ETH bridged from "L1";
//! - signed EIP-1559 transactions, whose sender is recovered from the signature.
//!
//! The state is an in-memory [`CacheDB`]; snapshots are copies of it.

use alloy::consensus::{Transaction as _, TxEnvelope};
use alloy_primitives::{Address, B256, Bytes, TxKind, U256, address, keccak256};
use op_revm::constants::{
    ECOTONE_L1_BLOB_BASE_FEE_SLOT, ECOTONE_L1_FEE_SCALARS_SLOT, L1_BASE_FEE_SLOT, L1_BLOCK_CONTRACT,
};
use op_revm::revm::context::result::{EVMError, ExecResultAndState, ExecutionResult};
use op_revm::revm::context::{BlockEnv, CfgEnv, TxEnv};
use op_revm::revm::context_interface::block::BlobExcessGasAndPrice;
use op_revm::revm::database::{CacheDB, DbAccount, EmptyDB};
use op_revm::revm::handler::SystemCallEvm;
use op_revm::revm::primitives::eip4844::BLOB_BASE_FEE_UPDATE_FRACTION_PRAGUE;
use op_revm::revm::state::{AccountInfo, Bytecode};
use op_revm::revm::{Context, DatabaseRef, ExecuteCommitEvm, ExecuteEvm};
use op_revm::transaction::deposit::DepositTransactionParts;
use op_revm::{
    DefaultOp, L1BlockInfo, OpBuilder, OpContext, OpHaltReason, OpSpecId, OpTransaction,
};

use crate::abi::{decode_revert, describe_call};
use crate::api::{BlockInfo, CallRequest, Chain, Receipt, SignedTx, SnapshotId};
use crate::deposit::{DEPOSIT_GAS, DEPOSIT_TX_TYPE, Deposit, L1_DEPOSITOR};
use crate::error::ChainError;
use crate::senders::{self, Sender};

type Db = CacheDB<EmptyDB>;
type OpEvm = op_revm::api::builder::DefaultOpEvm<OpContext<Db>>;

/// The hardfork both backends run: Isthmus, the OP-Stack fork on Ethereum's Prague rules.
/// Contracts are compiled with `evmVersion: prague` to match.
pub const SPEC: OpSpecId = OpSpecId::ISTHMUS;

/// Predeploy vaults that receive the base fee and the L1 data fee of every transaction.
pub use op_revm::constants::{
    BASE_FEE_RECIPIENT as BASE_FEE_VAULT, L1_FEE_RECIPIENT as L1_FEE_VAULT,
};

/// The sequencer fee vault predeploy, used as block beneficiary (receives priority fees).
pub const SEQUENCER_FEE_VAULT: Address = address!("0x4200000000000000000000000000000000000011");

/// EIP-1559 base fee parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BaseFeeParams {
    /// Gas limit divided by this is the gas target.
    pub elasticity: u64,
    /// At most 1/denominator change per block.
    pub max_change_denominator: u64,
}

impl BaseFeeParams {
    /// OP-Stack values since Canyon.
    pub const OP_STACK: Self = Self {
        elasticity: 6,
        max_change_denominator: 250,
    };

    /// Base fee of the block after a parent with `gas_used` of `gas_limit` at `base_fee`.
    pub fn next(&self, base_fee: u64, gas_used: u64, gas_limit: u64, floor: u64) -> u64 {
        let target = (gas_limit / self.elasticity).max(1) as u128;
        let used = gas_used as u128;
        let base = base_fee as u128;
        let denom = self.max_change_denominator as u128;
        let next = if used > target {
            base + (base * (used - target) / target / denom).max(1)
        } else {
            base - base * (target - used) / target / denom
        };
        (next as u64).max(floor)
    }
}

/// L1 figures that the OP-Stack L1 data fee is computed from (Ecotone formula).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct L1FeeParams {
    /// L1 base fee per gas, wei.
    pub base_fee: u64,
    /// L1 blob base fee per blob gas, wei.
    pub blob_base_fee: u64,
    /// Scalar on the L1 base fee (Ecotone `baseFeeScalar`).
    pub base_fee_scalar: u32,
    /// Scalar on the blob base fee (Ecotone `blobBaseFeeScalar`).
    pub blob_base_fee_scalar: u32,
}

impl Default for L1FeeParams {
    /// OP Mainnet's Ecotone scalars (5227 and 1014213) with a 10 gwei L1 base fee and a
    /// 1 gwei blob base fee: a plausible, stated operating point, not a measurement.
    fn default() -> Self {
        Self {
            base_fee: 10_000_000_000,
            blob_base_fee: 1_000_000_000,
            base_fee_scalar: 5_227,
            blob_base_fee_scalar: 1_014_213,
        }
    }
}

/// Settings of an embedded chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmbeddedConfig {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// Timestamp of the genesis block.
    pub genesis_timestamp: u64,
    /// Seconds between consecutive blocks.
    pub block_time: u64,
    /// Block gas limit.
    pub block_gas_limit: u64,
    /// Base fee of the first block.
    pub genesis_base_fee: u64,
    /// The base fee never falls below this.
    pub min_base_fee: u64,
    /// EIP-1559 update rule.
    pub base_fee_params: BaseFeeParams,
    /// L1 data fee inputs.
    pub l1: L1FeeParams,
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        Self {
            chain_id: 901,
            genesis_timestamp: 1_767_225_600, // 2026-01-01T00:00:00Z
            block_time: 2,
            block_gas_limit: 30_000_000,
            genesis_base_fee: 1_000_000_000,
            min_base_fee: 1_000_000,
            base_fee_params: BaseFeeParams::OP_STACK,
            l1: L1FeeParams::default(),
        }
    }
}

/// Running totals over everything the chain has included.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChainStats {
    /// Blocks sealed after genesis.
    pub blocks: u64,
    /// Transactions included (deposits too).
    pub txs: u64,
    /// Gas used by all included transactions.
    pub gas_used: u64,
    /// Transactions refused or reverted, hence not included.
    pub failed: u64,
}

#[derive(Clone)]
struct Snapshot {
    db: Db,
    head: BlockInfo,
    next_timestamp: u64,
    stats: ChainStats,
    deposits: u64,
}

/// An OP-Stack L2 running in this process on op-revm.
pub struct EmbeddedChain {
    config: EmbeddedConfig,
    evm: OpEvm,
    head: BlockInfo,
    next_timestamp: u64,
    stats: ChainStats,
    deposits: u64,
    snapshots: Vec<(SnapshotId, Snapshot)>,
    next_snapshot: u64,
}

impl EmbeddedChain {
    /// A fresh chain at genesis with the L1 fee inputs written into the `L1Block` predeploy.
    pub fn new(config: EmbeddedConfig) -> Self {
        let mut db = Db::default();
        write_l1_block_info(&mut db, &config.l1);
        let cfg = CfgEnv::new_with_spec(SPEC).with_chain_id(config.chain_id);
        let evm = Context::op().with_db(db).with_cfg(cfg).build_op();
        let head = BlockInfo {
            number: 0,
            timestamp: config.genesis_timestamp,
            base_fee: config.genesis_base_fee,
            gas_used: 0,
            gas_limit: config.block_gas_limit,
            tx_count: 0,
        };
        let next_timestamp = config.genesis_timestamp + config.block_time;
        Self {
            config,
            evm,
            head,
            next_timestamp,
            stats: ChainStats::default(),
            deposits: 0,
            snapshots: Vec::new(),
            next_snapshot: 0,
        }
    }

    /// The settings this chain runs with.
    pub fn config(&self) -> &EmbeddedConfig {
        &self.config
    }

    /// Totals over everything included so far.
    pub fn stats(&self) -> ChainStats {
        self.stats
    }

    /// Keccak digest of the whole state: every account (sorted by address) with its balance,
    /// nonce, code hash and non-zero storage (sorted by slot), and the head block.
    /// Equal digests mean equal states; it is what determinism tests compare.
    pub fn state_digest(&self) -> B256 {
        let db = self.db();
        let mut accounts: Vec<_> = db.cache.accounts.iter().collect();
        accounts.sort_unstable_by_key(|(address, _)| **address);
        let mut buf = Vec::with_capacity(accounts.len() * 128);
        buf.extend_from_slice(&self.head.number.to_be_bytes());
        buf.extend_from_slice(&self.head.timestamp.to_be_bytes());
        buf.extend_from_slice(&self.head.base_fee.to_be_bytes());
        for (address, account) in accounts {
            let info = &account.info;
            if info.is_empty() && account.storage.values().all(|v| v.is_zero()) {
                continue;
            }
            buf.extend_from_slice(address.as_slice());
            buf.extend_from_slice(&info.balance.to_be_bytes::<32>());
            buf.extend_from_slice(&info.nonce.to_be_bytes());
            buf.extend_from_slice(info.code_hash.as_slice());
            for (slot, value) in sorted_storage(account) {
                buf.extend_from_slice(&slot.to_be_bytes::<32>());
                buf.extend_from_slice(&value.to_be_bytes::<32>());
            }
        }
        keccak256(&buf)
    }

    /// Non-zero storage of `who`, sorted by slot (what a differential test compares).
    pub fn storage_entries(&self, who: Address) -> Vec<(U256, U256)> {
        self.db()
            .cache
            .accounts
            .get(&who)
            .map(sorted_storage)
            .unwrap_or_default()
    }

    /// The state database, read-only (for baselines that drive op-revm directly).
    pub fn database(&self) -> &CacheDB<EmptyDB> {
        self.db()
    }

    /// The block environment the next block will execute in.
    pub fn next_block_env(&self) -> BlockEnv {
        self.pending_block_env(self.next_base_fee_value())
    }

    fn db(&self) -> &Db {
        &self.evm.0.ctx.journaled_state.database
    }

    fn db_mut(&mut self) -> &mut Db {
        &mut self.evm.0.ctx.journaled_state.database
    }

    /// Block environment of the block being built on top of the head.
    fn pending_block_env(&self, base_fee: u64) -> BlockEnv {
        let number = self.head.number + 1;
        BlockEnv {
            number: U256::from(number),
            beneficiary: SEQUENCER_FEE_VAULT,
            timestamp: U256::from(self.next_timestamp),
            gas_limit: self.config.block_gas_limit,
            basefee: base_fee,
            difficulty: U256::ZERO,
            prevrandao: Some(keccak256(number.to_be_bytes())),
            blob_excess_gas_and_price: Some(BlobExcessGasAndPrice::new(
                0,
                BLOB_BASE_FEE_UPDATE_FRACTION_PRAGUE,
            )),
            ..Default::default()
        }
    }

    /// Points the EVM at the next block and returns it, still empty.
    fn open_block(&mut self) -> BlockInfo {
        let base_fee = self.next_base_fee_value();
        let env = self.pending_block_env(base_fee);
        self.evm.set_block(env);
        BlockInfo {
            number: self.head.number + 1,
            timestamp: self.next_timestamp,
            base_fee,
            gas_used: 0,
            gas_limit: self.config.block_gas_limit,
            tx_count: 0,
        }
    }

    fn seal_block(&mut self, block: BlockInfo) {
        self.head = block;
        self.next_timestamp = block.timestamp + self.config.block_time;
        self.stats.blocks += 1;
        self.stats.txs += u64::from(block.tx_count);
        self.stats.gas_used += block.gas_used;
    }

    fn next_base_fee_value(&self) -> u64 {
        self.config.base_fee_params.next(
            self.head.base_fee,
            self.head.gas_used,
            self.head.gas_limit,
            self.config.min_base_fee,
        )
    }

    /// Executes one signed transaction, whose sender was recovered from its signature, in
    /// the open block; commits it only if it succeeds.
    fn execute(
        &mut self,
        tx: &SignedTx,
        sender: Sender,
        block: &mut BlockInfo,
    ) -> Result<Receipt, ChainError> {
        let tx_hash = tx.hash();
        let call = || describe_call(tx.to().is_none(), tx.input());
        let from = sender.map_err(|e| ChainError::Rejected {
            tx_hash,
            call: call(),
            from: tx.from,
            reason: format!("invalid signature: {e}"),
        })?;
        let l1_fee = self.tx_l1_fee(&tx.raw)?;
        let ExecResultAndState { result, state } = self
            .evm
            .transact(op_transaction(tx, from))
            .map_err(|e| match e {
                EVMError::Transaction(reason) => ChainError::Rejected {
                    tx_hash,
                    call: call(),
                    from,
                    reason: reason.to_string(),
                },
                other => backend_error(other),
            })?;
        let gas_used = result.tx_gas_used();
        let (logs, contract_address) = match result {
            ExecutionResult::Success { logs, output, .. } => (logs, output.address().copied()),
            ExecutionResult::Revert { output, .. } => {
                return Err(ChainError::Reverted {
                    call: call(),
                    from,
                    reason: decode_revert(&output),
                    data: output,
                });
            }
            ExecutionResult::Halt { reason, .. } => {
                return Err(ChainError::Halted {
                    call: call(),
                    from,
                    reason: halt_reason(&reason),
                });
            }
        };
        self.evm.commit(state);
        block.gas_used += gas_used;
        block.tx_count += 1;
        let tip = tx
            .envelope
            .max_priority_fee_per_gas()
            .unwrap_or(0)
            .min(tx.envelope.max_fee_per_gas() - u128::from(block.base_fee));
        Ok(Receipt {
            tx_hash,
            block_number: block.number,
            from,
            to: tx.to(),
            contract_address,
            gas_used,
            effective_gas_price: u128::from(block.base_fee) + tip,
            l1_fee: Some(l1_fee),
            logs,
        })
    }

    /// The OP-Stack L1 data fee of the encoded transaction `raw` in the open block, computed
    /// once (FastLZ over the encoding): the block's L1 fee inputs are loaded as op-revm would
    /// load them, and the fee is left in op-revm's per-transaction cache, where the next
    /// `transact` reads it to charge the sender and pay the vault, and then clears it.
    fn tx_l1_fee(&mut self, raw: &[u8]) -> Result<U256, ChainError> {
        let ctx = &mut self.evm.0.ctx;
        let number = ctx.block.number;
        if ctx.chain.l2_block != Some(number) {
            ctx.chain = L1BlockInfo::try_fetch(&mut ctx.journaled_state.database, number, SPEC)
                .map_err(backend_error)?;
        }
        Ok(ctx.chain.calculate_tx_l1_cost(raw, SPEC))
    }

    /// Runs `req` as a transaction from `from` without keeping anything, for estimates.
    fn simulate(&mut self, req: &CallRequest) -> Result<u64, ChainError> {
        let block = self.open_block();
        let nonce = self.nonce(req.from)?;
        let base = TxEnv {
            tx_type: 2,
            caller: req.from,
            gas_limit: self.config.block_gas_limit,
            gas_price: u128::from(block.base_fee),
            gas_priority_fee: Some(0),
            kind: req.to.map_or(TxKind::Create, TxKind::Call),
            value: req.value,
            data: req.data.clone(),
            nonce,
            chain_id: Some(self.config.chain_id),
            ..Default::default()
        };
        let tx = OpTransaction {
            base,
            // The L1 fee needs an encoding; a zero-filled one of calldata size is close enough.
            enveloped_tx: Some(Bytes::from(vec![0u8; req.data.len() + 120])),
            deposit: DepositTransactionParts::default(),
        };
        let call = || describe_call(req.to.is_none(), &req.data);
        let result = self
            .evm
            .transact(tx)
            .map_err(|e| match e {
                EVMError::Transaction(reason) => ChainError::Rejected {
                    tx_hash: B256::ZERO,
                    call: call(),
                    from: req.from,
                    reason: reason.to_string(),
                },
                other => backend_error(other),
            })?
            .result;
        match result {
            ExecutionResult::Success { gas, .. } => Ok(gas.tx_gas_used()),
            ExecutionResult::Revert { output, .. } => Err(ChainError::Reverted {
                call: call(),
                from: req.from,
                reason: decode_revert(&output),
                data: output,
            }),
            ExecutionResult::Halt { reason, .. } => Err(ChainError::Halted {
                call: call(),
                from: req.from,
                reason: halt_reason(&reason),
            }),
        }
    }
}

impl Chain for EmbeddedChain {
    fn backend(&self) -> &'static str {
        "embedded"
    }

    fn full_state_digest(&self) -> Option<B256> {
        Some(self.state_digest())
    }

    fn chain_id(&self) -> u64 {
        self.config.chain_id
    }

    fn head(&mut self) -> Result<BlockInfo, ChainError> {
        Ok(self.head)
    }

    fn next_base_fee(&mut self) -> Result<u64, ChainError> {
        Ok(self.next_base_fee_value())
    }

    fn balance(&mut self, who: Address) -> Result<U256, ChainError> {
        Ok(self.account(who).balance)
    }

    fn nonce(&mut self, who: Address) -> Result<u64, ChainError> {
        Ok(self.account(who).nonce)
    }

    fn code(&mut self, who: Address) -> Result<Bytes, ChainError> {
        let info = self.account(who);
        let code = match info.code {
            Some(code) => code,
            None => self
                .db()
                .code_by_hash_ref(info.code_hash)
                .map_err(backend_error)?,
        };
        Ok(code.original_bytes())
    }

    fn storage(&mut self, who: Address, slot: U256) -> Result<U256, ChainError> {
        self.db().storage_ref(who, slot).map_err(backend_error)
    }

    fn call(&mut self, req: &CallRequest) -> Result<Bytes, ChainError> {
        let to = req.to.ok_or_else(|| ChainError::Backend {
            backend: "embedded",
            message: "a read-only call needs a callee".into(),
        })?;
        if !req.value.is_zero() {
            return Err(ChainError::Backend {
                backend: "embedded",
                message: format!(
                    "a read-only call cannot carry value ({} wei): send a transaction instead",
                    req.value
                ),
            });
        }
        let env = self.pending_block_env(self.next_base_fee_value());
        self.evm.set_block(env);
        let result = self
            .evm
            .system_call_with_caller(req.from, to, req.data.clone())
            .map_err(backend_error)?
            .result;
        match result {
            ExecutionResult::Success { output, .. } => Ok(output.into_data()),
            ExecutionResult::Revert { output, .. } => Err(ChainError::Reverted {
                call: describe_call(false, &req.data),
                from: req.from,
                reason: decode_revert(&output),
                data: output,
            }),
            ExecutionResult::Halt { reason, .. } => Err(ChainError::Halted {
                call: describe_call(false, &req.data),
                from: req.from,
                reason: halt_reason(&reason),
            }),
        }
    }

    fn estimate_gas(&mut self, req: &CallRequest) -> Result<u64, ChainError> {
        let used = self.simulate(req)?;
        // Refunds and the 63/64 rule can make the needed limit exceed gas used: add a margin.
        Ok((used + used / 5 + 10_000).min(self.config.block_gas_limit))
    }

    fn send_batch(&mut self, txs: Vec<SignedTx>) -> Vec<Result<Receipt, ChainError>> {
        let mut block = self.open_block();
        let mut first_block = true;
        let mut gas_reserved = 0u64;
        let results = senders::with_recovered_senders(txs, |tx, sender| {
            if gas_reserved > 0 && gas_reserved + tx.gas_limit() > self.config.block_gas_limit {
                self.seal_block(block);
                block = self.open_block();
                first_block = false;
                gas_reserved = 0;
            }
            let result = self.execute(tx, sender, &mut block);
            match &result {
                Ok(receipt) => gas_reserved += receipt.gas_used,
                Err(_) => self.stats.failed += 1,
            }
            result
        });
        // A block opened for transactions that were all refused is not sealed, unless it is
        // the batch's first: a refused transaction gets no block of its own (as on anvil).
        if first_block || block.tx_count > 0 {
            self.seal_block(block);
        }
        results
    }

    fn deposit(&mut self, to: Address, amount: U256) -> Result<(), ChainError> {
        let mut block = self.open_block();
        self.deposits += 1;
        let deposit =
            Deposit::nth(self.deposits, to, amount).ok_or_else(|| ChainError::Backend {
                backend: "embedded",
                message: format!("deposit of {amount} wei exceeds what an OP deposit can mint"),
            })?;
        let base = TxEnv {
            tx_type: DEPOSIT_TX_TYPE,
            caller: L1_DEPOSITOR,
            gas_limit: DEPOSIT_GAS,
            gas_price: 0,
            kind: TxKind::Call(to),
            value: amount,
            nonce: self.nonce(L1_DEPOSITOR)?,
            ..Default::default()
        };
        let tx = OpTransaction {
            base,
            enveloped_tx: Some(deposit.encode()),
            deposit: DepositTransactionParts {
                source_hash: deposit.source_hash,
                mint: Some(deposit.amount),
                is_system_transaction: false,
            },
        };
        let ExecResultAndState { result, state } = self.evm.transact(tx).map_err(backend_error)?;
        // A failed deposit is included all the same (op-revm's state keeps the mint, now
        // the depositor's, and its nonce bump), as on the OP Stack.
        self.evm.commit(state);
        block.gas_used += result.tx_gas_used();
        block.tx_count += 1;
        self.seal_block(block);
        match result {
            ExecutionResult::Success { .. } => Ok(()),
            ExecutionResult::Revert { output, .. } => Err(ChainError::Reverted {
                call: deposit.describe(),
                from: L1_DEPOSITOR,
                reason: decode_revert(&output),
                data: output,
            }),
            ExecutionResult::Halt { reason, .. } => Err(ChainError::Halted {
                call: deposit.describe(),
                from: L1_DEPOSITOR,
                reason: halt_reason(&reason),
            }),
        }
    }

    fn advance_time(&mut self, seconds: u64) -> Result<(), ChainError> {
        self.next_timestamp += seconds;
        Ok(())
    }

    fn mine(&mut self) -> Result<BlockInfo, ChainError> {
        let block = self.open_block();
        self.seal_block(block);
        Ok(self.head)
    }

    fn snapshot(&mut self) -> Result<SnapshotId, ChainError> {
        let id = SnapshotId(self.next_snapshot);
        self.next_snapshot += 1;
        let snapshot = Snapshot {
            db: self.db().clone(),
            head: self.head,
            next_timestamp: self.next_timestamp,
            stats: self.stats,
            deposits: self.deposits,
        };
        self.snapshots.push((id, snapshot));
        Ok(id)
    }

    fn revert_to(&mut self, id: SnapshotId) -> Result<(), ChainError> {
        let position = self
            .snapshots
            .iter()
            .position(|(taken, _)| *taken == id)
            .ok_or(ChainError::UnknownSnapshot(id.0))?;
        let (_, snapshot) = self.snapshots.swap_remove(position);
        self.snapshots.truncate(position);
        *self.db_mut() = snapshot.db;
        self.head = snapshot.head;
        self.next_timestamp = snapshot.next_timestamp;
        self.stats = snapshot.stats;
        self.deposits = snapshot.deposits;
        // The cached L1 info is keyed by block number: make op-revm reload it.
        self.evm.0.ctx.chain.l2_block = None;
        Ok(())
    }
}

impl EmbeddedChain {
    fn account(&self, who: Address) -> AccountInfo {
        self.db().basic_ref(who).ok().flatten().unwrap_or_default()
    }
}

/// Non-zero storage slots of an account, sorted by slot.
fn sorted_storage(account: &DbAccount) -> Vec<(U256, U256)> {
    let mut slots: Vec<(U256, U256)> = account
        .storage
        .iter()
        .filter(|(_, v)| !v.is_zero())
        .map(|(k, v)| (*k, *v))
        .collect();
    slots.sort_unstable();
    slots
}

/// Writes the Ecotone L1 fee inputs into the `L1Block` predeploy's storage, where op-revm
/// reads them for every block.
fn write_l1_block_info(db: &mut Db, l1: &L1FeeParams) {
    let mut scalars = [0u8; 32];
    scalars[16..20].copy_from_slice(&l1.base_fee_scalar.to_be_bytes());
    scalars[20..24].copy_from_slice(&l1.blob_base_fee_scalar.to_be_bytes());
    db.insert_account_info(
        L1_BLOCK_CONTRACT,
        AccountInfo {
            nonce: 1,
            code: Some(Bytecode::new_raw(Bytes::from_static(&[0x00]))),
            ..Default::default()
        },
    );
    let slots = [
        (L1_BASE_FEE_SLOT, U256::from(l1.base_fee)),
        (ECOTONE_L1_BLOB_BASE_FEE_SLOT, U256::from(l1.blob_base_fee)),
        (ECOTONE_L1_FEE_SCALARS_SLOT, U256::from_be_bytes(scalars)),
    ];
    for (slot, value) in slots {
        db.insert_account_storage(L1_BLOCK_CONTRACT, slot, value)
            .expect("the in-memory database cannot fail");
    }
}

/// The op-revm transaction of a signed transaction whose sender is `from`.
pub fn op_transaction(tx: &SignedTx, from: Address) -> OpTransaction<TxEnv> {
    OpTransaction {
        base: tx_env(&tx.envelope, from),
        enveloped_tx: Some(tx.raw.clone()),
        deposit: DepositTransactionParts::default(),
    }
}

/// The revm transaction environment of a signed envelope.
fn tx_env(envelope: &TxEnvelope, from: Address) -> TxEnv {
    TxEnv {
        tx_type: envelope.tx_type() as u8,
        caller: from,
        gas_limit: envelope.gas_limit(),
        gas_price: envelope.max_fee_per_gas(),
        kind: envelope.kind(),
        value: envelope.value(),
        data: envelope.input().clone(),
        nonce: envelope.nonce(),
        chain_id: envelope.chain_id(),
        access_list: envelope.access_list().cloned().unwrap_or_default(),
        gas_priority_fee: envelope.max_priority_fee_per_gas(),
        ..Default::default()
    }
}

fn halt_reason(reason: &OpHaltReason) -> String {
    format!("{reason:?}")
}

fn backend_error(e: impl std::fmt::Debug) -> ChainError {
    ChainError::Backend {
        backend: "embedded",
        message: format!("{e:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_fee_follows_gas_used() {
        let p = BaseFeeParams::OP_STACK;
        let limit = 30_000_000;
        let target = limit / 6;
        assert_eq!(p.next(1_000_000_000, target, limit, 0), 1_000_000_000);
        assert!(p.next(1_000_000_000, limit, limit, 0) > 1_000_000_000);
        assert!(p.next(1_000_000_000, 0, limit, 0) < 1_000_000_000);
        // Full block: +(5/1)/250 = +2%; empty block: -1/250 = -0.4%.
        assert_eq!(p.next(1_000_000_000, limit, limit, 0), 1_020_000_000);
        assert_eq!(p.next(1_000_000_000, 0, limit, 0), 996_000_000);
        assert_eq!(p.next(1_000_000, 0, limit, 999_000), 999_000);
    }
}
