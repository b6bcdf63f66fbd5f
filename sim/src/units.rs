//! OPEN amounts, exact from the scenario file to the chain.
//!
//! A scenario writes amounts as decimal numbers of whole OPEN (`min_stake = 0.0000014`); the
//! chain keeps integers of token wei (10^-18 OPEN). Every conversion goes through this module:
//! a written amount is parsed from its shortest round-trip decimal form, never scaled as a
//! binary `f64`, so `0.1` OPEN is exactly 10^17 wei and `1e-7` OPEN is 10^11 wei. An amount
//! with more than 18 decimals, or a price or stake that would be zero on chain, is refused
//! (the validator reports it at its file position). Amounts read back from the chain become
//! `f64` only for the report.

use alloy_primitives::U256;

/// Decimals of OPEN amounts on chain.
pub const OPEN_DECIMALS: u32 = 18;
/// Decimals of the USD price on chain (`openPriceUsdE8`).
pub const USD_DECIMALS: u32 = 8;

/// One whole OPEN in token wei.
pub fn one_open() -> U256 {
    U256::from(10u64).pow(U256::from(OPEN_DECIMALS))
}

/// `"got {v}; allowed: {allowed}"`: the house style of a value error.
pub fn got(v: impl std::fmt::Display, allowed: &str) -> String {
    format!("got {v}; allowed: {allowed}")
}

/// A decimal number as an integer of `10^-decimals` units, exactly as written (`0.1` OPEN is
/// 10^17 wei): the number's shortest round-trip decimal form is parsed, never its binary
/// approximation scaled.
pub fn to_fixed(v: f64, decimals: u32) -> Result<U256, String> {
    let allowed = format!("a finite number >= 0 with at most {decimals} decimals");
    if !v.is_finite() || v < 0.0 {
        return Err(got(v, &allowed));
    }
    // `Display` of an f64 is its shortest round-trip form and never uses an exponent.
    let text = format!("{v}");
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    if frac.len() > decimals as usize {
        return Err(got(v, &allowed));
    }
    let digits = format!("{int}{frac:0<width$}", width = decimals as usize);
    U256::from_str_radix(&digits, 10).map_err(|_| got(v, &allowed))
}

/// The inverse of [`to_fixed`] (nearest `f64`).
pub fn from_fixed(v: U256, decimals: u32) -> f64 {
    let digits = format!("{v:0>width$}", width = decimals as usize + 1);
    let (int, frac) = digits.split_at(digits.len() - decimals as usize);
    format!("{int}.{frac}").parse().unwrap_or(f64::NAN)
}

/// A written OPEN amount (`>= 0`, at most 18 decimals) in token wei.
pub fn open_wei(v: f64) -> Result<U256, String> {
    to_fixed(v, OPEN_DECIMALS).map_err(|e| format!("{e} (OPEN)"))
}

/// A written OPEN amount that must be positive on chain (a price, a stake), in token wei.
pub fn positive_open(v: f64) -> Result<U256, String> {
    match open_wei(v) {
        Ok(w) if !w.is_zero() => Ok(w),
        _ => Err(got(v, "an amount of OPEN > 0 with at most 18 decimals")),
    }
}

/// Token wei as OPEN, for the report (nearest `f64`; `f64::MAX` past `u128`).
pub fn to_open(wei: U256) -> f64 {
    u128::try_from(wei).map_or(f64::MAX, |w| from_fixed(U256::from(w), OPEN_DECIMALS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_keep_all_eighteen_decimals() {
        assert_eq!(
            open_wei(0.0000014).unwrap(),
            U256::from(1_400_000_000_000u64)
        );
        assert_eq!(open_wei(1e-7).unwrap(), U256::from(100_000_000_000u64));
        assert_eq!(open_wei(0.1).unwrap(), one_open() / U256::from(10));
        assert_eq!(open_wei(1e-18).unwrap(), U256::from(1));
        assert!(open_wei(1e-19).is_err());
        assert!(open_wei(-1.0).is_err());
        assert!(positive_open(0.0).is_err());
        assert_eq!(to_open(open_wei(12_345.678).unwrap()), 12_345.678);
    }
}
