//! Errors of the chain layer. Each one says which transaction or call failed and why, in
//! words a user can act on: reverts carry the decoded reason and the call that was sent.

use alloy_primitives::{Address, B256, Bytes};

/// What went wrong on a chain.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The transaction or call executed and reverted; nothing it did was kept.
    #[error("{call} sent by {from} reverted: {reason}")]
    Reverted {
        /// The call that was sent, decoded ("DatanetRegistry.contribute(1, 0xab.., 10, 100)").
        call: String,
        /// Sender.
        from: Address,
        /// Decoded revert reason ("StakeTooLow(1, 100)", "Error: ...", "Panic(0x11)").
        reason: String,
        /// Raw revert data.
        data: Bytes,
    },
    /// The transaction ran out of gas or hit an invalid opcode.
    #[error("{call} sent by {from} halted: {reason}")]
    Halted {
        /// The call that was sent, decoded.
        call: String,
        /// Sender.
        from: Address,
        /// Why execution halted.
        reason: String,
    },
    /// The transaction was refused before execution (bad nonce, funds for gas, signature...).
    #[error("transaction {tx_hash} ({call}) from {from} was rejected: {reason}")]
    Rejected {
        /// Hash of the refused transaction.
        tx_hash: B256,
        /// The call that was sent, decoded.
        call: String,
        /// Claimed sender.
        from: Address,
        /// Why it was refused.
        reason: String,
    },
    /// A receipt lacked an event the caller relied on.
    #[error("transaction {tx_hash} emitted no {event} event")]
    MissingEvent {
        /// Solidity signature of the missing event.
        event: &'static str,
        /// The transaction whose receipt was searched.
        tx_hash: B256,
    },
    /// A returned value could not be decoded against the contract ABI.
    #[error("cannot decode the result of {call}: {reason}")]
    Decode {
        /// The call whose output failed to decode.
        call: String,
        /// Decoder message.
        reason: String,
    },
    /// A tool the backend needs is not installed.
    #[error(
        "{tool} not found at {path}: run `scripts/setup` from the repository root to install the pinned version"
    )]
    ToolMissing {
        /// Tool name.
        tool: &'static str,
        /// Where it was looked for.
        path: String,
    },
    /// The backend itself failed (node crashed, RPC error, internal EVM error).
    #[error("{backend} backend: {message}")]
    Backend {
        /// Backend name.
        backend: &'static str,
        /// What failed.
        message: String,
    },
    /// An unknown snapshot id was given to `revert_to`.
    #[error("snapshot {0} does not exist (it was never taken or a revert dropped it)")]
    UnknownSnapshot(u64),
}

/// Lets a chain serve as an op-revm database (the anvil backend reads L1 fee inputs so).
impl op_revm::revm::database_interface::DBErrorMarker for ChainError {}

impl ChainError {
    /// The decoded revert reason, if this is a revert.
    pub fn revert_reason(&self) -> Option<&str> {
        match self {
            Self::Reverted { reason, .. } => Some(reason),
            _ => None,
        }
    }
}
