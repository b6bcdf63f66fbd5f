//! Differential test: the scripted workload, which touches every contract, runs on the
//! embedded chain and on a real anvil node with the same signed transactions. Both must give
//! the same receipts and the same final state.
//!
//! Compared field by field:
//! - every step: success or failure alike; tx hash, block, gas used, effective gas price,
//!   created address and logs for successes; the decoded revert reason for failures;
//! - every protocol contract: code, and every non-zero storage slot the embedded chain holds;
//! - ETH of every actor and of the base-fee, L1-fee and sequencer vaults;
//! - the head block (number, timestamp, base fee).
//!
//! The L1 data fee is compared in the receipts (anvil's is read back from the L1-fee vault,
//! see `olsim_chain::anvil`), and through the vault and the senders' ETH balances.
//!
//! Modelled differently, compared on their own terms:
//! - Storage slots anvil might hold beyond the embedded chain's cannot be enumerated over
//!   JSON-RPC; the contracts' own views (the `Ledger`) are compared as well to cover them.

use olsim_chain::embedded::{BASE_FEE_VAULT, L1_FEE_VAULT, SEQUENCER_FEE_VAULT};
use olsim_chain::workload::{self, WorkloadConfig};
use olsim_chain::{AnvilChain, AnvilConfig, Chain, EmbeddedChain, EmbeddedConfig};

#[test]
fn embedded_and_anvil_agree_on_the_whole_workload() {
    let config = EmbeddedConfig::default();
    let mut embedded = EmbeddedChain::new(config.clone());
    let mut anvil =
        AnvilChain::start(AnvilConfig::matching(&config)).unwrap_or_else(|e| panic!("{e}"));
    let workload = WorkloadConfig::default();
    let a = workload::run(&mut embedded, &workload).unwrap_or_else(|e| panic!("embedded: {e}"));
    let b = workload::run(&mut anvil, &workload).unwrap_or_else(|e| panic!("anvil: {e}"));

    assert_eq!(
        a.deployment, b.deployment,
        "same deployer nonces give the same addresses"
    );
    assert_eq!(a.steps.len(), b.steps.len());
    for (x, y) in a.steps.iter().zip(&b.steps) {
        assert_eq!(x.label, y.label);
        match (&x.outcome, &y.outcome) {
            (Ok(rx), Ok(ry)) => {
                assert!(rx.l1_fee.is_some(), "embedded receipts report the L1 fee");
                assert_eq!(rx, ry, "step `{}` differs", x.label);
            }
            (Err(ex), Err(ey)) => assert_eq!(
                ex.revert_reason(),
                ey.revert_reason(),
                "step `{}` failed differently: {ex} vs {ey}",
                x.label
            ),
            (ox, oy) => panic!("step `{}`: embedded {ox:?}, anvil {oy:?}", x.label),
        }
    }

    for (name, address) in a.deployment.contracts() {
        assert_eq!(
            embedded.code(address).unwrap(),
            anvil.code(address).unwrap(),
            "{name} code"
        );
        let slots = embedded.storage_entries(address);
        assert!(!slots.is_empty(), "{name} has storage");
        for (slot, value) in slots {
            assert_eq!(
                anvil.storage(address, slot).unwrap(),
                value,
                "{name} slot {slot:#x}"
            );
        }
    }
    assert_eq!(a.ledger, b.ledger, "contract books");

    let mut accounts = a.holders.clone();
    accounts.extend([BASE_FEE_VAULT, L1_FEE_VAULT, SEQUENCER_FEE_VAULT]);
    let differing: Vec<String> = accounts
        .into_iter()
        .filter_map(|account| {
            let (x, y) = (
                embedded.balance(account).unwrap(),
                anvil.balance(account).unwrap(),
            );
            (x != y).then(|| format!("{account}: embedded {x}, anvil {y}"))
        })
        .collect();
    assert!(
        differing.is_empty(),
        "ETH balances differ:\n{}",
        differing.join("\n")
    );
    assert_eq!(
        embedded.head().unwrap(),
        anvil.head().unwrap(),
        "head block"
    );
}
