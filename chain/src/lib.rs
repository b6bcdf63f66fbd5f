//! olsim's chain layer: one [`Chain`] API over two backends, and the OpenLedger protocol
//! contracts deployed on it.
//!
//! - [`EmbeddedChain`]: an OP-Stack L2 on op-revm inside this process (the default).
//! - [`AnvilChain`]: a real anvil node started with `--network optimism`, for cross-checks.
//! - [`Deployment`]: deploys and wires the seven contracts and offers typed calls.
//!
//! Transactions are signed by [`Wallet`]s derived from the master seed; a transaction that
//! would revert is refused with its decoded reason and leaves the state as it was.

pub mod abi;
pub mod anvil;
pub mod api;
pub mod client;
pub mod contracts;
pub mod deposit;
pub mod embedded;
pub mod error;
pub mod merkle;
pub mod protocol;
pub mod senders;
pub mod signatures;
pub mod wallet;
pub mod workload;

pub use anvil::{AnvilChain, AnvilConfig};
pub use api::{BlockInfo, CallRequest, Chain, Origin, Receipt, SignedTx, SnapshotId};
pub use embedded::{EmbeddedChain, EmbeddedConfig};
pub use error::ChainError;
pub use protocol::{Deployment, Ledger, ProtocolParams, Roles};
pub use signatures::{SignatureCounts, SignatureMemo};
pub use wallet::{TxRequest, Wallet};
