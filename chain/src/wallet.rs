//! Keys derived from the master seed, and signing of EIP-1559 transactions.
//!
//! Every actor of a run gets its key from `(seed, name)`, so the same scenario produces the
//! same addresses and the same signed bytes on every backend, run after run.
//!
//! Signing uses libsecp256k1 (the `secp256k1` crate alloy already builds for sender
//! recovery) with RFC 6979 nonces and low-`s` signatures: the same bytes alloy's pure-Rust
//! k256 signer produces (a test checks it), at a fraction of the cost. Signing was about
//! 65% of the engine's CPU time while it funds a scale run's 104k identities.

use alloy::consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_primitives::{Address, B256, Bytes, Signature, TxKind, U256, keccak256};
use op_revm::estimate_tx_compressed_size;
use secp256k1::{Message, PublicKey, SECP256K1, SecretKey};

use crate::api::{Origin, SignedTx};
use crate::signatures::SignatureMemo;

/// What a wallet fills into a transaction besides the nonce and chain id.
#[derive(Clone, Debug, Default)]
pub struct TxRequest {
    /// Recipient; `None` creates a contract from `data`.
    pub to: Option<Address>,
    /// Calldata or init code.
    pub data: Bytes,
    /// Wei sent along.
    pub value: U256,
    /// Gas limit.
    pub gas_limit: u64,
    /// EIP-1559 fee cap per gas.
    pub max_fee_per_gas: u128,
    /// EIP-1559 tip per gas.
    pub max_priority_fee_per_gas: u128,
}

impl TxRequest {
    /// The unsigned EIP-1559 transaction of this request on chain `chain_id` at `nonce`.
    fn into_eip1559(self, chain_id: u64, nonce: u64) -> TxEip1559 {
        TxEip1559 {
            chain_id,
            nonce,
            gas_limit: self.gas_limit,
            max_fee_per_gas: self.max_fee_per_gas,
            max_priority_fee_per_gas: self.max_priority_fee_per_gas,
            to: self.to.map_or(TxKind::Create, TxKind::Call),
            value: self.value,
            access_list: Default::default(),
            input: self.data,
        }
    }
}

/// A private key derived from the master seed and a stable actor name, with the nonce of
/// the next transaction it signs.
#[derive(Clone, Debug)]
pub struct Wallet {
    key: SecretKey,
    address: Address,
    next_nonce: u64,
}

impl Wallet {
    /// The wallet of actor `name` under master seed `seed`.
    pub fn derive(seed: u64, name: &str) -> Self {
        let key = derive_key(seed, name);
        let public = PublicKey::from_secret_key_global(&key).serialize_uncompressed();
        Self {
            key,
            address: Address::from_slice(&keccak256(&public[1..])[12..]),
            next_nonce: 0,
        }
    }

    /// Address of this wallet.
    pub fn address(&self) -> Address {
        self.address
    }

    /// Nonce the next signed transaction will carry.
    pub fn nonce(&self) -> u64 {
        self.next_nonce
    }

    /// Sets the next nonce, for example from the chain after a transaction was refused.
    pub fn set_nonce(&mut self, nonce: u64) {
        self.next_nonce = nonce;
    }

    /// Signs `req` with the next nonce, which it then consumes.
    pub fn sign(&mut self, chain_id: u64, req: TxRequest) -> SignedTx {
        let tx = self.take_nonce(chain_id, req);
        self.seal(tx, Origin::Signed, None)
    }

    /// `req` as an unsigned transaction on chain `chain_id` with the next nonce, which it
    /// consumes: [`sign`](Self::sign) and [`impersonate`](Self::impersonate) in two steps,
    /// so that a batch can take its nonces in order and then be [`seal`](Self::seal)ed in
    /// parallel (sealing needs only `&self`, and is the costly part).
    pub fn take_nonce(&mut self, chain_id: u64, req: TxRequest) -> TxEip1559 {
        let tx = req.into_eip1559(chain_id, self.next_nonce);
        self.next_nonce += 1;
        tx
    }

    /// `tx` (from [`take_nonce`](Self::take_nonce)) as this wallet sends it: signed, or
    /// impersonated as [`impersonate`](Self::impersonate) describes. A pure function of the
    /// key and `tx`, so it gives the same bytes on any thread. A signature it must make is
    /// taken from `memo` where this wallet made it before; otherwise it is kept there if an
    /// impersonated run would sign the transaction too (the runs that read a memo are
    /// impersonated counterfactual runs).
    pub fn seal(&self, tx: TxEip1559, origin: Origin, memo: Option<&SignatureMemo>) -> SignedTx {
        match origin {
            Origin::Signed => self.signed(tx, memo, l1_fee_may_depend_on_signature),
            Origin::Impersonated => self.impersonated(tx, memo),
        }
    }

    /// `tx` signed with this wallet's key (or by it before, as `memo` keeps). A new
    /// signature is kept in `memo` where `worth_keeping` says of the signed encoding.
    fn signed(
        &self,
        tx: TxEip1559,
        memo: Option<&SignatureMemo>,
        worth_keeping: impl FnOnce(&[u8]) -> bool,
    ) -> SignedTx {
        let hash = tx.signature_hash();
        let remembered = memo.and_then(|memo| memo.get(self.address, hash));
        let signature = remembered.unwrap_or_else(|| {
            let (recovery, bytes) = SECP256K1
                .sign_ecdsa_recoverable(&Message::from_digest(hash.0), &self.key)
                .serialize_compact();
            Signature::from_bytes_and_parity(&bytes, i32::from(recovery) & 1 == 1)
        });
        let signed = SignedTx::new(TxEnvelope::Eip1559(tx.into_signed(signature)), self.address);
        if let (Some(memo), None) = (memo, remembered) {
            memo.made(self.address, hash, signature, worth_keeping(&signed.raw));
        }
        signed
    }

    /// The transaction [`sign`](Self::sign) would make, with the next nonce, sent as this
    /// wallet for a chain that trusts the sender ([`Origin::Impersonated`]: no recovery).
    ///
    /// It is signed only where the signature's bytes could change the OP-Stack L1 data fee:
    /// the fee is charged on the FastLZ-compressed size of the encoding, but never on less
    /// than a floor ([`l1_fee_may_depend_on_signature`]). Below the floor (most protocol
    /// calls) the transaction carries an unsigned stand-in ([`SignedTx::impersonated`]) and
    /// pays the floor fee, which a signed one pays too; near or above it (calls with
    /// incompressible calldata, such as Merkle proofs) it is signed, so that it pays
    /// exactly what the signed transaction pays. Either way the run's results are those of
    /// the signed path.
    pub fn impersonate(&mut self, chain_id: u64, req: TxRequest) -> SignedTx {
        let tx = self.take_nonce(chain_id, req);
        self.seal(tx, Origin::Impersonated, None)
    }

    /// `tx` impersonated as [`impersonate`](Self::impersonate) describes.
    fn impersonated(&self, tx: TxEip1559, memo: Option<&SignatureMemo>) -> SignedTx {
        let stand_in = SignedTx::impersonated(tx.clone(), self.address());
        match l1_fee_may_depend_on_signature(&stand_in.raw) {
            false => stand_in,
            // The runs that take signatures from a memo are impersonated counterfactual
            // runs, and these are the only signatures they make: keep every one.
            true => SignedTx {
                origin: Origin::Impersonated,
                ..self.signed(tx, memo, |_| true)
            },
        }
    }
}

/// Bytes of compressed size a real signature's encoding is allowed to exceed its stand-in's
/// by before the L1 data fee could tell them apart. A real signature compresses to the
/// stand-in's size or less (a leading zero byte of `r` or `s` shortens it; a FastLZ match
/// shortens it) except where the different bytes change which matches the prefix finds:
/// in a one-off measurement (2026-12-06, a throwaway test not kept in the repository:
/// 200,000 protocol-sized transactions signed and impersonated, FastLZ lengths compared),
/// the real encoding compressed to 1 byte more in 71, never more than that. 8 leaves a wide
/// margin; `impersonated_transactions_pay_the_signed_ones_l1_fee` and the engine tests in
/// `sim/tests/backends.rs` check the fees match.
const SIGNATURE_SIZE_MARGIN: usize = 8;

/// Whether an encoding with a different signature could pay a different OP-Stack (Fjord)
/// L1 data fee than `stand_in` does: false when `stand_in` with [`SIGNATURE_SIZE_MARGIN`]
/// more incompressible bytes would still be charged the minimum size.
fn l1_fee_may_depend_on_signature(stand_in: &[u8]) -> bool {
    // Bytes no FastLZ match reaches: each differs from the stand-in's and from each other.
    let padding: Vec<u8> = (0..SIGNATURE_SIZE_MARGIN as u8)
        .map(|i| 0xF7 ^ i.wrapping_mul(37))
        .collect();
    let padded = [stand_in, &padding].concat();
    estimate_tx_compressed_size(&padded) > MIN_TX_SIZE_SCALED
}

/// op-revm's floor on the scaled compressed size an L1 data fee is charged on (100 bytes,
/// scaled by 10^6; `MIN_TX_SIZE_SCALED` in op-revm and op-geth).
const MIN_TX_SIZE_SCALED: u64 = 100 * 1_000_000;

/// Derives a valid secp256k1 key from `(seed, name)` by hashing until it lands in range.
fn derive_key(seed: u64, name: &str) -> SecretKey {
    let mut material = Vec::with_capacity(16 + name.len());
    material.extend_from_slice(b"olsim-key");
    material.extend_from_slice(&seed.to_be_bytes());
    material.extend_from_slice(name.as_bytes());
    let mut digest: B256 = keccak256(&material);
    loop {
        // Fails only for zero or a value >= the curve order: about 2^-128 odds.
        if let Ok(key) = SecretKey::from_byte_array(&digest.0) {
            return key;
        }
        digest = keccak256(digest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_depend_on_seed_and_name_only() {
        assert_eq!(
            Wallet::derive(7, "alice").address(),
            Wallet::derive(7, "alice").address()
        );
        assert_ne!(
            Wallet::derive(7, "alice").address(),
            Wallet::derive(8, "alice").address()
        );
        assert_ne!(
            Wallet::derive(7, "alice").address(),
            Wallet::derive(7, "bob").address()
        );
    }

    #[test]
    fn signing_consumes_nonces_and_is_deterministic() {
        let req = TxRequest {
            to: Some(Address::repeat_byte(1)),
            gas_limit: 21_000,
            max_fee_per_gas: 10,
            ..Default::default()
        };
        let mut a = Wallet::derive(1, "a");
        let mut b = Wallet::derive(1, "a");
        let first = a.sign(10, req.clone());
        assert_eq!(first.raw, b.sign(10, req.clone()).raw);
        assert_eq!(a.sign(10, req).nonce(), 1);
        assert_eq!(first.from, a.address());
    }

    /// Impersonation skips signing where the signature cannot change the L1 data fee and
    /// signs where it could; either way the fee is the signed transaction's, and the nonce
    /// moves on as signing does.
    #[test]
    fn impersonated_transactions_pay_the_signed_ones_l1_fee() {
        let req = |words: usize| TxRequest {
            to: Some(Address::repeat_byte(7)),
            data: (0..words as u32)
                .flat_map(|i| keccak256(i.to_be_bytes()).0)
                .collect::<Vec<u8>>()
                .into(),
            gas_limit: 600_000,
            max_fee_per_gas: 2_000_000_000,
            ..Default::default()
        };
        let mut signer = Wallet::derive(3, "a");
        let mut impersonator = Wallet::derive(3, "a");
        for words in [0, 1, 2, 3, 8] {
            let signed = signer.sign(10, req(words));
            let impersonated = impersonator.impersonate(10, req(words));
            assert_eq!(impersonated.origin, Origin::Impersonated);
            assert_eq!(impersonated.nonce(), signed.nonce());
            assert_eq!(impersonated.from, signed.from);
            assert_eq!(
                estimate_tx_compressed_size(&impersonated.raw),
                estimate_tx_compressed_size(&signed.raw),
                "{words} words"
            );
            // Short calls pay the floor and go unsigned; a Merkle-proof-sized one is signed.
            let unsigned = impersonated.raw != signed.raw;
            assert_eq!(unsigned, words < 3, "{words} words");
            if unsigned {
                assert_eq!(impersonated.raw.len(), signed.raw.len());
                assert_ne!(
                    crate::senders::recover(&SignedTx::new(impersonated.envelope, signed.from))
                        .ok(),
                    Some(signer.address()),
                    "a stand-in signs nothing"
                );
            }
        }
    }

    /// libsecp256k1 signs exactly as alloy's k256 signer (RFC 6979, low `s`), and the
    /// address is the one alloy derives from the same key.
    #[test]
    fn signatures_and_addresses_match_alloys_signer() {
        use alloy::network::TxSignerSync;
        use alloy::signers::local::PrivateKeySigner;
        for (i, name) in ["alice", "bob", "carol", "dave"].into_iter().enumerate() {
            let mut wallet = Wallet::derive(i as u64, name);
            let reference = PrivateKeySigner::from_bytes(&B256::from(wallet.key.secret_bytes()))
                .expect("a valid key");
            assert_eq!(wallet.address(), reference.address());
            for nonce in 0..8u64 {
                let req = TxRequest {
                    to: Some(Address::repeat_byte(nonce as u8)),
                    data: Bytes::from(vec![nonce as u8; nonce as usize]),
                    value: U256::from(nonce * 1000),
                    gas_limit: 21_000 + nonce,
                    max_fee_per_gas: 10 + u128::from(nonce),
                    max_priority_fee_per_gas: 1,
                };
                let signed = wallet.sign(10, req.clone());
                let mut tx = req.into_eip1559(10, nonce);
                let expected = reference.sign_transaction_sync(&mut tx).expect("signs");
                let envelope = TxEnvelope::Eip1559(tx.into_signed(expected));
                let expected = SignedTx::new(envelope, reference.address());
                assert_eq!((signed.raw, signed.from), (expected.raw, expected.from));
            }
        }
    }
}
