//! The same scenario on either chain backend gives the same result: the embedded OP-Stack
//! chain and a real anvil node agree on every block, fee (the L1 data fee included) and
//! outcome, so the reports' result digests are equal. Only the whole-state digest, which
//! anvil does not give, differs.

use std::path::Path;

use olsim::engine::{self, RunOptions};
use olsim::scenario::{ChainBackend, Scenario};

fn on(name: &str, chain: ChainBackend) -> olsim::report::Report {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(name);
    let mut s = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    s.run.chain = chain;
    engine::run(&s, &RunOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
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
