//! The one Chain API that the rest of olsim talks to, whichever backend runs underneath.
//!
//! Two backends implement [`Chain`]: [`crate::EmbeddedChain`] (op-revm in this process) and
//! [`crate::AnvilChain`] (a real anvil node reached over JSON-RPC). Both take the same signed
//! transactions, so the same workload can be replayed on each and compared.

use alloy::consensus::{SignableTransaction, Transaction as _, TxEip1559, TxEnvelope};
use alloy::eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, Bytes, Log, Signature, U256, keccak256};
use alloy_sol_types::SolEvent;

use crate::error::ChainError;

/// A transaction as a wallet hands it to a chain: the typed envelope plus its EIP-2718
/// encoding (what goes on the wire and what the OP-Stack L1 data fee is charged on), signed
/// or impersonated ([`Origin`]).
#[derive(Clone, Debug)]
pub struct SignedTx {
    /// The typed transaction, with its signature (a stand-in when impersonated).
    pub envelope: TxEnvelope,
    /// EIP-2718 encoding of `envelope`.
    pub raw: Bytes,
    /// Sender, known to the wallet that made it; chains recover a signed transaction's
    /// sender themselves and check it.
    pub from: Address,
    /// Signed, or sent in-process as `from` without a signature.
    pub origin: Origin,
}

/// How a chain learns who sent a transaction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Origin {
    /// Signed by `from`'s key: the chain recovers the sender from the signature.
    #[default]
    Signed,
    /// Impersonated (anvil's word): sent in-process as `from` by a caller the chain trusts,
    /// with no signing and no recovery. The envelope carries a stand-in signature the size
    /// of a real one ([`SignedTx::impersonated`]), so that its encoding, and the L1 data
    /// fee charged on it, has a signed transaction's size. Only the embedded chain
    /// executes these; anvil refuses them.
    Impersonated,
}

impl SignedTx {
    /// Wraps an envelope signed by `from`.
    pub fn new(envelope: TxEnvelope, from: Address) -> Self {
        let raw = envelope.encoded_2718().into();
        Self {
            envelope,
            raw,
            from,
            origin: Origin::Signed,
        }
    }

    /// `tx` sent as `from` without a signature ([`Origin::Impersonated`]). Its stand-in
    /// signature has the shape of a real one, `y_parity` 0 and 32-byte `r` and `s` taken
    /// from the transaction's signing hash (incompressible, as a real signature's are), but
    /// signs nothing: only a chain that trusts `from` executes it.
    pub fn impersonated(tx: TxEip1559, from: Address) -> Self {
        let hash = tx.signature_hash();
        let r = keccak256([hash.as_slice(), b"r"].concat());
        let s = keccak256([hash.as_slice(), b"s"].concat());
        // Top bit set: no leading zero byte, so RLP keeps all 32 bytes of each.
        let word = |mut w: B256| {
            w.0[0] |= 0x80;
            U256::from_be_bytes(w.0)
        };
        let signature = Signature::new(word(r), word(s), false);
        let envelope = TxEnvelope::Eip1559(tx.into_signed(signature));
        Self {
            origin: Origin::Impersonated,
            ..Self::new(envelope, from)
        }
    }

    /// Transaction hash: the keccak of the EIP-2718 encoding `raw` (no re-encoding).
    pub fn hash(&self) -> B256 {
        keccak256(&self.raw)
    }

    /// Recipient, `None` for a contract creation.
    pub fn to(&self) -> Option<Address> {
        self.envelope.to()
    }

    /// Calldata (or init code for a creation).
    pub fn input(&self) -> &Bytes {
        self.envelope.input()
    }

    /// Sender nonce.
    pub fn nonce(&self) -> u64 {
        self.envelope.nonce()
    }

    /// Gas limit.
    pub fn gas_limit(&self) -> u64 {
        self.envelope.gas_limit()
    }
}

/// A read-only call or a gas estimate: who calls what with which data.
#[derive(Clone, Debug, Default)]
pub struct CallRequest {
    /// Caller.
    pub from: Address,
    /// Callee; `None` estimates a contract creation with `data` as init code.
    pub to: Option<Address>,
    /// Calldata.
    pub data: Bytes,
    /// Value sent along.
    pub value: U256,
}

/// The outcome of an included transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// Transaction hash.
    pub tx_hash: B256,
    /// Block the transaction was included in.
    pub block_number: u64,
    /// Sender.
    pub from: Address,
    /// Recipient, `None` for a creation.
    pub to: Option<Address>,
    /// Address of the created contract, for a creation.
    pub contract_address: Option<Address>,
    /// Gas used by this transaction.
    pub gas_used: u64,
    /// Price per gas actually paid (base fee plus the tip the sender allowed).
    pub effective_gas_price: u128,
    /// OP-Stack L1 data fee charged on the encoded transaction, where the backend reports one.
    pub l1_fee: Option<U256>,
    /// Logs in emission order.
    pub logs: Vec<Log>,
}

impl Receipt {
    /// Every log of event type `E` emitted by `emitter`, decoded.
    pub fn events<E: SolEvent>(&self, emitter: Address) -> Vec<E> {
        self.logs
            .iter()
            .filter(|log| log.address == emitter)
            .filter_map(|log| E::decode_log(log).ok().map(|decoded| decoded.data))
            .collect()
    }

    /// The first log of type `E` from `emitter`, or an error naming the missing event.
    pub fn event<E: SolEvent>(&self, emitter: Address) -> Result<E, ChainError> {
        self.events::<E>(emitter)
            .into_iter()
            .next()
            .ok_or_else(|| ChainError::MissingEvent {
                event: E::SIGNATURE,
                tx_hash: self.tx_hash,
            })
    }

    /// L2 execution fee: gas used times the effective gas price.
    pub fn execution_fee(&self) -> U256 {
        U256::from(self.gas_used) * U256::from(self.effective_gas_price)
    }
}

/// The head block of a chain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockInfo {
    /// Block number.
    pub number: u64,
    /// Block timestamp (seconds, from the simulated clock).
    pub timestamp: u64,
    /// EIP-1559 base fee per gas.
    pub base_fee: u64,
    /// Gas used by all transactions of the block.
    pub gas_used: u64,
    /// Block gas limit.
    pub gas_limit: u64,
    /// Number of transactions.
    pub tx_count: u32,
}

/// Identifier of a state snapshot, returned by [`Chain::snapshot`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SnapshotId(pub u64);

/// The operations every olsim chain backend offers.
///
/// Transactions are sent signed. A transaction that would revert is not included: the
/// call returns [`ChainError::Reverted`] with the decoded reason and the state is as before.
pub trait Chain {
    /// Short backend name for reports ("embedded", "anvil").
    fn backend(&self) -> &'static str;

    /// EIP-155 chain id.
    fn chain_id(&self) -> u64;

    /// The latest sealed block.
    fn head(&mut self) -> Result<BlockInfo, ChainError>;

    /// Base fee the next block will charge.
    fn next_base_fee(&mut self) -> Result<u64, ChainError>;

    /// Native (ETH) balance.
    fn balance(&mut self, who: Address) -> Result<U256, ChainError>;

    /// Next nonce of `who`.
    fn nonce(&mut self, who: Address) -> Result<u64, ChainError>;

    /// Deployed code of `who`.
    fn code(&mut self, who: Address) -> Result<Bytes, ChainError>;

    /// One storage slot of `who`.
    fn storage(&mut self, who: Address, slot: U256) -> Result<U256, ChainError>;

    /// Executes a read-only call against the head state; nothing is changed.
    fn call(&mut self, req: &CallRequest) -> Result<Bytes, ChainError>;

    /// Gas a transaction would need, with a safety margin; reverts come back as errors.
    fn estimate_gas(&mut self, req: &CallRequest) -> Result<u64, ChainError>;

    /// Includes `txs` in order in as few new blocks as their gas limits allow and seals them.
    /// Returns one result per transaction, in order.
    fn send_batch(&mut self, txs: Vec<SignedTx>) -> Vec<Result<Receipt, ChainError>>;

    /// Includes one transaction in a new block.
    fn send(&mut self, tx: SignedTx) -> Result<Receipt, ChainError> {
        self.send_batch(vec![tx])
            .pop()
            .expect("send_batch returns one result per transaction")
    }

    /// Bridges `amount` wei from L1 to `to` with an OP-Stack deposit, in a new block.
    ///
    /// A deposit whose call fails (`to` refuses ETH) is included all the same, as on the OP
    /// Stack: its block is sealed, the mint stays with the depositor
    /// ([`L1_DEPOSITOR`](crate::deposit::L1_DEPOSITOR)), whose nonce moves on, and the
    /// failure comes back as [`ChainError::Reverted`] (or [`ChainError::Halted`]).
    fn deposit(&mut self, to: Address, amount: U256) -> Result<(), ChainError>;

    /// Moves the simulated clock: the next block is at least `seconds` later than it would be.
    fn advance_time(&mut self, seconds: u64) -> Result<(), ChainError>;

    /// Seals an empty block.
    fn mine(&mut self) -> Result<BlockInfo, ChainError>;

    /// Remembers the current state.
    fn snapshot(&mut self) -> Result<SnapshotId, ChainError>;

    /// Returns to a snapshot; later snapshots are dropped.
    fn revert_to(&mut self, id: SnapshotId) -> Result<(), ChainError>;

    /// Keccak digest of the whole EVM state (every account with its balance, nonce, code and
    /// storage, and the head block), where the backend can compute one; `None` on a node
    /// that does not expose its whole state (anvil).
    fn full_state_digest(&self) -> Option<B256> {
        None
    }
}

#[cfg(test)]
mod tests {
    use crate::wallet::{TxRequest, Wallet};

    #[test]
    fn hash_is_the_envelope_hash_signed_and_impersonated() {
        let mut wallet = Wallet::derive(1, "hasher");
        let req = || TxRequest {
            data: vec![1, 2, 3].into(),
            gas_limit: 50_000,
            ..Default::default()
        };
        for tx in [wallet.sign(901, req()), wallet.impersonate(901, req())] {
            assert_eq!(tx.hash(), *tx.envelope.tx_hash());
        }
    }
}
