//! Sender recovery ahead of execution.
//!
//! Recovering a sender from its secp256k1 signature costs about as much as executing a
//! protocol call. For a long batch, helper threads (one per spare core, a few at most) and
//! the executing thread share that work: each takes the next transaction nobody has started
//! and recovers its sender; the executor executes a transaction as soon as its sender is
//! known, and recovers the next unstarted one whenever it would otherwise wait.
//!
//! The executor never waits for a helper: once every transaction is started, it recovers
//! the one it needs itself, and it returns without joining them (they share the batch
//! through an `Arc` and end on their own). So on a busy machine, a helper the scheduler has
//! put aside costs at most a duplicated recovery, never a time slice. Each sender is a pure
//! function of its transaction: results do not depend on which thread recovered it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use alloy::consensus::transaction::SignerRecoverable;
use alloy_primitives::Address;

use crate::api::{Origin, SignedTx};

/// A recovered sender, or why the signature is invalid.
pub type Sender = Result<Address, String>;

/// The signer of `tx`, recovered from its signature; an impersonated transaction's sender
/// is its `from`, unchecked.
pub fn recover(tx: &SignedTx) -> Sender {
    match tx.origin {
        Origin::Signed => tx.envelope.recover_signer().map_err(|e| e.to_string()),
        Origin::Impersonated => Ok(tx.from),
    }
}

/// Batches with fewer signed transactions than this are recovered inline: a thread costs
/// more than it saves.
const MIN_PARALLEL_BATCH: usize = 8;

/// The most helper threads a batch gets: with two, recovery keeps ahead of execution.
const MAX_HELPERS: usize = 3;

/// Helper threads for a batch with `signed` signed transactions: one per spare core, at most
/// [`MAX_HELPERS`] and one per [`MIN_PARALLEL_BATCH`] signed transactions.
fn helpers(signed: usize) -> usize {
    static SPARE_CORES: OnceLock<usize> = OnceLock::new();
    let spare = *SPARE_CORES.get_or_init(|| {
        std::thread::available_parallelism().map_or(0, |n| n.get().saturating_sub(1))
    });
    spare.min(MAX_HELPERS).min(signed / MIN_PARALLEL_BATCH)
}

/// A batch whose senders the executor and its helpers recover together.
struct Recovery {
    txs: Vec<SignedTx>,
    senders: Vec<OnceLock<Sender>>,
    /// The first transaction nobody has started.
    next: AtomicUsize,
}

impl Recovery {
    /// Recovers the next transaction nobody has started; false once all are started.
    fn recover_next(&self) -> bool {
        let j = self.next.fetch_add(1, Ordering::Relaxed);
        if j < self.txs.len() {
            let _ = self.senders[j].set(recover(&self.txs[j]));
            true
        } else {
            false
        }
    }

    /// The sender of transaction `i`: recovered already, or recovered here (another
    /// unstarted one first, for as long as there is one, while a helper finishes `i`).
    fn sender(&self, i: usize) -> Sender {
        loop {
            if let Some(sender) = self.senders[i].get() {
                return sender.clone();
            }
            if !self.recover_next() {
                // Everything is started and a helper holds this one: recover it here
                // rather than wait for a thread that may not be running.
                return recover(&self.txs[i]);
            }
        }
    }
}

/// Calls `execute(tx, sender_of_tx)` for every transaction in order, with senders recovered
/// ahead on helper threads for batches with many signed transactions.
pub fn with_recovered_senders<R>(
    txs: Vec<SignedTx>,
    mut execute: impl FnMut(&SignedTx, Sender) -> R,
) -> Vec<R> {
    let signed = txs.iter().filter(|tx| tx.origin == Origin::Signed).count();
    let helpers = helpers(signed);
    if helpers == 0 {
        return txs.iter().map(|tx| execute(tx, recover(tx))).collect();
    }
    let batch = Arc::new(Recovery {
        senders: txs.iter().map(|_| OnceLock::new()).collect(),
        txs,
        next: AtomicUsize::new(0),
    });
    for _ in 0..helpers {
        let batch = Arc::clone(&batch);
        // A helper that cannot be started leaves its share to the executor.
        let _ = std::thread::Builder::new()
            .name("olsim-senders".into())
            .spawn(move || while batch.recover_next() {});
    }
    (0..batch.txs.len())
        .map(|i| execute(&batch.txs[i], batch.sender(i)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wallet::{TxRequest, Wallet};

    #[test]
    fn recovers_every_sender_in_order_whatever_the_batch_size() {
        for n in [1, 7, 8, 50] {
            let mut wallets: Vec<Wallet> = (0..n)
                .map(|i| Wallet::derive(1, &format!("w{i}")))
                .collect();
            let txs: Vec<SignedTx> = wallets
                .iter_mut()
                .map(|w| {
                    w.sign(
                        1,
                        TxRequest {
                            gas_limit: 21_000,
                            ..Default::default()
                        },
                    )
                })
                .collect();
            let want: Vec<_> = txs.iter().map(|tx| (tx.hash(), tx.from)).collect();
            let got = with_recovered_senders(txs, |tx, sender| (tx.hash(), sender.unwrap()));
            assert_eq!(got, want);
        }
    }

    #[test]
    fn a_bad_signature_in_a_long_batch_spoils_its_own_sender_only() {
        let mut wallet = Wallet::derive(1, "w");
        let req = || TxRequest {
            gas_limit: 21_000,
            ..Default::default()
        };
        let mut txs: Vec<SignedTx> = (0..40).map(|_| wallet.sign(1, req())).collect();
        // A stand-in signature presented as a real one signs nothing.
        txs[17] = SignedTx {
            origin: Origin::Signed,
            ..wallet.impersonate(1, req())
        };
        let got = with_recovered_senders(txs, |_, sender| sender.ok());
        for (i, sender) in got.iter().enumerate() {
            assert_eq!(
                *sender == Some(wallet.address()),
                i != 17,
                "transaction {i}"
            );
        }
    }
}
