//! The scripted protocol workload on the embedded chain: every contract is exercised, the
//! books balance, OPEN is conserved, fees are charged, and the run is deterministic.

use alloy_primitives::U256;
use olsim_chain::embedded::{BASE_FEE_VAULT, L1_FEE_VAULT};
use olsim_chain::protocol::total_supply;
use olsim_chain::workload::{self, WorkloadConfig};
use olsim_chain::{Chain, EmbeddedChain, EmbeddedConfig};

fn run(seed: u64) -> (EmbeddedChain, workload::WorkloadRun) {
    let mut chain = EmbeddedChain::new(EmbeddedConfig::default());
    let config = WorkloadConfig {
        seed,
        ..WorkloadConfig::default()
    };
    let run = workload::run(&mut chain, &config).unwrap_or_else(|e| panic!("workload failed: {e}"));
    (chain, run)
}

#[test]
fn workload_conserves_supply_and_balances_books() {
    let (mut chain, run) = run(42);
    assert_eq!(run.ledger.total_supply, total_supply());
    assert_eq!(run.open_accounted(&mut chain).unwrap(), total_supply());
    run.ledger.check_books().unwrap();
    assert!(
        run.ledger.treasury > U256::ZERO,
        "slashes and fees reach the treasury"
    );
    // Every contract emitted events.
    for (name, address) in run.deployment.contracts() {
        assert!(
            run.receipts()
                .any(|r| r.logs.iter().any(|l| l.address == address)),
            "{name} emitted no event"
        );
    }
    // Deliberate failures were refused and recorded.
    assert!(run.steps.iter().filter(|s| s.outcome.is_err()).count() >= 5);
}

#[test]
fn every_transaction_pays_base_fee_and_l1_fee() {
    let (mut chain, run) = run(42);
    let receipts: Vec<_> = run.receipts().collect();
    assert!(
        receipts
            .iter()
            .all(|r| r.l1_fee.is_some_and(|fee| fee > U256::ZERO))
    );
    let l1_total: U256 = receipts.iter().map(|r| r.l1_fee.unwrap()).sum();
    // Deployment transactions are not in `steps`, so the vault holds at least the steps' fees.
    assert!(chain.balance(L1_FEE_VAULT).unwrap() >= l1_total);
    assert!(chain.balance(BASE_FEE_VAULT).unwrap() > U256::ZERO);
}

#[test]
fn same_seed_same_digest_other_seed_other_digest() {
    let (a, _) = run(7);
    let (b, _) = run(7);
    let (c, _) = run(8);
    assert_eq!(a.state_digest(), b.state_digest());
    assert_ne!(a.state_digest(), c.state_digest());
}

#[test]
fn sender_pays_exactly_execution_plus_l1_fee_of_its_own_transactions() {
    use alloy_sol_types::SolConstructor;
    use olsim_chain::Wallet;
    use olsim_chain::client::{send_raw, transact};
    use olsim_chain::contracts::OpenToken;

    let mut chain = EmbeddedChain::new(EmbeddedConfig::default());
    let mut alice = Wallet::derive(3, "alice");
    let start = U256::from(10u64).pow(U256::from(18));
    chain.deposit(alice.address(), start).unwrap();
    let mut init = OpenToken::BYTECODE.to_vec();
    init.extend(
        OpenToken::constructorCall {
            genesisHolder: alice.address(),
        }
        .abi_encode(),
    );
    let deploy = send_raw(&mut chain, &mut alice, None, init.into(), U256::ZERO).unwrap();
    let token = deploy.contract_address.unwrap();
    // Transfers with calldata of different compressibility get different L1 fees.
    let mut receipts = vec![deploy];
    for to in [
        alloy_primitives::Address::repeat_byte(0x11),
        Wallet::derive(3, "bob").address(),
    ] {
        let call = OpenToken::transferCall {
            to,
            amount: U256::from(12_345_678_901u64),
        };
        receipts.push(transact(&mut chain, &mut alice, token, &call).unwrap());
    }
    let l1: U256 = receipts.iter().map(|r| r.l1_fee.unwrap()).sum();
    let exec: U256 = receipts.iter().map(|r| r.execution_fee()).sum();
    assert_eq!(
        chain.balance(L1_FEE_VAULT).unwrap(),
        l1,
        "L1 vault holds exactly the L1 fees"
    );
    assert_eq!(chain.balance(alice.address()).unwrap(), start - l1 - exec);
}
