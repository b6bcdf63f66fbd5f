//! Turns raw calldata and revert data into words: `DatanetRegistry.contribute(1, 0xab…, 10,
//! 100000000000000000000)` and `StakeTooLow(1000, 100000)` instead of hex.
//!
//! Built once from the ABIs of all protocol contracts ([`crate::contracts::all_abis`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::OnceLock;

use alloy::dyn_abi::{DynSolValue, JsonAbiExt};
use alloy::json_abi::{Error as AbiError, Function};
use alloy_primitives::{Selector, hex};
use alloy_sol_types::{Panic, Revert, SolError};

use crate::contracts::all_abis;

/// Selector-indexed functions and errors of every protocol contract.
struct Registry {
    functions: BTreeMap<Selector, Vec<(&'static str, Function)>>,
    errors: BTreeMap<Selector, AbiError>,
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut functions: BTreeMap<Selector, Vec<(&'static str, Function)>> = BTreeMap::new();
        let mut errors = BTreeMap::new();
        for (contract, abi) in all_abis() {
            for function in abi.functions() {
                functions
                    .entry(function.selector())
                    .or_default()
                    .push((contract, function.clone()));
            }
            for error in abi.errors() {
                errors
                    .entry(error.selector())
                    .or_insert_with(|| error.clone());
            }
        }
        Registry { functions, errors }
    })
}

/// Describes calldata as `Contract.function(args)`; creations and unknown selectors are
/// described by their size and selector.
pub fn describe_call(is_create: bool, data: &[u8]) -> String {
    if is_create {
        return format!("contract creation ({} bytes of init code)", data.len());
    }
    if data.is_empty() {
        return "plain transfer".to_string();
    }
    let Some(selector) = data.get(..4).map(Selector::from_slice) else {
        return format!("call with {} bytes of data", data.len());
    };
    let Some(candidates) = registry().functions.get(&selector) else {
        return format!("call to unknown function {selector}");
    };
    let (contract, function) = &candidates[0];
    // Functions such as `initGovernance` exist on several contracts: name none of them then.
    let prefix = if candidates.len() == 1 {
        format!("{contract}.")
    } else {
        String::new()
    };
    match function.abi_decode_input(&data[4..]) {
        Ok(values) => format!("{prefix}{}({})", function.name, format_values(&values)),
        Err(_) => format!("{prefix}{}(<malformed arguments>)", function.name),
    }
}

/// Decodes revert data: `Error(string)`, `Panic(code)` or a protocol custom error.
pub fn decode_revert(data: &[u8]) -> String {
    if data.is_empty() {
        return "no revert data (a bare revert, or an out-of-gas inside a call)".to_string();
    }
    if let Ok(revert) = Revert::abi_decode(data) {
        return format!("Error: {}", revert.reason);
    }
    if let Ok(panic) = Panic::abi_decode(data) {
        return format!("Panic({:#x})", panic.code);
    }
    let Some(selector) = data.get(..4).map(Selector::from_slice) else {
        return format!("malformed revert data 0x{}", hex::encode(data));
    };
    match registry().errors.get(&selector) {
        Some(error) => match error.abi_decode_input(&data[4..]) {
            Ok(values) => format!("{}({})", error.name, format_values(&values)),
            Err(_) => format!("{}(<malformed arguments>)", error.name),
        },
        None => format!("unknown error 0x{}", hex::encode(data)),
    }
}

fn format_values(values: &[DynSolValue]) -> String {
    let mut out = String::new();
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        format_value(value, &mut out);
    }
    out
}

fn format_value(value: &DynSolValue, out: &mut String) {
    match value {
        DynSolValue::Bool(b) => write!(out, "{b}").unwrap(),
        DynSolValue::Int(i, _) => write!(out, "{i}").unwrap(),
        DynSolValue::Uint(u, _) => write!(out, "{u}").unwrap(),
        DynSolValue::Address(a) => write!(out, "{a}").unwrap(),
        DynSolValue::FixedBytes(word, size) => short_hex(&word[..*size], out),
        DynSolValue::Bytes(bytes) => short_hex(bytes, out),
        DynSolValue::String(s) => write!(out, "{s:?}").unwrap(),
        DynSolValue::Array(items) | DynSolValue::FixedArray(items) => {
            write!(out, "[{}]", format_values(items)).unwrap()
        }
        DynSolValue::Tuple(items) => write!(out, "({})", format_values(items)).unwrap(),
        other => write!(out, "{other:?}").unwrap(),
    }
}

/// Hex, shortened in the middle when long, so a message stays on one line.
fn short_hex(bytes: &[u8], out: &mut String) {
    if bytes.len() <= 12 {
        write!(out, "0x{}", hex::encode(bytes)).unwrap();
    } else {
        let head = hex::encode(&bytes[..4]);
        let tail = hex::encode(&bytes[bytes.len() - 2..]);
        write!(out, "0x{head}…{tail}").unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contracts::{DatanetRegistry, OpenToken};
    use alloy_primitives::{Address, U256};
    use alloy_sol_types::SolCall;

    #[test]
    fn describes_protocol_calls_with_arguments() {
        let data = OpenToken::transferCall {
            to: Address::repeat_byte(0x11),
            amount: U256::from(5),
        }
        .abi_encode();
        let text = describe_call(false, &data);
        assert!(text.starts_with("OpenToken.transfer(0x1111"), "{text}");
        assert!(text.ends_with(", 5)"), "{text}");
    }

    #[test]
    fn decodes_custom_errors_and_strings() {
        let data = DatanetRegistry::StakeTooLow {
            stake: U256::from(1),
            minStake: U256::from(100),
        }
        .abi_encode();
        assert_eq!(decode_revert(&data), "StakeTooLow(1, 100)");
        let data = Revert::from("nope").abi_encode();
        assert_eq!(decode_revert(&data), "Error: nope");
        assert!(decode_revert(&[0xde, 0xad, 0xbe, 0xef]).starts_with("unknown error"));
    }
}
