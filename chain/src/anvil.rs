//! The anvil backend: the same [`Chain`] API over a real anvil node (Foundry), reached over
//! JSON-RPC with alloy.
//!
//! Design:
//! - [`AnvilChain::start`] spawns anvil with `--network optimism
//!   --hardfork isthmus` (op-revm on Prague rules, the fork the embedded chain runs), no dev
//!   accounts, no create2 deployer, FIFO ordering and no automatic mining, then waits until
//!   the node answers `eth_chainId` on the port it listens on, found among the node's own
//!   sockets (anvil binds a free port itself, or [`AnvilConfig::port`] if that is free), so
//!   another server answering on some port is never taken for it. The node is killed when
//!   the thread that started it ends, however the process ends (`PR_SET_PDEATHSIG`, Linux),
//!   and runs in its own process group. It writes the same L1 fee inputs into the `L1Block`
//!   predeploy as [`crate::EmbeddedChain::new`] and makes the sequencer fee vault the
//!   coinbase, so both chains charge the same fees to the same accounts.
//! - The API is synchronous: the chain owns a private current-thread tokio runtime and an
//!   HTTP provider, and every request runs under a timeout. When a request fails at the
//!   transport level or times out, the child process is checked: a dead node is reported as
//!   [`ChainError::Backend`] with its exit status and the last lines of its stderr, never as
//!   a hang.
//! - The simulated clock is kept here, exactly as in the embedded chain: every block is
//!   mined explicitly (`evm_mine` with a timestamp) at `next_timestamp`, which then moves on
//!   by `block_time`; [`Chain::advance_time`] pushes it further.
//! - [`Chain::send_batch`] reproduces the embedded semantics, where a reverting transaction
//!   is never included: the batch runs inside an `evm_snapshot`; if a receipt comes back
//!   with status 0, the state is reverted, that transaction is reported as reverted (its
//!   revert data comes from a `callTracer` trace), the later transactions of the same sender
//!   are reported as rejected (their nonce is now gapped, as the embedded chain would refuse
//!   them), and the rest of the batch is run again.
//! - A transaction anvil's pool accepts but the node cannot execute (a sender who cannot pay
//!   the L1 fee, a gas limit under the EIP-7623 calldata floor, a fee cap under a later
//!   block's base fee) leaves an empty block behind: it is rolled back (`anvil_rollback`,
//!   with the clock and the next base fee put back) unless it is the batch's first, and the
//!   transaction is dropped and reported as [`ChainError::Rejected`], as the embedded chain
//!   refuses it without a block of its own.
//! - Receipts are fetched a block at a time (`eth_getBlockReceipts`) after each mined block.
//! - anvil gives block 1 the genesis base fee and `evm_revert` keeps the base fee computed
//!   from the blocks it drops; both are corrected with `anvil_setNextBlockBaseFeePerGas`, so
//!   base fees follow the embedded chain block for block.
//! - anvil 1.7.1 charges the L1 data fee but reports no `l1Fee` in its receipts: each
//!   block's charge is read back from the L1-fee vault's balance change and split per
//!   transaction by op-revm's L1 cost function (see `AnvilChain::l1_fees`), so
//!   [`Receipt::l1_fee`] is the exact fee, as on the embedded chain.
//! - Deposits are real OP deposit transactions (type 0x7E) sent with `eth_sendRawTransaction`,
//!   which anvil's optimism mode accepts: same minting, same gas, same block.
//!
//! Verified equal on both backends (see `tests/anvil_backend.rs`): gas used, logs, block
//! numbers, timestamps, base fees, effective gas prices, L1 fees, contract addresses, ETH
//! balances after gas and L1 data fees, gas estimates, the outcomes of a batch with a revert
//! and of batches with transactions the node cannot execute.
//!
//! Known differences from the embedded chain (what a differential test must allow for):
//! - anvil's base fee has no floor (`EmbeddedConfig::min_base_fee` is not applied);
//! - PREVRANDAO is anvil's own value (the embedded chain uses `keccak256(number)`), and
//!   `BLOCKHASH` returns anvil's real block hashes where the embedded chain has revm's
//!   synthetic ones: contracts must not depend on either;
//! - when a transaction does not fit in the block's remaining gas, the embedded chain seals
//!   the block and goes on in the next one, while anvil skips it and may fill the block with
//!   later, smaller transactions of other senders (their block numbers then differ);
//! - a transaction refused in a batch because an earlier one of its sender reverted says
//!   "nonce gap after an earlier revert in the batch" where the embedded chain says
//!   "nonce N too high, expected M" (both are [`ChainError::Rejected`]);
//! - refusal messages (bad nonce, funds) are anvil's own wording;
//! - every successful batch leaves one `evm_snapshot` in the node (anvil has no way to drop
//!   one), which costs node memory on very long runs;
//! - [`Chain::estimate_gas`] applies the embedded margin to the gas used that
//!   `eth_simulateV1` reports (so both backends sign the same gas limits); should that call
//!   fail, it falls back to anvil's `eth_estimateGas` bisection, which may differ. Both
//!   refuse ([`ChainError::Rejected`]) a sender who cannot pay `value` plus the block gas
//!   limit at the next base fee; where the embedded chain adds the L1 fee of a zero-filled
//!   envelope to that sum, anvil adds its own, so the refusal thresholds may differ by
//!   that fee.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alloy::consensus::transaction::SignerRecoverable;
use alloy::providers::{Provider, RootProvider};
use alloy_primitives::{Address, B256, Bytes, Log, U64, U256, keccak256};
use op_revm::L1BlockInfo;
use op_revm::constants::{
    ECOTONE_L1_BLOB_BASE_FEE_SLOT, ECOTONE_L1_FEE_SCALARS_SLOT, L1_BASE_FEE_SLOT, L1_BLOCK_CONTRACT,
};
use op_revm::revm::Database;
use op_revm::revm::bytecode::Bytecode;
use op_revm::revm::state::AccountInfo;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::abi::{decode_revert, describe_call};
use crate::api::{BlockInfo, CallRequest, Chain, Origin, Receipt, SignedTx, SnapshotId};
use crate::deposit::{Deposit, L1_DEPOSITOR};
use crate::embedded::{
    BaseFeeParams, EmbeddedConfig, L1_FEE_VAULT, L1FeeParams, SEQUENCER_FEE_VAULT, SPEC,
};
use crate::error::ChainError;

/// Backend name, as reported by [`Chain::backend`] and in errors.
const BACKEND: &str = "anvil";

/// Deadline for a freshly started node to answer `eth_chainId`.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Deadline of every JSON-RPC request.
const RPC_TIMEOUT: Duration = Duration::from_secs(30);

/// Lines of the node's stderr kept for error messages.
const STDERR_LINES: usize = 20;

/// The standard Foundry test mnemonic; with `--accounts 0` no account is funded from it, it
/// only makes the node's configuration fully fixed.
const MNEMONIC: &str = "test test test test test test test test test test test junk";

/// The anvil binary that `scripts/setup` installs, relative to the workspace root.
const BUNDLED_ANVIL: &str = ".tools/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil";

/// Settings of an anvil chain; [`AnvilConfig::matching`] copies them from an embedded one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnvilConfig {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// Timestamp of the genesis block.
    pub genesis_timestamp: u64,
    /// Seconds between consecutive blocks of the simulated clock.
    pub block_time: u64,
    /// Block gas limit.
    pub block_gas_limit: u64,
    /// Base fee of the first block.
    pub genesis_base_fee: u64,
    /// L1 data fee inputs written into the `L1Block` predeploy at start.
    pub l1: L1FeeParams,
    /// The anvil executable; `None` means `$OLSIM_ANVIL`, else the one `scripts/setup`
    /// installs under `.tools/` in the workspace.
    pub binary: Option<PathBuf>,
    /// Loopback port to try first; `None`, or a port that is taken, lets anvil bind a free
    /// one itself.
    pub port: Option<u16>,
}

impl AnvilConfig {
    /// The settings that make an anvil chain comparable with an embedded chain of `config`.
    pub fn matching(config: &EmbeddedConfig) -> Self {
        Self {
            chain_id: config.chain_id,
            genesis_timestamp: config.genesis_timestamp,
            block_time: config.block_time,
            block_gas_limit: config.block_gas_limit,
            genesis_base_fee: config.genesis_base_fee,
            l1: config.l1,
            binary: None,
            port: None,
        }
    }

    /// The anvil executable this configuration runs: `binary`, else `$OLSIM_ANVIL`, else the
    /// workspace's `.tools/` install.
    pub fn binary_path(&self) -> PathBuf {
        if let Some(path) = &self.binary {
            return path.clone();
        }
        if let Some(path) = std::env::var_os("OLSIM_ANVIL").filter(|p| !p.is_empty()) {
            return PathBuf::from(path);
        }
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).join(BUNDLED_ANVIL)
    }
}

impl Default for AnvilConfig {
    /// Matches [`EmbeddedConfig::default`].
    fn default() -> Self {
        Self::matching(&EmbeddedConfig::default())
    }
}

/// How a JSON-RPC request failed.
enum RpcFailure {
    /// The node answered with a JSON-RPC error.
    Response {
        code: i64,
        message: String,
        data: Option<Value>,
    },
    /// The node is gone, timed out, or answered something unreadable.
    Node(ChainError),
}

impl RpcFailure {
    /// Collapses an error response into a backend error naming the method.
    fn into_chain_error(self, method: &str) -> ChainError {
        match self {
            Self::Response { message, data, .. } => backend(format!(
                "{method} failed: {message}{}",
                data.map(|d| format!(" ({d})")).unwrap_or_default()
            )),
            Self::Node(e) => e,
        }
    }
}

/// A snapshot in the node: anvil's id and the base fee the next block was to have.
struct NodeSnapshot {
    id: Value,
    next_base_fee: u64,
}

/// A state snapshot: the node's plus the local clock at the time.
struct Snapshot {
    id: SnapshotId,
    node: NodeSnapshot,
    next_timestamp: u64,
    deposits: u64,
}

/// A chain backed by a real anvil node in a child process (killed when this is dropped).
pub struct AnvilChain {
    config: AnvilConfig,
    child: Node,
    stderr: Arc<Mutex<VecDeque<String>>>,
    runtime: tokio::runtime::Runtime,
    provider: RootProvider,
    url: String,
    next_timestamp: u64,
    deposits: u64,
    snapshots: Vec<Snapshot>,
    next_snapshot: u64,
    /// The L1 fee inputs as op-revm parsed them from the node's `L1Block` at start.
    l1_info: L1BlockInfo,
}

impl AnvilChain {
    /// Starts an anvil node for `config` and waits until it answers.
    ///
    /// Fails with [`ChainError::ToolMissing`] if the binary does not exist, and with
    /// [`ChainError::Backend`] (exit status and stderr) if the node dies or does not answer
    /// within 20 seconds.
    ///
    /// The node lives until the chain is dropped or the thread that called this ends
    /// (whichever comes first; a killed process ends its threads): use the chain on the
    /// thread that started it.
    pub fn start(config: AnvilConfig) -> Result<Self, ChainError> {
        let binary = config.binary_path();
        if !binary.is_file() {
            return Err(ChainError::ToolMissing {
                tool: "anvil",
                path: binary.display().to_string(),
            });
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| backend(format!("cannot build a tokio runtime: {e}")))?;
        // The preferred port first; then (or if it is taken) anvil binds a free one itself,
        // so no other process can come between the choice of a port and its use.
        let mut last_error = None;
        for port in config.port.into_iter().chain([0]) {
            match Self::spawn(&config, &binary, &runtime, port) {
                Ok((child, stderr, provider, url)) => {
                    let next_timestamp = config.genesis_timestamp + config.block_time;
                    let mut chain = Self {
                        config,
                        child,
                        stderr,
                        runtime,
                        provider,
                        url,
                        next_timestamp,
                        deposits: 0,
                        snapshots: Vec::new(),
                        next_snapshot: 0,
                        l1_info: L1BlockInfo::default(),
                    };
                    chain.configure()?;
                    return Ok(chain);
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| backend("anvil did not start".into())))
    }

    /// OS process id of the node (tests kill it to check that errors surface).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// JSON-RPC endpoint of the node.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The settings this chain runs with.
    pub fn config(&self) -> &AnvilConfig {
        &self.config
    }

    /// Spawns the node on `port` (0: a free one of its choice), finds the port it listens
    /// on among its own sockets, and waits until it answers `eth_chainId` there.
    ///
    /// The node is killed when the thread that spawned it ends, the whole process included
    /// (`PR_SET_PDEATHSIG`), and runs in its own process group, so that a signal to the
    /// simulation's group reaches the simulation, whose end then ends the node.
    #[allow(clippy::type_complexity)]
    fn spawn(
        config: &AnvilConfig,
        binary: &PathBuf,
        runtime: &tokio::runtime::Runtime,
        port: u16,
    ) -> Result<(Node, Arc<Mutex<VecDeque<String>>>, RootProvider, String), ChainError> {
        let parent = std::process::id();
        let mut command = Command::new(binary);
        command
            .args(node_args(config, port))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0);
        // SAFETY: the closure runs in the forked child before exec and only makes
        // async-signal-safe system calls (prctl, getppid, raise).
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died before the request took effect.
                if u32::try_from(libc::getppid()).ok() != Some(parent) {
                    libc::raise(libc::SIGKILL);
                }
                Ok(())
            });
        }
        let mut child = Node(
            command
                .spawn()
                .map_err(|e| backend(format!("cannot run {}: {e}", binary.display())))?,
        );
        let stderr = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_LINES)));
        if let Some(pipe) = child.0.stderr.take() {
            let lines = Arc::clone(&stderr);
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if let Ok(mut lines) = lines.lock() {
                        if lines.len() == STDERR_LINES {
                            lines.pop_front();
                        }
                        lines.push_back(line);
                    }
                }
            });
        }
        let deadline = Instant::now() + START_TIMEOUT;
        let port = loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(exited(status, &stderr));
            }
            if let Some(port) = listening_port(child.id()) {
                break port;
            }
            if Instant::now() >= deadline {
                return Err(backend(format!(
                    "anvil did not listen within {}s: {}",
                    START_TIMEOUT.as_secs(),
                    tail(&stderr)
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let url = format!("http://127.0.0.1:{port}");
        let parsed = url
            .parse()
            .map_err(|e| backend(format!("bad node url {url}: {e}")))?;
        let provider = RootProvider::new_http(parsed);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(exited(status, &stderr));
            }
            let answer = runtime.block_on(timeout(
                Duration::from_secs(1),
                provider.raw_request::<_, U64>("eth_chainId".into(), json!([])),
            ));
            match answer {
                Ok(Ok(id)) if id.to::<u64>() == config.chain_id => {
                    return Ok((child, stderr, provider, url));
                }
                Ok(Ok(id)) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(backend(format!(
                        "the node on port {port} reports chain id {id}, not {}",
                        config.chain_id
                    )));
                }
                _ if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let status = child.wait();
                    return Err(backend(format!(
                        "anvil did not answer on port {port} within {}s (then killed: {}): {}",
                        START_TIMEOUT.as_secs(),
                        status.map_or_else(|e| e.to_string(), |s| s.to_string()),
                        tail(&stderr)
                    )));
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Writes the genesis settings that anvil has no flag for: the coinbase and the L1 fee
    /// inputs, as the embedded chain has them.
    fn configure(&mut self) -> Result<(), ChainError> {
        self.rpc("anvil_setCoinbase", json!([SEQUENCER_FEE_VAULT]))?;
        // anvil gives block 1 the genesis base fee; the embedded chain (like an OP node)
        // already applies the EIP-1559 rule to it, here to an empty genesis.
        let first = BaseFeeParams::OP_STACK.next(
            self.config.genesis_base_fee,
            0,
            self.config.block_gas_limit,
            0,
        );
        self.rpc("anvil_setNextBlockBaseFeePerGas", json!([U64::from(first)]))?;
        self.rpc("anvil_setCode", json!([L1_BLOCK_CONTRACT, "0x00"]))?;
        self.rpc("anvil_setNonce", json!([L1_BLOCK_CONTRACT, "0x1"]))?;
        let l1 = &self.config.l1;
        let mut scalars = [0u8; 32];
        scalars[16..20].copy_from_slice(&l1.base_fee_scalar.to_be_bytes());
        scalars[20..24].copy_from_slice(&l1.blob_base_fee_scalar.to_be_bytes());
        let slots = [
            (L1_BASE_FEE_SLOT, U256::from(l1.base_fee)),
            (ECOTONE_L1_BLOB_BASE_FEE_SLOT, U256::from(l1.blob_base_fee)),
            (ECOTONE_L1_FEE_SCALARS_SLOT, U256::from_be_bytes(scalars)),
        ];
        for (slot, value) in slots {
            self.rpc(
                "anvil_setStorageAt",
                json!([L1_BLOCK_CONTRACT, B256::from(slot), B256::from(value)]),
            )?;
        }
        // Nothing changes them later (the predeploy's code is STOP); should they change, the
        // check in `l1_fees` fails.
        let mut state = NodeState {
            chain: self,
            block: json!("latest"),
        };
        self.l1_info = L1BlockInfo::try_fetch(&mut state, U256::ZERO, SPEC)?;
        Ok(())
    }

    /// One JSON-RPC request under the timeout; transport failures check whether the node died.
    fn request(&mut self, method: &'static str, params: Value) -> Result<Value, RpcFailure> {
        let answer = self.runtime.block_on(timeout(
            RPC_TIMEOUT,
            self.provider.raw_request::<_, Value>(method.into(), params),
        ));
        let error = match answer {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) => match e.as_error_resp() {
                Some(payload) => {
                    return Err(RpcFailure::Response {
                        code: payload.code,
                        message: payload.message.to_string(),
                        data: payload
                            .data
                            .as_ref()
                            .and_then(|raw| serde_json::from_str(raw.get()).ok()),
                    });
                }
                None => format!("{method} failed: {e}"),
            },
            Err(_) => format!("{method} got no answer within {}s", RPC_TIMEOUT.as_secs()),
        };
        // A killed node refuses connections before it is reaped: give it a moment.
        let deadline = Instant::now() + Duration::from_millis(500);
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Err(RpcFailure::Node(exited(status, &self.stderr))),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => return Err(RpcFailure::Node(backend(error))),
            }
        }
    }

    /// A request whose error responses are backend errors too.
    fn rpc(&mut self, method: &'static str, params: Value) -> Result<Value, ChainError> {
        self.request(method, params)
            .map_err(|e| e.into_chain_error(method))
    }

    /// A request whose result is decoded into `T`.
    fn rpc_as<T: DeserializeOwned>(
        &mut self,
        method: &'static str,
        params: Value,
    ) -> Result<T, ChainError> {
        let value = self.rpc(method, params)?;
        decode(method, value)
    }

    /// A block by tag or number, `None` if the node has no such block.
    fn block(&mut self, tag: Value) -> Result<Value, ChainError> {
        let block = self.rpc("eth_getBlockByNumber", json!([tag, false]))?;
        if block.is_null() {
            return Err(backend(format!("the node has no block {tag}")));
        }
        Ok(block)
    }

    /// Mines one block at the simulated clock and moves the clock on.
    fn mine_block(&mut self) -> Result<(), ChainError> {
        let timestamp = self.next_timestamp;
        self.rpc("evm_mine", json!([{ "timestamp": timestamp, "blocks": 1 }]))?;
        self.next_timestamp = timestamp + self.config.block_time;
        Ok(())
    }

    /// Takes a node snapshot: anvil's id and the base fee of the next block.
    fn node_snapshot(&mut self) -> Result<NodeSnapshot, ChainError> {
        let next_base_fee = self.next_base_fee()?;
        let id = self.rpc("evm_snapshot", json!([]))?;
        Ok(NodeSnapshot { id, next_base_fee })
    }

    /// Reverts the node to a snapshot taken by [`Self::node_snapshot`]. anvil's `evm_revert`
    /// keeps the base fee computed from the blocks it drops: it is put back too.
    fn node_revert(&mut self, snapshot: &NodeSnapshot) -> Result<(), ChainError> {
        let reverted = self.rpc("evm_revert", json!([snapshot.id]))?;
        if reverted != Value::Bool(true) {
            return Err(backend(format!(
                "evm_revert({}) answered {reverted}",
                snapshot.id
            )));
        }
        self.rpc(
            "anvil_setNextBlockBaseFeePerGas",
            json!([U64::from(snapshot.next_base_fee)]),
        )?;
        Ok(())
    }

    /// ETH of `who` at block `tag`.
    fn balance_at(&mut self, who: Address, tag: Value) -> Result<U256, ChainError> {
        self.rpc_as("eth_getBalance", json!([who, tag]))
    }

    /// The L1 data fee of each transaction of block `number` (their encodings `raws`, in
    /// block order) and the L1-fee vault's balance after that block, given its balance
    /// `before` it.
    ///
    /// anvil 1.7.1 charges the fee but its receipts carry no `l1Fee`. What the block charged
    /// is the vault's balance change over it; it is split per transaction by op-revm's own L1
    /// cost function (the code anvil charges with) on the `L1Block` inputs read from the node
    /// at start, and the split must add up to the change to the wei, else this fails.
    fn l1_fees(
        &mut self,
        number: u64,
        raws: &[&[u8]],
        before: U256,
    ) -> Result<(Vec<U256>, U256), ChainError> {
        let after = self.balance_at(L1_FEE_VAULT, json!(U64::from(number)))?;
        let info = &mut self.l1_info;
        let fees: Vec<U256> = raws
            .iter()
            .map(|raw| {
                info.tx_l1_cost = None;
                info.calculate_tx_l1_cost(raw, SPEC)
            })
            .collect();
        let total = fees.iter().fold(U256::ZERO, |sum, fee| sum + fee);
        if after.checked_sub(before) != Some(total) {
            return Err(backend(format!(
                "the L1-fee vault went from {before} to {after} wei in block {number}, but the \
                 L1 fees of its {} transactions add up to {total}",
                raws.len()
            )));
        }
        Ok((fees, after))
    }

    /// Drops the head block, which the caller knows to be empty, and puts the clock and the
    /// next base fee back where they were before it was mined.
    fn rollback_empty_block(&mut self) -> Result<(), ChainError> {
        let dropped = self.head()?;
        self.rpc("anvil_rollback", json!([1]))?;
        self.rpc(
            "anvil_setNextBlockBaseFeePerGas",
            json!([U64::from(dropped.base_fee)]),
        )?;
        self.next_timestamp = dropped.timestamp;
        Ok(())
    }

    /// The receipt of a mined transaction, still as JSON.
    fn raw_receipt(&mut self, hash: B256) -> Result<Option<Value>, ChainError> {
        let receipt = self.rpc("eth_getTransactionReceipt", json!([hash]))?;
        Ok((!receipt.is_null()).then_some(receipt))
    }

    /// Why a mined transaction failed, from a `callTracer` trace: revert or halt.
    fn failure_of(&mut self, hash: B256, call: String, from: Address) -> ChainError {
        let trace = self.rpc(
            "debug_traceTransaction",
            json!([hash, { "tracer": "callTracer" }]),
        );
        let (error, output) = match &trace {
            Ok(frame) => (
                frame.get("error").and_then(Value::as_str).unwrap_or(""),
                frame
                    .get("output")
                    .cloned()
                    .and_then(|o| serde_json::from_value::<Bytes>(o).ok())
                    .unwrap_or_default(),
            ),
            Err(e) => {
                return ChainError::Halted {
                    call,
                    from,
                    reason: format!("failed (status 0) and could not be traced: {e}"),
                };
            }
        };
        if error.is_empty() || error.contains("revert") {
            ChainError::Reverted {
                call,
                from,
                reason: decode_revert(&output),
                data: output,
            }
        } else {
            ChainError::Halted {
                call,
                from,
                reason: error.to_string(),
            }
        }
    }

    /// One pass over `pending` inside a node snapshot. Returns the receipts, or the position
    /// in `pending` and error of the first transaction that failed (the state is then back
    /// where it was, and so is the clock).
    fn attempt(
        &mut self,
        txs: &[SignedTx],
        pending: &[usize],
        results: &mut [Option<Result<Receipt, ChainError>>],
    ) -> Result<Option<(usize, Address, ChainError)>, ChainError> {
        let snapshot = self.node_snapshot()?;
        let clock = self.next_timestamp;
        let mut expected: BTreeMap<Address, u64> = BTreeMap::new();
        let mut sent: Vec<(usize, Address)> = Vec::new();
        for &i in pending {
            let tx = &txs[i];
            let reject = |reason: String, from: Address| ChainError::Rejected {
                tx_hash: tx.hash(),
                call: describe_call(tx.to().is_none(), tx.input()),
                from,
                reason,
            };
            let from = match tx.envelope.recover_signer() {
                Ok(from) => from,
                Err(e) => {
                    results[i] = Some(Err(reject(format!("invalid signature: {e}"), tx.from)));
                    continue;
                }
            };
            let state_nonce = match expected.get(&from) {
                Some(nonce) => *nonce,
                None => self.nonce(from)?,
            };
            expected.insert(from, state_nonce);
            // anvil queues a transaction with a future nonce; the embedded chain refuses it.
            if tx.nonce() > state_nonce {
                let reason = format!("nonce {} too high, expected {state_nonce}", tx.nonce());
                results[i] = Some(Err(reject(reason, from)));
                continue;
            }
            match self.request("eth_sendRawTransaction", json!([tx.raw])) {
                Ok(_) => {
                    expected.insert(from, state_nonce + 1);
                    sent.push((i, from));
                }
                Err(RpcFailure::Response { message, .. }) => {
                    results[i] = Some(Err(reject(message, from)));
                }
                Err(RpcFailure::Node(e)) => return Err(e),
            }
        }
        // Mine until every sent transaction is in a block (gas limits may need several).
        let mut receipts: Vec<Option<Receipt>> = vec![None; sent.len()];
        let position: BTreeMap<B256, usize> = sent
            .iter()
            .enumerate()
            .map(|(position, (i, _))| (txs[*i].hash(), position))
            .collect();
        let mut failed: Option<(usize, Address)> = None;
        let mut vault = self.balance_at(L1_FEE_VAULT, json!("latest"))?;
        let mut first_block = true;
        while receipts.iter().any(Option::is_none) {
            self.mine_block()?;
            let block = self.rpc("eth_getBlockReceipts", json!(["latest"]))?;
            let block = block
                .as_array()
                .ok_or_else(|| backend(format!("eth_getBlockReceipts answered {block}")))?;
            if block.is_empty() {
                // The node holds transactions it cannot execute (fees it cannot charge, a
                // gas limit under the calldata floor, a fee cap under the new base fee).
                // The embedded chain refuses them without sealing a block for them: so
                // does this one, unless it is the batch's first (that one is sealed there).
                if !first_block {
                    self.rollback_empty_block()?;
                }
                for (slot, (i, from)) in receipts.iter().zip(&sent) {
                    if slot.is_none() {
                        let tx = &txs[*i];
                        let _ = self.rpc("anvil_dropTransaction", json!([tx.hash()]));
                        results[*i] = Some(Err(ChainError::Rejected {
                            tx_hash: tx.hash(),
                            call: describe_call(tx.to().is_none(), tx.input()),
                            from: *from,
                            reason: "the node accepted it but could not execute it".into(),
                        }));
                    }
                }
                break;
            }
            first_block = false;
            let mut included = Vec::with_capacity(block.len());
            for receipt in block {
                let hash: B256 = field(receipt, "transactionHash")?;
                let at = *position.get(&hash).ok_or_else(|| {
                    backend(format!("a mined block holds {hash}, which no batch sent"))
                })?;
                if receipt.get("status").and_then(Value::as_str) == Some("0x0") {
                    failed = failed
                        .filter(|(first, _)| *first < at)
                        .or(Some((at, sent[at].1)));
                }
                included.push((at, parse_receipt(receipt)?));
            }
            let number = included[0].1.block_number;
            let raws: Vec<&[u8]> = included
                .iter()
                .map(|(at, _)| txs[sent[*at].0].raw.as_ref())
                .collect();
            let (fees, balance) = self.l1_fees(number, &raws, vault)?;
            vault = balance;
            for ((at, mut receipt), fee) in included.into_iter().zip(fees) {
                receipt.l1_fee = Some(fee);
                receipts[at] = Some(receipt);
            }
        }
        if let Some((at, from)) = failed {
            let tx = &txs[sent[at].0];
            let error = self.failure_of(
                tx.hash(),
                describe_call(tx.to().is_none(), tx.input()),
                from,
            );
            self.node_revert(&snapshot)?;
            self.next_timestamp = clock;
            return Ok(Some((sent[at].0, from, error)));
        }
        for (slot, (i, _)) in receipts.into_iter().zip(&sent) {
            if let Some(receipt) = slot {
                results[*i] = Some(Ok(receipt));
            }
        }
        Ok(None)
    }

    /// Runs a whole batch; a node failure fails every transaction not yet decided.
    fn run_batch(
        &mut self,
        txs: &[SignedTx],
        results: &mut [Option<Result<Receipt, ChainError>>],
    ) -> Result<(), ChainError> {
        // Outcomes caused by a revert earlier in the batch are final; the rest is redone.
        let mut decided = vec![false; txs.len()];
        loop {
            let pending: Vec<usize> = (0..txs.len()).filter(|i| !decided[*i]).collect();
            for &i in &pending {
                results[i] = None;
            }
            match self.attempt(txs, &pending, results)? {
                None => return Ok(()),
                Some((failed, from, error)) => {
                    results[failed] = Some(Err(error));
                    decided[failed] = true;
                    for &later in pending.iter().filter(|i| **i > failed) {
                        let tx = &txs[later];
                        if tx.from == from || tx.envelope.recover_signer().ok() == Some(from) {
                            results[later] = Some(Err(ChainError::Rejected {
                                tx_hash: tx.hash(),
                                call: describe_call(tx.to().is_none(), tx.input()),
                                from,
                                reason: "nonce gap after an earlier revert in the batch".into(),
                            }));
                            decided[later] = true;
                        }
                    }
                }
            }
        }
    }

    /// Block overrides that make a simulation run in the block being built on the head.
    fn pending_block_overrides(&mut self) -> Result<Value, ChainError> {
        let head = self.head()?;
        Ok(json!({
            "number": U64::from(head.number + 1),
            "time": U64::from(self.next_timestamp),
        }))
    }

    /// Gas used by `req` run as a transaction on top of the head, from `eth_simulateV1`, with
    /// the embedded chain's simulation settings: the block gas limit at the next base fee and
    /// no tip, validated, so that a sender who cannot pay for that (and `value`) is
    /// [`ChainError::Rejected`] as there (anvil's `eth_estimateGas` checks no funds).
    fn simulated_gas(&mut self, req: &CallRequest) -> Result<Option<u64>, ChainError> {
        let base_fee = U64::from(self.next_base_fee()?);
        let mut call = call_object(req);
        call["gas"] = json!(U64::from(self.config.block_gas_limit));
        call["maxFeePerGas"] = json!(base_fee);
        call["maxPriorityFeePerGas"] = json!("0x0");
        let mut overrides = self.pending_block_overrides()?;
        overrides["baseFeePerGas"] = json!(base_fee);
        let params = json!([{
            "blockStateCalls": [{ "blockOverrides": overrides, "calls": [call] }],
            "validation": true,
        }, "latest"]);
        let blocks = match self.request("eth_simulateV1", params) {
            Ok(blocks) => blocks,
            // anvil's code for a transaction it refuses (funds, nonce, fees).
            Err(RpcFailure::Response {
                code: -32003,
                message,
                ..
            }) => {
                return Err(ChainError::Rejected {
                    tx_hash: B256::ZERO,
                    call: describe_call(req.to.is_none(), &req.data),
                    from: req.from,
                    reason: message,
                });
            }
            Err(_) => return Ok(None),
        };
        let result = &blocks[0]["calls"][0];
        if result.get("status").and_then(Value::as_str) != Some("0x1") {
            return Ok(None);
        }
        Ok(result
            .get("gasUsed")
            .cloned()
            .and_then(|g| serde_json::from_value::<U64>(g).ok())
            .map(|g| g.to::<u64>()))
    }

    /// The error of a failed `eth_call`/`eth_estimateGas`: a revert with its decoded reason
    /// when the node returned revert data.
    fn call_error(req: &CallRequest, method: &str, failure: RpcFailure) -> ChainError {
        let call = describe_call(req.to.is_none(), &req.data);
        match failure {
            RpcFailure::Response { message, data, .. } => {
                let revert_data = data
                    .as_ref()
                    .and_then(|d| d.as_str().or_else(|| d.get("data").and_then(Value::as_str)))
                    .and_then(|hex| hex.parse::<Bytes>().ok());
                match revert_data {
                    Some(data) => ChainError::Reverted {
                        call,
                        from: req.from,
                        reason: decode_revert(&data),
                        data,
                    },
                    None if message.contains("revert") => ChainError::Reverted {
                        call,
                        from: req.from,
                        reason: decode_revert(&[]),
                        data: Bytes::new(),
                    },
                    None => ChainError::Halted {
                        call,
                        from: req.from,
                        reason: format!("{method}: {message}"),
                    },
                }
            }
            RpcFailure::Node(e) => e,
        }
    }
}

/// The node's process, killed and reaped when dropped, whether the chain was fully started
/// or not.
struct Node(Child);

impl std::ops::Deref for Node {
    type Target = Child;

    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Node {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The node's state at one block (number or tag), as an op-revm database: the L1 fee inputs are read
/// through it by op-revm's own parser ([`L1BlockInfo::try_fetch`]).
struct NodeState<'a> {
    chain: &'a mut AnvilChain,
    block: Value,
}

impl Database for NodeState<'_> {
    type Error = ChainError;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, ChainError> {
        let at = json!([address, &self.block]);
        let balance: U256 = self.chain.rpc_as("eth_getBalance", at.clone())?;
        let nonce: U64 = self.chain.rpc_as("eth_getTransactionCount", at.clone())?;
        let code: Bytes = self.chain.rpc_as("eth_getCode", at)?;
        Ok(Some(AccountInfo::new(
            balance,
            nonce.to(),
            keccak256(&code),
            Bytecode::new_raw(code),
        )))
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, ChainError> {
        Err(backend(format!(
            "code by hash ({code_hash}) is not served to the L1 fee reader"
        )))
    }

    fn storage(&mut self, address: Address, index: U256) -> Result<U256, ChainError> {
        let word: B256 = self
            .chain
            .rpc_as("eth_getStorageAt", json!([address, index, &self.block]))?;
        Ok(word.into())
    }

    fn block_hash(&mut self, number: u64) -> Result<B256, ChainError> {
        Err(backend(format!(
            "block hashes ({number}) are not served to the L1 fee reader"
        )))
    }
}

impl Chain for AnvilChain {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn chain_id(&self) -> u64 {
        self.config.chain_id
    }

    fn head(&mut self) -> Result<BlockInfo, ChainError> {
        let block = self.block(json!("latest"))?;
        block_info(block)
    }

    fn next_base_fee(&mut self) -> Result<u64, ChainError> {
        let block = self.block(json!("pending"))?;
        Ok(field::<U64>(&block, "baseFeePerGas")?.to())
    }

    fn balance(&mut self, who: Address) -> Result<U256, ChainError> {
        self.rpc_as("eth_getBalance", json!([who, "latest"]))
    }

    fn nonce(&mut self, who: Address) -> Result<u64, ChainError> {
        let nonce: U64 = self.rpc_as("eth_getTransactionCount", json!([who, "latest"]))?;
        Ok(nonce.to())
    }

    fn code(&mut self, who: Address) -> Result<Bytes, ChainError> {
        self.rpc_as("eth_getCode", json!([who, "latest"]))
    }

    fn storage(&mut self, who: Address, slot: U256) -> Result<U256, ChainError> {
        let word: B256 = self.rpc_as("eth_getStorageAt", json!([who, slot, "latest"]))?;
        Ok(word.into())
    }

    fn call(&mut self, req: &CallRequest) -> Result<Bytes, ChainError> {
        if req.to.is_none() {
            return Err(backend("a read-only call needs a callee".into()));
        }
        // Like the embedded chain, the call runs in the block being built on the head.
        let overrides = self.pending_block_overrides()?;
        // A read-only call pays nothing, whatever the caller holds, as the embedded chain's
        // system call: no gas price, and no L1 data fee (its inputs are zeroed for the call).
        let mut call = call_object(req);
        call["gasPrice"] = json!("0x0");
        let zero = B256::ZERO;
        let state = json!({ L1_BLOCK_CONTRACT.to_string(): { "stateDiff": {
            B256::from(L1_BASE_FEE_SLOT).to_string(): zero,
            B256::from(ECOTONE_L1_BLOB_BASE_FEE_SLOT).to_string(): zero,
            B256::from(ECOTONE_L1_FEE_SCALARS_SLOT).to_string(): zero,
        }}});
        let params = json!([call, "latest", state, overrides]);
        match self.request("eth_call", params) {
            Ok(value) => decode("eth_call", value),
            Err(failure) => Err(Self::call_error(req, "eth_call", failure)),
        }
    }

    fn estimate_gas(&mut self, req: &CallRequest) -> Result<u64, ChainError> {
        // eth_estimateGas first: it reports reverts with their data. Like every simulation
        // here it runs in the block being built, at the simulated clock's next timestamp.
        let overrides = self.pending_block_overrides()?;
        let params = json!([call_object(req), "latest", {}, overrides]);
        let estimate = match self.request("eth_estimateGas", params) {
            Ok(value) => decode::<U64>("eth_estimateGas", value)?.to::<u64>(),
            Err(failure) => return Err(Self::call_error(req, "eth_estimateGas", failure)),
        };
        let used = self.simulated_gas(req)?.unwrap_or(estimate);
        // The embedded chain's margin over gas used, so both sign the same gas limits.
        Ok((used + used / 5 + 10_000).min(self.config.block_gas_limit))
    }

    fn send_batch(&mut self, txs: Vec<SignedTx>) -> Vec<Result<Receipt, ChainError>> {
        if txs.iter().any(|tx| tx.origin == Origin::Impersonated) {
            // anvil executes impersonated transactions with its own fixed stand-in
            // signature, so its L1 data fee would not be the one olsim books.
            let refusal = "impersonated transactions run only on the embedded chain: send \
                           signed ones to anvil";
            return txs.iter().map(|_| Err(backend(refusal.into()))).collect();
        }
        let mut results: Vec<Option<Result<Receipt, ChainError>>> =
            (0..txs.len()).map(|_| None).collect();
        let outcome = self.run_batch(&txs, &mut results);
        results
            .into_iter()
            .map(|result| match (result, &outcome) {
                (Some(result), _) => result,
                (None, Err(e)) => Err(backend(format!("batch aborted: {e}"))),
                (None, Ok(())) => Err(backend("transaction left without an outcome".into())),
            })
            .collect()
    }

    /// Sends an OP-Stack deposit transaction (type 0x7E) minting `amount` to `to` from
    /// [`L1_DEPOSITOR`], as the embedded chain does, and mines it in a new block.
    fn deposit(&mut self, to: Address, amount: U256) -> Result<(), ChainError> {
        self.deposits += 1;
        let deposit = Deposit::nth(self.deposits, to, amount).ok_or_else(|| {
            backend(format!(
                "deposit of {amount} wei exceeds what an OP deposit can mint"
            ))
        })?;
        let raw = deposit.encode();
        let hash = keccak256(&raw);
        self.rpc("eth_sendRawTransaction", json!([raw]))
            .map_err(|e| backend(format!("{} refused: {e}", deposit.describe())))?;
        self.mine_block()?;
        match self.raw_receipt(hash)? {
            Some(receipt) if receipt.get("status").and_then(Value::as_str) == Some("0x1") => Ok(()),
            // Included and failed, as the OP Stack includes a failed deposit.
            Some(_) => Err(self.failure_of(hash, deposit.describe(), L1_DEPOSITOR)),
            None => Err(backend(format!("{} was not mined", deposit.describe()))),
        }
    }

    fn advance_time(&mut self, seconds: u64) -> Result<(), ChainError> {
        self.next_timestamp += seconds;
        Ok(())
    }

    fn mine(&mut self) -> Result<BlockInfo, ChainError> {
        self.mine_block()?;
        self.head()
    }

    fn snapshot(&mut self) -> Result<SnapshotId, ChainError> {
        let node = self.node_snapshot()?;
        let id = SnapshotId(self.next_snapshot);
        self.next_snapshot += 1;
        self.snapshots.push(Snapshot {
            id,
            node,
            next_timestamp: self.next_timestamp,
            deposits: self.deposits,
        });
        Ok(id)
    }

    fn revert_to(&mut self, id: SnapshotId) -> Result<(), ChainError> {
        let position = self
            .snapshots
            .iter()
            .position(|s| s.id == id)
            .ok_or(ChainError::UnknownSnapshot(id.0))?;
        let snapshot = self.snapshots.swap_remove(position);
        self.snapshots.truncate(position);
        self.node_revert(&snapshot.node)?;
        self.next_timestamp = snapshot.next_timestamp;
        self.deposits = snapshot.deposits;
        Ok(())
    }
}

/// The loopback TCP port that process `pid` listens on: the listening socket of
/// `/proc/<pid>/net/tcp` whose inode is one of the process's own open files (Linux). Only the
/// node itself can hold that socket, so no other server on the machine is taken for it.
fn listening_port(pid: u32) -> Option<u16> {
    let sockets: BTreeSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_str()?;
            Some(
                target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_owned(),
            )
        })
        .collect();
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).ok()?;
    table.lines().skip(1).find_map(|line| {
        // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
        let columns: Vec<&str> = line.split_whitespace().collect();
        let (local, state, inode) = (columns.get(1)?, columns.get(3)?, columns.get(9)?);
        const LISTEN: &str = "0A";
        if *state != LISTEN || !sockets.contains(*inode) {
            return None;
        }
        u16::from_str_radix(local.rsplit(':').next()?, 16).ok()
    })
}

/// Command-line arguments of the node.
fn node_args(config: &AnvilConfig, port: u16) -> Vec<String> {
    let args: [(&str, Option<String>); 15] = [
        ("--host", Some("127.0.0.1".into())),
        ("--port", Some(port.to_string())),
        ("--network", Some("optimism".into())),
        ("--hardfork", Some("isthmus".into())),
        ("--chain-id", Some(config.chain_id.to_string())),
        ("--timestamp", Some(config.genesis_timestamp.to_string())),
        ("--gas-limit", Some(config.block_gas_limit.to_string())),
        ("--base-fee", Some(config.genesis_base_fee.to_string())),
        ("--mnemonic", Some(MNEMONIC.into())),
        ("--accounts", Some("0".into())),
        ("--order", Some("fifo".into())),
        ("--no-mining", None),
        ("--disable-default-create2-deployer", None),
        ("--quiet", None),
        ("--color", Some("never".into())),
    ];
    args.into_iter()
        .flat_map(|(flag, value)| std::iter::once(flag.to_string()).chain(value))
        .collect()
}

/// The JSON call object of a request.
fn call_object(req: &CallRequest) -> Value {
    let mut call = json!({ "from": req.from, "input": req.data, "value": req.value });
    if let Some(to) = req.to {
        call["to"] = json!(to);
    }
    call
}

/// A block header as [`BlockInfo`].
fn block_info(block: Value) -> Result<BlockInfo, ChainError> {
    let tx_count = block
        .get("transactions")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    Ok(BlockInfo {
        number: field::<U64>(&block, "number")?.to(),
        timestamp: field::<U64>(&block, "timestamp")?.to(),
        base_fee: field::<U64>(&block, "baseFeePerGas")?.to(),
        gas_used: field::<U64>(&block, "gasUsed")?.to(),
        gas_limit: field::<U64>(&block, "gasLimit")?.to(),
        tx_count: u32::try_from(tx_count).unwrap_or(u32::MAX),
    })
}

/// A receipt parsed from JSON; its L1 fee is left to [`AnvilChain::l1_fees`].
fn parse_receipt(receipt: &Value) -> Result<Receipt, ChainError> {
    let optional = |name: &str| receipt.get(name).filter(|v| !v.is_null());
    let logs = receipt
        .get("logs")
        .and_then(Value::as_array)
        .map(|logs| {
            logs.iter()
                .map(|log| {
                    Ok(Log::new_unchecked(
                        field(log, "address")?,
                        field(log, "topics")?,
                        field(log, "data")?,
                    ))
                })
                .collect::<Result<Vec<_>, ChainError>>()
        })
        .transpose()?
        .unwrap_or_default();
    Ok(Receipt {
        tx_hash: field(receipt, "transactionHash")?,
        block_number: field::<U64>(receipt, "blockNumber")?.to(),
        from: field(receipt, "from")?,
        to: optional("to").map(|_| field(receipt, "to")).transpose()?,
        contract_address: optional("contractAddress")
            .map(|_| field(receipt, "contractAddress"))
            .transpose()?,
        gas_used: field::<U64>(receipt, "gasUsed")?.to(),
        effective_gas_price: field::<U256>(receipt, "effectiveGasPrice")?.to(),
        l1_fee: None,
        logs,
    })
}

/// Field `name` of a JSON object, decoded.
fn field<T: DeserializeOwned>(object: &Value, name: &str) -> Result<T, ChainError> {
    let value = object
        .get(name)
        .cloned()
        .ok_or_else(|| backend(format!("answer lacks `{name}`: {object}")))?;
    decode(name, value)
}

/// Decodes a JSON answer, naming what it was on failure.
fn decode<T: DeserializeOwned>(what: &str, value: Value) -> Result<T, ChainError> {
    serde_json::from_value(value.clone())
        .map_err(|e| backend(format!("cannot decode {what} from {value}: {e}")))
}

fn backend(message: String) -> ChainError {
    ChainError::Backend {
        backend: BACKEND,
        message,
    }
}

/// `future` under a deadline; the timer is created inside the runtime that polls it.
async fn timeout<F: std::future::Future>(
    limit: Duration,
    future: F,
) -> Result<F::Output, tokio::time::error::Elapsed> {
    tokio::time::timeout(limit, future).await
}

/// The error of a node that exited.
fn exited(status: ExitStatus, stderr: &Mutex<VecDeque<String>>) -> ChainError {
    backend(format!("anvil exited ({status}): {}", tail(stderr)))
}

/// The last stderr lines of the node, on one line.
fn tail(stderr: &Mutex<VecDeque<String>>) -> String {
    let lines = stderr
        .lock()
        .map(|lines| lines.iter().cloned().collect::<Vec<_>>().join(" | "))
        .unwrap_or_default();
    if lines.is_empty() {
        "no stderr output".into()
    } else {
        lines
    }
}
