//! Sender recovery ahead of execution.
//!
//! Recovering a sender from its secp256k1 signature costs about as much as executing a
//! protocol call. For a long batch, helper threads (one per spare core, a few at most) and
//! the executing thread share that work: each takes the next transaction nobody has started
//! and recovers its sender; the executor executes a transaction as soon as its sender is
//! known, and recovers the next unstarted one whenever it would otherwise wait. It never
//! blocks on a helper: once every transaction is started, it recovers the one it needs
//! itself, so a helper the scheduler has put aside (on a busy machine) costs at most one
//! recovery instead of a time slice. Each sender is a pure function of its transaction:
//! results do not depend on which thread recovered it.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

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

/// Calls `execute(i, sender_of_tx_i)` for every transaction in order, with senders
/// recovered ahead on helper threads for batches with many signed transactions.
pub fn with_recovered_senders<R>(
    txs: &[SignedTx],
    mut execute: impl FnMut(usize, Sender) -> R,
) -> Vec<R> {
    let signed = txs.iter().filter(|tx| tx.origin == Origin::Signed).count();
    let helpers = helpers(signed);
    if helpers == 0 {
        return txs
            .iter()
            .enumerate()
            .map(|(i, tx)| execute(i, recover(tx)))
            .collect();
    }
    let senders: Vec<OnceLock<Sender>> = txs.iter().map(|_| OnceLock::new()).collect();
    let next = AtomicUsize::new(0);
    // Recovers the next transaction nobody has started; false once all are started.
    let recover_next = || {
        let j = next.fetch_add(1, Ordering::Relaxed);
        if j < txs.len() {
            let _ = senders[j].set(recover(&txs[j]));
            true
        } else {
            false
        }
    };
    std::thread::scope(|scope| {
        for _ in 0..helpers {
            scope.spawn(|| while recover_next() {});
        }
        (0..txs.len())
            .map(|i| {
                let sender = loop {
                    if let Some(sender) = senders[i].get() {
                        break sender.clone();
                    }
                    if !recover_next() {
                        // Everything is started and a helper holds this one: recover it
                        // here rather than wait for a thread that may not be running.
                        break recover(&txs[i]);
                    }
                };
                execute(i, sender)
            })
            .collect()
    })
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
            let got = with_recovered_senders(&txs, |i, sender| (i, sender.unwrap()));
            let want: Vec<_> = wallets
                .iter()
                .enumerate()
                .map(|(i, w)| (i, w.address()))
                .collect();
            assert_eq!(got, want);
        }
    }
}
