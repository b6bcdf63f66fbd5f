//! Keys derived from the master seed, and signing of EIP-1559 transactions.
//!
//! Every actor of a run gets its key from `(seed, name)`, so the same scenario produces the
//! same addresses and the same signed bytes on every backend, run after run.

use alloy::consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy::network::TxSignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256, keccak256};

use crate::api::SignedTx;

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

/// A private key derived from the master seed and a stable actor name, with the nonce of
/// the next transaction it signs.
#[derive(Clone, Debug)]
pub struct Wallet {
    signer: PrivateKeySigner,
    next_nonce: u64,
}

impl Wallet {
    /// The wallet of actor `name` under master seed `seed`.
    pub fn derive(seed: u64, name: &str) -> Self {
        Self {
            signer: derive_signer(seed, name),
            next_nonce: 0,
        }
    }

    /// Address of this wallet.
    pub fn address(&self) -> Address {
        self.signer.address()
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
        let mut tx = TxEip1559 {
            chain_id,
            nonce: self.next_nonce,
            gas_limit: req.gas_limit,
            max_fee_per_gas: req.max_fee_per_gas,
            max_priority_fee_per_gas: req.max_priority_fee_per_gas,
            to: req.to.map_or(TxKind::Create, TxKind::Call),
            value: req.value,
            access_list: Default::default(),
            input: req.data,
        };
        let signature = self
            .signer
            .sign_transaction_sync(&mut tx)
            .expect("a local secp256k1 key signs any EIP-1559 transaction");
        self.next_nonce += 1;
        SignedTx::new(
            TxEnvelope::Eip1559(tx.into_signed(signature)),
            self.address(),
        )
    }
}

/// Derives a valid secp256k1 key from `(seed, name)` by hashing until it lands in range.
fn derive_signer(seed: u64, name: &str) -> PrivateKeySigner {
    let mut material = Vec::with_capacity(16 + name.len());
    material.extend_from_slice(b"olsim-key");
    material.extend_from_slice(&seed.to_be_bytes());
    material.extend_from_slice(name.as_bytes());
    let mut digest: B256 = keccak256(&material);
    loop {
        // Fails only for zero or a value >= the curve order: about 2^-128 odds.
        if let Ok(signer) = PrivateKeySigner::from_bytes(&digest) {
            return signer;
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
}
