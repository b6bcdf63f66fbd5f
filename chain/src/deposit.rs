//! OP-Stack deposit transactions (type 0x7E): ETH bridged from "L1", shared by both backends
//! so the same deposit has the same bytes and hash on each.

use alloy::rlp::{BufMut, Encodable, Header};
use alloy_primitives::{Address, B256, Bytes, U256, address, keccak256};

/// Sender that deposits appear to come from on L2 (an L1 bridge user).
pub const L1_DEPOSITOR: Address = address!("0x0000000000000000000000000000000000011111");

/// The EIP-2718 type byte of deposits.
pub const DEPOSIT_TX_TYPE: u8 = 0x7E;

/// Gas limit every olsim deposit carries.
pub const DEPOSIT_GAS: u64 = 100_000;

/// A deposit of `amount` wei from [`L1_DEPOSITOR`] to `to`, minted on L2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deposit {
    /// Unique id of the deposit (on a real chain: derived from the L1 log that caused it).
    pub source_hash: B256,
    /// Recipient.
    pub to: Address,
    /// Wei minted and sent to `to`.
    pub amount: u128,
}

impl Deposit {
    /// The `n`-th deposit of a run; `None` when `amount` exceeds what a deposit can mint.
    pub fn nth(n: u64, to: Address, amount: U256) -> Option<Self> {
        let source_hash = keccak256([b"olsim-deposit".as_slice(), &n.to_be_bytes()].concat());
        Some(Self {
            source_hash,
            to,
            amount: amount.try_into().ok()?,
        })
    }

    /// What the deposit does, in words, for errors.
    pub fn describe(&self) -> String {
        format!("deposit of {} wei to {}", self.amount, self.to)
    }

    /// `0x7E || rlp([sourceHash, from, to, mint, value, gas, isSystemTx, data])`.
    pub fn encode(&self) -> Bytes {
        let value = U256::from(self.amount);
        let data = Bytes::new();
        let fields: [&dyn Encodable; 8] = [
            &self.source_hash,
            &L1_DEPOSITOR,
            &self.to,
            &self.amount,
            &value,
            &DEPOSIT_GAS,
            &false,
            &data,
        ];
        let payload_length: usize = fields.iter().map(|f| f.length()).sum();
        let mut out = Vec::with_capacity(payload_length + 4);
        out.put_u8(DEPOSIT_TX_TYPE);
        Header {
            list: true,
            payload_length,
        }
        .encode(&mut out);
        for field in fields {
            field.encode(&mut out);
        }
        out.into()
    }
}
