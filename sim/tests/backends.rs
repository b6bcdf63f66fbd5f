//! The same scenario on either chain backend gives the same result: the embedded OP-Stack
//! chain and a real anvil node agree on every block, fee (the L1 data fee included) and
//! outcome, so the reports' result digests are equal. Only the whole-state digest, which
//! anvil does not give, differs. On the embedded chain, impersonated transactions
//! (`run.impersonate`: no signing, no sender recovery) give the signed run's result and its
//! whole final state.

use std::path::Path;

use olsim::engine::{self, RunOptions};
use olsim::scenario::{ChainBackend, Scenario, Settlement};

fn on(name: &str, chain: ChainBackend) -> olsim::report::Report {
    run(name, |s| s.run.chain = chain)
}

/// Runs shipped scenario `name` after `change`.
fn run(name: &str, change: impl FnOnce(&mut Scenario)) -> olsim::report::Report {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(name);
    let mut s = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    change(&mut s);
    engine::run(&s, &RunOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn same_result_signed_and_impersonated(name: &str, settlement: Settlement) {
    let signed = run(name, |s| s.tokenomics.settlement = settlement);
    let impersonated = run(name, |s| {
        s.tokenomics.settlement = settlement;
        s.run.impersonate = true;
    });
    assert_eq!(
        (
            signed.scenario.transactions.as_str(),
            impersonated.scenario.transactions.as_str()
        ),
        ("signed", "impersonated")
    );
    assert_eq!(signed.result, impersonated.result, "{name}: results differ");
    assert_eq!(signed.digest, impersonated.digest, "{name}");
    assert_eq!(
        signed.chain_state_digest, impersonated.chain_state_digest,
        "{name}: the final EVM states differ"
    );
    assert!(signed.result.chain.transactions > 0);
}

#[test]
fn smoke_gives_the_same_result_and_state_signed_and_impersonated() {
    same_result_signed_and_impersonated("smoke.toml", Settlement::Push);
}

/// Sybil identities and many reviews: hundreds of transactions, some above the L1 fee's
/// size floor (the contributions), which impersonation signs after all.
#[test]
fn an_attack_gives_the_same_result_and_state_signed_and_impersonated() {
    same_result_signed_and_impersonated("attack-sybil.toml", Settlement::Push);
}

/// Merkle settlement's claims carry proofs: far above the size floor, every one signed.
#[test]
fn merkle_claims_give_the_same_result_and_state_signed_and_impersonated() {
    same_result_signed_and_impersonated("smoke.toml", Settlement::Merkle);
}

fn same_result_on_both_backends(name: &str) {
    let embedded = on(name, ChainBackend::Embedded);
    let anvil = on(name, ChainBackend::Anvil);
    assert_eq!(anvil.scenario.backend, "anvil");
    assert_eq!(
        embedded.result.chain, anvil.result.chain,
        "{name}: chain results differ"
    );
    assert_eq!(embedded.result, anvil.result, "{name}: results differ");
    assert_eq!(embedded.digest, anvil.digest, "{name}");
    assert!(embedded.result.chain.gas_fees_eth > 0.0);
    assert!(embedded.chain_state_digest.is_some());
    assert_eq!(anvil.chain_state_digest, None);
}

#[test]
fn smoke_gives_the_same_result_digest_on_embedded_and_anvil() {
    same_result_on_both_backends("smoke.toml");
}

#[test]
fn an_attack_gives_the_same_result_digest_on_embedded_and_anvil() {
    same_result_on_both_backends("attack-governance-capture.toml");
}
