//! Signatures made before, kept for runs that sign the same transactions again.
//!
//! Signing here is deterministic (RFC 6979 nonces, no added randomness: see
//! [`crate::wallet`]), so the signature of a transaction is a pure function of the key and
//! its signing hash: a signature made once is the one signing again would make, byte for
//! byte. A run and its counterfactual runs send many identical transactions (the same
//! sender, nonce, fee cap and calldata until the changed attack reaches them), and signing
//! is the costly part of sealing one; [`SignatureMemo`] lets the later runs take those
//! signatures instead of computing them again.

use std::collections::HashMap;
use std::sync::Mutex;

use alloy_primitives::{Address, B256, Signature};

/// Most signatures a memo keeps (about 150 bytes each with the map's overhead, so at most
/// about 150 MB): past it, signatures are still made and counted but no longer kept. The
/// earliest are the ones worth keeping: a counterfactual run matches the run only until its
/// change first alters a block (see docs/metrics.md, "Replication robustness").
const MAX_KEPT: usize = 1_000_000;

/// Signatures by signer address and signing hash, with how many were made and how many
/// taken from here. Shared across threads (sealing runs on the rayon pool).
#[derive(Debug, Default)]
pub struct SignatureMemo {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    kept: HashMap<(Address, B256), Signature>,
    counts: SignatureCounts,
}

/// How many signatures a [`SignatureMemo`] saw made and how many it supplied instead.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SignatureCounts {
    /// Signatures computed.
    pub made: u64,
    /// Signatures taken from the memo instead of computed.
    pub reused: u64,
}

impl SignatureMemo {
    /// The signature `signer` made over `hash` before, if this memo kept it (counted as
    /// reused).
    pub(crate) fn get(&self, signer: Address, hash: B256) -> Option<Signature> {
        let mut state = self.lock();
        let signature = state.kept.get(&(signer, hash)).copied();
        state.counts.reused += u64::from(signature.is_some());
        signature
    }

    /// Counts a signature `signer` just made over `hash`, and keeps it where `keep` says
    /// (and the memo is not full).
    pub(crate) fn made(&self, signer: Address, hash: B256, signature: Signature, keep: bool) {
        let mut state = self.lock();
        state.counts.made += 1;
        if keep && state.kept.len() < MAX_KEPT {
            state.kept.insert((signer, hash), signature);
        }
    }

    /// Signatures made and reused so far.
    pub fn counts(&self) -> SignatureCounts {
        self.lock().counts
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves the state whole (one lookup, insert or
        // count at a time).
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Origin;
    use crate::wallet::{TxRequest, Wallet};

    /// A call whose L1 data fee depends on its signature (a Merkle claim's size), so that
    /// the memo keeps its signature.
    fn req(data: u8) -> TxRequest {
        TxRequest {
            to: Some(Address::repeat_byte(9)),
            data: (0..8u8)
                .flat_map(|i| alloy_primitives::keccak256([data, i]).0)
                .collect::<Vec<u8>>()
                .into(),
            gas_limit: 100_000,
            max_fee_per_gas: 2_000_000_000,
            ..Default::default()
        }
    }

    /// A transaction sealed again with the memo gets the bytes it got without one, taking
    /// the signature from the memo; a different transaction, or the same one from another
    /// signer, is signed anew, and so is one whose signature the memo does not keep.
    #[test]
    fn a_remembered_signature_is_the_one_signing_again_makes() {
        let memo = SignatureMemo::default();
        let (mut alice, mut bob) = (Wallet::derive(5, "alice"), Wallet::derive(5, "bob"));
        let first = alice.take_nonce(10, req(1));
        let fresh = alice.seal(first.clone(), Origin::Signed, None);
        let kept = alice.seal(first.clone(), Origin::Signed, Some(&memo));
        let again = alice.seal(first, Origin::Signed, Some(&memo));
        assert_eq!(kept.raw, fresh.raw);
        assert_eq!(again.raw, fresh.raw);
        assert_eq!(memo.counts(), SignatureCounts { made: 1, reused: 1 });

        let other_data = alice.take_nonce(10, req(2));
        let other_signer = bob.take_nonce(10, req(1));
        for (wallet, tx) in [(&alice, other_data), (&bob, other_signer)] {
            let with_memo = wallet.seal(tx.clone(), Origin::Signed, Some(&memo));
            assert_eq!(with_memo.raw, wallet.seal(tx, Origin::Signed, None).raw);
        }
        assert_eq!(memo.counts(), SignatureCounts { made: 3, reused: 1 });

        // A short call pays the L1 fee floor whatever its signature: an impersonated run
        // never signs it, so it is not kept.
        let short = alice.take_nonce(
            10,
            TxRequest {
                data: vec![1; 4].into(),
                ..req(0)
            },
        );
        for _ in 0..2 {
            alice.seal(short.clone(), Origin::Signed, Some(&memo));
        }
        assert_eq!(memo.counts(), SignatureCounts { made: 5, reused: 1 });
    }
}
