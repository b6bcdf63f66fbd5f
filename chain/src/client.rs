//! Typed contract calls over any [`Chain`]: encode with alloy's `sol!` types, price the
//! transaction from the chain's base fee, sign with a [`Wallet`], send, and decode.

use alloy_primitives::{Address, Bytes, U256};
use alloy_sol_types::SolCall;

use crate::abi::describe_call;
use crate::api::{CallRequest, Chain, Receipt, SignedTx};
use crate::error::ChainError;
use crate::wallet::{TxRequest, Wallet};

/// Tip per gas every olsim actor offers the sequencer (0.001 gwei, a typical OP figure).
pub const PRIORITY_FEE: u128 = 1_000_000;

/// Fee cap that survives the base fee doubling before inclusion.
fn max_fee<C: Chain + ?Sized>(chain: &mut C) -> Result<u128, ChainError> {
    Ok(2 * u128::from(chain.next_base_fee()?) + PRIORITY_FEE)
}

/// Signs a call to `to` with an explicit gas limit, without sending it: the building block
/// of batches, whose later transactions cannot be estimated before earlier ones run.
pub fn prepare<C: Chain + ?Sized, T: SolCall>(
    chain: &mut C,
    wallet: &mut Wallet,
    to: Address,
    call: &T,
    gas_limit: u64,
) -> Result<SignedTx, ChainError> {
    let req = TxRequest {
        to: Some(to),
        data: call.abi_encode().into(),
        value: U256::ZERO,
        gas_limit,
        max_fee_per_gas: max_fee(chain)?,
        max_priority_fee_per_gas: PRIORITY_FEE,
    };
    Ok(wallet.sign(chain.chain_id(), req))
}

/// Estimates, signs and sends `data` from `wallet`; on failure the wallet's nonce is
/// restored so its next transaction is valid.
pub fn send_raw<C: Chain + ?Sized>(
    chain: &mut C,
    wallet: &mut Wallet,
    to: Option<Address>,
    data: Bytes,
    value: U256,
) -> Result<Receipt, ChainError> {
    let gas_limit = chain.estimate_gas(&CallRequest {
        from: wallet.address(),
        to,
        data: data.clone(),
        value,
    })?;
    let req = TxRequest {
        to,
        data,
        value,
        gas_limit,
        max_fee_per_gas: max_fee(chain)?,
        max_priority_fee_per_gas: PRIORITY_FEE,
    };
    let nonce = wallet.nonce();
    let result = chain.send(wallet.sign(chain.chain_id(), req));
    if result.is_err() {
        wallet.set_nonce(nonce);
    }
    result
}

/// Sends a contract call from `wallet` and returns the receipt.
pub fn transact<C: Chain + ?Sized, T: SolCall>(
    chain: &mut C,
    wallet: &mut Wallet,
    to: Address,
    call: &T,
) -> Result<Receipt, ChainError> {
    send_raw(
        chain,
        wallet,
        Some(to),
        call.abi_encode().into(),
        U256::ZERO,
    )
}

/// Deploys `bytecode` with ABI-encoded constructor arguments and returns the new address.
pub fn deploy<C: Chain + ?Sized>(
    chain: &mut C,
    wallet: &mut Wallet,
    bytecode: &[u8],
    constructor_args: &[u8],
) -> Result<Address, ChainError> {
    let init_code = [bytecode, constructor_args].concat();
    let receipt = send_raw(chain, wallet, None, init_code.into(), U256::ZERO)?;
    receipt.contract_address.ok_or_else(|| ChainError::Backend {
        backend: chain.backend(),
        message: format!("deployment {} created no contract", receipt.tx_hash),
    })
}

/// Calls a view function and decodes its return value.
pub fn view<C: Chain + ?Sized, T: SolCall>(
    chain: &mut C,
    to: Address,
    call: &T,
) -> Result<T::Return, ChainError> {
    let data: Bytes = call.abi_encode().into();
    let output = chain.call(&CallRequest {
        from: Address::ZERO,
        to: Some(to),
        data: data.clone(),
        value: U256::ZERO,
    })?;
    T::abi_decode_returns(&output).map_err(|e| ChainError::Decode {
        call: describe_call(false, &data),
        reason: e.to_string(),
    })
}
