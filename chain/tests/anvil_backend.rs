//! The anvil backend against a real anvil node, and against the embedded chain on the same
//! transactions. These tests never skip: without anvil they fail with the message that says
//! to run `scripts/setup`.

use std::time::{Duration, Instant};

use alloy_primitives::{Address, Bytes, U256};
use alloy_sol_types::{SolCall, SolConstructor, SolEvent};
use olsim_chain::contracts::OpenToken;
use olsim_chain::deposit::L1_DEPOSITOR;
use olsim_chain::{
    AnvilChain, AnvilConfig, CallRequest, Chain, ChainError, EmbeddedChain, EmbeddedConfig,
    Receipt, SignedTx, TxRequest, Wallet,
};

const ETH: u128 = 1_000_000_000_000_000_000;
const TIP: u128 = 1_000_000;

fn anvil() -> AnvilChain {
    AnvilChain::start(AnvilConfig::default()).unwrap_or_else(|e| panic!("{e}"))
}

fn sign(
    chain: &mut dyn Chain,
    wallet: &mut Wallet,
    to: Option<Address>,
    data: Vec<u8>,
    gas: u64,
) -> SignedTx {
    let max_fee = 2 * u128::from(chain.next_base_fee().expect("base fee")) + TIP;
    wallet.sign(
        chain.chain_id(),
        TxRequest {
            to,
            data: data.into(),
            value: U256::ZERO,
            gas_limit: gas,
            max_fee_per_gas: max_fee,
            max_priority_fee_per_gas: TIP,
        },
    )
}

/// Funds a wallet and deploys OpenToken with it as genesis holder.
fn deploy_token(chain: &mut dyn Chain, holder: &mut Wallet) -> (Address, Receipt) {
    chain
        .deposit(holder.address(), U256::from(10 * ETH))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut init = OpenToken::BYTECODE.to_vec();
    init.extend(
        OpenToken::constructorCall {
            genesisHolder: holder.address(),
        }
        .abi_encode(),
    );
    let tx = sign(chain, holder, None, init, 3_000_000);
    let receipt = chain.send(tx).unwrap_or_else(|e| panic!("{e}"));
    let token = receipt
        .contract_address
        .expect("a creation has a contract address");
    (token, receipt)
}

fn transfer(
    chain: &mut dyn Chain,
    from: &mut Wallet,
    token: Address,
    to: Address,
    amount: u128,
) -> SignedTx {
    let data = OpenToken::transferCall {
        to,
        amount: U256::from(amount),
    }
    .abi_encode();
    sign(chain, from, Some(token), data, 100_000)
}

fn token_balance(chain: &mut dyn Chain, token: Address, who: Address) -> U256 {
    let out = chain
        .call(&CallRequest {
            from: who,
            to: Some(token),
            data: OpenToken::balanceOfCall(who).abi_encode().into(),
            value: U256::ZERO,
        })
        .unwrap_or_else(|e| panic!("{e}"));
    OpenToken::balanceOfCall::abi_decode_returns(&out).expect("balanceOf returns a uint256")
}

#[test]
fn starts_with_the_configured_chain_id_and_genesis() {
    let config = AnvilConfig::default();
    let mut chain = anvil();
    assert_eq!(chain.backend(), "anvil");
    assert_eq!(chain.chain_id(), config.chain_id);
    let head = chain.head().unwrap();
    assert_eq!(head.number, 0);
    assert_eq!(head.timestamp, config.genesis_timestamp);
    assert_eq!(head.base_fee, config.genesis_base_fee);
    assert_eq!(head.gas_limit, config.block_gas_limit);
    let block = chain.mine().unwrap();
    assert_eq!(block.number, 1);
    assert_eq!(
        block.timestamp,
        config.genesis_timestamp + config.block_time
    );
}

#[test]
fn deposit_funds_a_wallet() {
    let mut chain = anvil();
    let who = Wallet::derive(1, "alice").address();
    chain.deposit(who, U256::from(3 * ETH)).unwrap();
    assert_eq!(chain.balance(who).unwrap(), U256::from(3 * ETH));
    let head = chain.head().unwrap();
    assert_eq!((head.number, head.tx_count), (1, 1));
}

#[test]
fn deploy_and_transfer_match_the_embedded_chain() {
    let mut embedded = EmbeddedChain::new(EmbeddedConfig::default());
    let mut anvil = anvil();
    let mut outcomes = Vec::new();
    for chain in [
        &mut embedded as &mut dyn Chain,
        &mut anvil as &mut dyn Chain,
    ] {
        let mut holder = Wallet::derive(7, "holder");
        let bob = Wallet::derive(7, "bob").address();
        let (token, deploy) = deploy_token(chain, &mut holder);
        let tx = transfer(chain, &mut holder, token, bob, 5 * ETH);
        let receipt = chain.send(tx).unwrap_or_else(|e| panic!("{e}"));
        let event: OpenToken::Transfer = receipt.event(token).unwrap();
        assert_eq!((event.from, event.to), (holder.address(), bob));
        assert_eq!(event.value, U256::from(5 * ETH));
        assert_eq!(token_balance(chain, token, bob), U256::from(5 * ETH));
        let eth_left = chain.balance(holder.address()).unwrap();
        let head = chain.head().unwrap();
        outcomes.push((deploy, receipt, eth_left, head));
    }
    let (e, a) = (&outcomes[0], &outcomes[1]);
    for (left, right) in [(&e.0, &a.0), (&e.1, &a.1)] {
        assert_eq!(left.gas_used, right.gas_used, "gas used");
        assert_eq!(left.logs, right.logs, "logs");
        assert_eq!(left.tx_hash, right.tx_hash, "same signed bytes");
        assert_eq!(left.block_number, right.block_number);
        assert_eq!(left.effective_gas_price, right.effective_gas_price);
        assert_eq!(left.contract_address, right.contract_address);
    }
    eprintln!(
        "deploy gas {} / transfer gas {}; l1 fee embedded {:?} anvil {:?}; ETH left embedded {} anvil {}",
        e.0.gas_used, e.1.gas_used, e.1.l1_fee, a.1.l1_fee, e.2, a.2
    );
    assert_eq!(e.3, a.3, "head blocks");
    assert!(e.1.l1_fee.is_some_and(|fee| fee > U256::ZERO));
    assert_eq!(a.1.l1_fee, e.1.l1_fee, "l1 fee");
    assert_eq!(e.2, a.2, "ETH left to the holder after gas and L1 fees");
}

#[test]
fn a_transfer_over_balance_reverts_and_changes_nothing() {
    let mut chain = anvil();
    let mut holder = Wallet::derive(3, "holder");
    let mut poor = Wallet::derive(3, "poor");
    let (token, _) = deploy_token(&mut chain, &mut holder);
    chain.deposit(poor.address(), U256::from(ETH)).unwrap();
    let nonce = chain.nonce(poor.address()).unwrap();
    let eth = chain.balance(poor.address()).unwrap();
    let tx = transfer(&mut chain, &mut poor, token, holder.address(), 1);
    let error = chain.send(tx).unwrap_err();
    let reason = error
        .revert_reason()
        .unwrap_or_else(|| panic!("not a revert: {error}"));
    assert!(reason.starts_with("InsufficientBalance("), "{reason}");
    assert!(error.to_string().contains("OpenToken.transfer("), "{error}");
    assert_eq!(chain.nonce(poor.address()).unwrap(), nonce);
    assert_eq!(chain.balance(poor.address()).unwrap(), eth);
    assert_eq!(token_balance(&mut chain, token, poor.address()), U256::ZERO);
    // The same check through estimate_gas.
    let estimate = chain.estimate_gas(&CallRequest {
        from: poor.address(),
        to: Some(token),
        data: OpenToken::transferCall {
            to: holder.address(),
            amount: U256::from(1),
        }
        .abi_encode()
        .into(),
        value: U256::ZERO,
    });
    let error = estimate.unwrap_err();
    assert!(
        error
            .revert_reason()
            .is_some_and(|r| r.starts_with("InsufficientBalance(")),
        "{error}"
    );
}

#[test]
fn a_batch_drops_the_revert_and_refuses_the_gapped_nonce() {
    let mut anvil = anvil();
    let mut embedded = EmbeddedChain::new(EmbeddedConfig::default());
    let mut digests = Vec::new();
    for chain in [
        &mut embedded as &mut dyn Chain,
        &mut anvil as &mut dyn Chain,
    ] {
        let mut holder = Wallet::derive(4, "holder");
        let bob = Wallet::derive(4, "bob").address();
        let (token, _) = deploy_token(chain, &mut holder);
        let block_before = chain.head().unwrap().number;
        let ok = transfer(chain, &mut holder, token, bob, 10);
        let too_much = transfer(chain, &mut holder, token, bob, 2_000_000_000 * ETH);
        let next = transfer(chain, &mut holder, token, bob, 20);
        let results = chain.send_batch(vec![ok, too_much, next]);
        assert!(results[0].is_ok(), "{:?}", results[0]);
        let reason = results[1]
            .as_ref()
            .unwrap_err()
            .revert_reason()
            .map(str::to_owned);
        assert!(
            reason
                .as_deref()
                .is_some_and(|r| r.starts_with("InsufficientBalance(")),
            "{:?}",
            results[1]
        );
        assert!(
            matches!(results[2], Err(ChainError::Rejected { .. })),
            "{:?}",
            results[2]
        );
        assert_eq!(token_balance(chain, token, bob), U256::from(10));
        assert_eq!(chain.nonce(holder.address()).unwrap(), 2);
        let head = chain.head().unwrap();
        assert_eq!((head.number, head.tx_count), (block_before + 1, 1));
        digests.push((
            results[0].as_ref().unwrap().gas_used,
            head,
            chain.balance(holder.address()).unwrap(),
        ));
        eprintln!("{}: {:?}", chain.backend(), results[2]);
    }
    assert_eq!(digests[0], digests[1]);
}

#[test]
fn snapshots_restore_balances_and_the_clock() {
    let mut chain = anvil();
    let who = Wallet::derive(5, "who").address();
    chain.deposit(who, U256::from(ETH)).unwrap();
    let before = chain.head().unwrap();
    let base_fee = chain.next_base_fee().unwrap();
    let snapshot = chain.snapshot().unwrap();
    chain.advance_time(1_000).unwrap();
    chain.deposit(who, U256::from(ETH)).unwrap();
    let _later = chain.snapshot().unwrap();
    chain.mine().unwrap();
    assert_eq!(chain.balance(who).unwrap(), U256::from(2 * ETH));
    chain.revert_to(snapshot).unwrap();
    assert_eq!(chain.balance(who).unwrap(), U256::from(ETH));
    assert_eq!(chain.head().unwrap(), before);
    assert_eq!(chain.next_base_fee().unwrap(), base_fee);
    let next = chain.mine().unwrap();
    assert_eq!(
        next.timestamp,
        before.timestamp + AnvilConfig::default().block_time
    );
    // Reverting dropped the snapshot and every later one.
    assert!(matches!(
        chain.revert_to(snapshot),
        Err(ChainError::UnknownSnapshot(0))
    ));
    assert!(matches!(
        chain.revert_to(_later),
        Err(ChainError::UnknownSnapshot(1))
    ));
}

#[test]
fn advance_time_moves_the_next_block() {
    let mut chain = anvil();
    let config = AnvilConfig::default();
    chain.advance_time(3_600).unwrap();
    let block = chain.mine().unwrap();
    assert_eq!(
        block.timestamp,
        config.genesis_timestamp + config.block_time + 3_600
    );
    let block = chain.mine().unwrap();
    assert_eq!(
        block.timestamp,
        config.genesis_timestamp + 2 * config.block_time + 3_600
    );
}

#[test]
fn a_missing_binary_says_to_run_setup() {
    let config = AnvilConfig {
        binary: Some("/nonexistent/anvil".into()),
        ..AnvilConfig::default()
    };
    let error = AnvilChain::start(config).err().expect("no anvil there");
    assert!(
        matches!(error, ChainError::ToolMissing { tool: "anvil", .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(message.contains("scripts/setup"), "{message}");
    assert!(message.contains("/nonexistent/anvil"), "{message}");
}

#[test]
fn a_killed_node_is_an_error_not_a_hang() {
    let mut chain = anvil();
    chain.mine().unwrap();
    let status = std::process::Command::new("kill")
        .args(["-9", &chain.pid().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let started = Instant::now();
    let error = chain.head().unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let message = error.to_string();
    assert!(message.contains("anvil exited"), "{message}");
    let results = chain.send_batch(vec![Wallet::derive(1, "x").sign(
        901,
        TxRequest {
            to: Some(Address::ZERO),
            data: Bytes::new(),
            gas_limit: 21_000,
            max_fee_per_gas: 1,
            ..Default::default()
        },
    )]);
    assert!(
        matches!(results[0], Err(ChainError::Backend { .. })),
        "{:?}",
        results[0]
    );
}

#[test]
fn transfer_events_decode_with_the_contract_abi() {
    // Guard for the log parsing: topics and data round-trip through SolEvent.
    let mut chain = anvil();
    let mut holder = Wallet::derive(9, "holder");
    let (token, deploy) = deploy_token(&mut chain, &mut holder);
    let minted = deploy.events::<OpenToken::Transfer>(token);
    assert_eq!(minted.len(), 1);
    assert_eq!(minted[0].to, holder.address());
    assert_eq!(
        deploy.logs[0].topics()[0],
        OpenToken::Transfer::SIGNATURE_HASH
    );
}

#[test]
fn estimates_match_the_embedded_chain() {
    let mut embedded = EmbeddedChain::new(EmbeddedConfig::default());
    let mut anvil = anvil();
    let mut estimates = Vec::new();
    for chain in [
        &mut embedded as &mut dyn Chain,
        &mut anvil as &mut dyn Chain,
    ] {
        let mut holder = Wallet::derive(8, "holder");
        let (token, _) = deploy_token(chain, &mut holder);
        let req = CallRequest {
            from: holder.address(),
            to: Some(token),
            data: OpenToken::transferCall {
                to: Address::repeat_byte(0x22),
                amount: U256::from(ETH),
            }
            .abi_encode()
            .into(),
            value: U256::ZERO,
        };
        estimates.push(chain.estimate_gas(&req).unwrap_or_else(|e| panic!("{e}")));
    }
    assert_eq!(estimates[0], estimates[1]);
}

/// What a backend-agreement case compares: a transaction's receipt (the L1 fee included), or
/// the kind of error it got.
type Outcome = Result<Receipt, &'static str>;

/// The variant of an error, which both backends must agree on (their wording may differ).
fn kind(error: &ChainError) -> &'static str {
    match error {
        ChainError::Reverted { .. } => "reverted",
        ChainError::Halted { .. } => "halted",
        ChainError::Rejected { .. } => "rejected",
        ChainError::MissingEvent { .. } => "missing event",
        ChainError::Decode { .. } => "decode",
        ChainError::ToolMissing { .. } => "tool missing",
        ChainError::Backend { .. } => "backend",
        ChainError::UnknownSnapshot(_) => "unknown snapshot",
    }
}

fn outcomes(results: Vec<Result<Receipt, ChainError>>) -> Vec<Outcome> {
    results
        .into_iter()
        .map(|r| r.map_err(|e| kind(&e)))
        .collect()
}

/// Runs `case` on a fresh embedded chain and a fresh anvil node and asserts that both give
/// the same outcomes, then the same head block and next base fee, also after one more
/// transaction sealed after the case (so a shifted block sequence cannot go unnoticed).
fn agree<T: PartialEq + std::fmt::Debug>(case: impl Fn(&mut dyn Chain) -> T) -> T {
    let mut embedded = EmbeddedChain::new(EmbeddedConfig::default());
    let mut anvil = anvil();
    let mut seen = Vec::new();
    for chain in [
        &mut embedded as &mut dyn Chain,
        &mut anvil as &mut dyn Chain,
    ] {
        let result = case(chain);
        let head = chain.head().unwrap();
        let mut after = Wallet::derive(99, "after");
        chain.deposit(after.address(), U256::from(ETH)).unwrap();
        let tx = sign(
            chain,
            &mut after,
            Some(Address::repeat_byte(0x99)),
            vec![],
            21_000,
        );
        let receipt = chain.send(tx).unwrap_or_else(|e| panic!("{e}"));
        let later = (
            chain.head().unwrap(),
            chain.next_base_fee().unwrap(),
            receipt,
        );
        seen.push((result, head, later));
    }
    let anvil_seen = seen.pop().unwrap();
    let embedded_seen = seen.pop().unwrap();
    assert_eq!(embedded_seen.0, anvil_seen.0, "outcomes (embedded, anvil)");
    assert_eq!(embedded_seen.1, anvil_seen.1, "head block after the case");
    assert_eq!(embedded_seen.2, anvil_seen.2, "the block after the case");
    embedded_seen.0
}

#[test]
fn anvil_receipts_report_the_l1_fee_of_each_transaction() {
    let outcomes = agree(|chain| {
        let mut holder = Wallet::derive(11, "holder");
        let mut other = Wallet::derive(11, "other");
        let (token, deploy) = deploy_token(chain, &mut holder);
        chain.deposit(other.address(), U256::from(ETH)).unwrap();
        // Three transactions of different sizes in one block, two of them from one sender.
        let a = transfer(chain, &mut holder, token, other.address(), 1);
        let b = sign(
            chain,
            &mut other,
            Some(Address::ZERO),
            vec![7; 300],
            100_000,
        );
        let c = transfer(chain, &mut holder, token, other.address(), 2);
        let mut all = vec![Ok(deploy)];
        all.extend(outcomes(chain.send_batch(vec![a, b, c])));
        all
    });
    assert_eq!(outcomes.len(), 4);
    let fees: Vec<U256> = outcomes
        .iter()
        .map(|o| o.as_ref().unwrap().l1_fee.expect("an L1 fee is reported"))
        .collect();
    assert!(fees.iter().all(|fee| *fee > U256::ZERO), "{fees:?}");
    assert_ne!(fees[0], fees[1], "fees follow the encoded size");
}

/// A batch of one good transfer and then `bad`, which anvil's pool accepts but the node
/// cannot execute; both backends must reject `bad` without sealing an extra block.
fn good_then_bad(
    chain: &mut dyn Chain,
    seed: u64,
    bad: impl Fn(&mut dyn Chain, &mut Wallet) -> SignedTx,
) -> Vec<Outcome> {
    let mut holder = Wallet::derive(seed, "holder");
    let mut sender = Wallet::derive(seed, "bad sender");
    let (token, _) = deploy_token(chain, &mut holder);
    let good = transfer(chain, &mut holder, token, sender.address(), 1);
    let bad = bad(chain, &mut sender);
    outcomes(chain.send_batch(vec![good, bad]))
}

#[test]
fn a_sender_who_cannot_pay_the_l1_fee_is_rejected_without_a_block() {
    let outcomes = agree(|chain| {
        good_then_bad(chain, 12, |chain, sender| {
            // Exactly gas limit times fee cap: nothing left for the L1 data fee.
            let max_fee = u128::from(chain.next_base_fee().unwrap()) + TIP;
            chain
                .deposit(sender.address(), U256::from(21_000 * max_fee))
                .unwrap();
            sender.sign(
                chain.chain_id(),
                TxRequest {
                    to: Some(Address::repeat_byte(0x33)),
                    gas_limit: 21_000,
                    max_fee_per_gas: max_fee,
                    max_priority_fee_per_gas: TIP,
                    ..Default::default()
                },
            )
        })
    });
    assert!(outcomes[0].is_ok(), "{outcomes:?}");
    assert_eq!(outcomes[1], Err("rejected"));
}

#[test]
fn a_gas_limit_under_the_calldata_floor_is_rejected_without_a_block() {
    let outcomes = agree(|chain| {
        good_then_bad(chain, 13, |chain, sender| {
            chain.deposit(sender.address(), U256::from(ETH)).unwrap();
            // 1,000 non-zero bytes: 37,000 gas of intrinsic cost, 61,000 of EIP-7623 floor.
            sign(
                chain,
                sender,
                Some(Address::repeat_byte(0x33)),
                vec![1; 1_000],
                40_000,
            )
        })
    });
    assert!(outcomes[0].is_ok(), "{outcomes:?}");
    assert_eq!(outcomes[1], Err("rejected"));
}

/// Init code that counts down from 2^18 (about 6.8 million gas) and deploys nothing.
fn gas_burner() -> Vec<u8> {
    // PUSH3 0x040000; loop: JUMPDEST PUSH1 1 SWAP1 SUB DUP1 PUSH1 4 JUMPI; STOP
    vec![
        0x62, 0x04, 0x00, 0x00, 0x5b, 0x60, 0x01, 0x90, 0x03, 0x80, 0x60, 0x04, 0x57, 0x00,
    ]
}

#[test]
fn a_fee_cap_that_misses_the_second_block_is_rejected_without_a_block() {
    let outcomes = agree(|chain| {
        let mut burner = Wallet::derive(14, "burner");
        let mut late = Wallet::derive(14, "late");
        let mut third = Wallet::derive(14, "third");
        for who in [&burner, &late, &third] {
            chain.deposit(who.address(), U256::from(ETH)).unwrap();
        }
        // Over the gas target: the second block's base fee is higher than the first's.
        let burn = sign(chain, &mut burner, None, gas_burner(), 8_000_000);
        // Does not fit beside the burner; its fee cap covers the first block only.
        let base_fee = u128::from(chain.next_base_fee().unwrap());
        let late_tx = late.sign(
            chain.chain_id(),
            TxRequest {
                to: Some(Address::repeat_byte(0x44)),
                gas_limit: 25_000_000,
                max_fee_per_gas: base_fee,
                max_priority_fee_per_gas: 0,
                ..Default::default()
            },
        );
        // Too large for the first block as well (anvil would move a smaller one up into it,
        // past the refused one: see the module doc of `olsim_chain::anvil`).
        let third_tx = sign(
            chain,
            &mut third,
            Some(Address::repeat_byte(0x45)),
            vec![],
            25_000_000,
        );
        // Alone after the burner, and followed by one that goes into the second block.
        let snapshot = chain.snapshot().unwrap();
        let alone = outcomes(chain.send_batch(vec![burn.clone(), late_tx.clone()]));
        let alone_head = chain.head().unwrap();
        chain.revert_to(snapshot).unwrap();
        let followed = outcomes(chain.send_batch(vec![burn, late_tx, third_tx]));
        (alone, alone_head, followed)
    });
    let (alone, alone_head, followed) = outcomes;
    assert!(
        alone[0].is_ok() && followed[0].is_ok(),
        "{alone:?} {followed:?}"
    );
    assert_eq!(
        (&alone[1], &followed[1]),
        (&Err("rejected"), &Err("rejected"))
    );
    let burn_block = alone[0].as_ref().unwrap().block_number;
    assert_eq!(
        alone_head.number, burn_block,
        "no block for the refused one"
    );
    let third_block = followed[2].as_ref().unwrap().block_number;
    assert_eq!(third_block, burn_block + 1);
}

#[test]
fn a_deposit_to_a_contract_that_refuses_eth_is_included_as_on_the_op_stack() {
    let (error, depositor, token_eth, head) = agree(|chain| {
        let mut holder = Wallet::derive(15, "holder");
        let (token, _) = deploy_token(chain, &mut holder);
        let error = chain
            .deposit(token, U256::from(2 * ETH))
            .expect_err("OpenToken has no receive function");
        let depositor = (
            chain.balance(L1_DEPOSITOR).unwrap(),
            chain.nonce(L1_DEPOSITOR).unwrap(),
        );
        let token_eth = chain.balance(token).unwrap();
        (kind(&error), depositor, token_eth, chain.head().unwrap())
    });
    assert_eq!(error, "reverted");
    assert_eq!(
        depositor.0,
        U256::from(2 * ETH),
        "the mint stays with the depositor"
    );
    assert_eq!(depositor.1, 2, "two deposits, the failed one included");
    assert_eq!(token_eth, U256::ZERO);
    assert_eq!(
        (head.number, head.tx_count),
        (3, 1),
        "the failed deposit has its block"
    );
}

#[test]
fn an_estimate_the_sender_cannot_pay_for_is_rejected_on_both_backends() {
    let kinds = agree(|chain| {
        let poor = Wallet::derive(16, "poor").address();
        chain.deposit(poor, U256::from(ETH / 1_000)).unwrap();
        let estimate = |value: u128, chain: &mut dyn Chain| {
            chain
                .estimate_gas(&CallRequest {
                    from: poor,
                    to: Some(Address::repeat_byte(0x55)),
                    data: Bytes::new(),
                    value: U256::from(value),
                })
                .map_err(|e| kind(&e))
        };
        // More value than the sender holds; no value, but less than the gas the estimate
        // runs with (the block gas limit at the base fee: 0.03 ETH) costs.
        (estimate(ETH, chain), estimate(0, chain))
    });
    assert_eq!(kinds, (Err("rejected"), Err("rejected")));
}

/// Set in a copy of this test binary that starts a node and waits to be killed.
const NODE_HOLDER: &str = "OLSIM_TEST_NODE_HOLDER";

/// Whether process `pid` is still running (a zombie waiting for its reaper is not).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit(") ").next().map(|rest| !rest.starts_with('Z')))
        .unwrap_or(false)
}

#[test]
fn the_node_dies_with_the_process_that_started_it() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    if std::env::var_os(NODE_HOLDER).is_some() {
        // The holder: start a node, say its pid, and wait to be killed.
        let chain = anvil();
        println!("node pid {}", chain.pid());
        std::thread::sleep(Duration::from_secs(60));
        panic!("the holder was not killed within a minute");
    }
    let mut holder = Command::new(std::env::current_exe().unwrap())
        .args([
            "the_node_dies_with_the_process_that_started_it",
            "--exact",
            "--nocapture",
        ])
        .env(NODE_HOLDER, "1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(holder.stdout.take().unwrap());
    let pid: u32 = stdout
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.strip_prefix("node pid ")?.parse().ok())
        .expect("the holder reports its node's pid");
    assert!(running(pid));
    holder.kill().unwrap();
    holder.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while running(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let orphaned = running(pid);
    if orphaned {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    }
    assert!(
        !orphaned,
        "anvil {pid} outlived the process that started it"
    );
}

#[test]
fn a_foreign_node_on_the_preferred_port_is_not_used() {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    // A JSON-RPC server that answers every request with chain id 901, as ours would.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&requests);
    std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            counter.fetch_add(1, Ordering::SeqCst);
            let body = r#"{"jsonrpc":"2.0","id":0,"result":"0x385"}"#;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let mut chain = AnvilChain::start(AnvilConfig {
        port: Some(port),
        ..AnvilConfig::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !chain.url().ends_with(&format!(":{port}")),
        "{}",
        chain.url()
    );
    assert_eq!(
        requests.load(Ordering::SeqCst),
        0,
        "the foreign node was asked"
    );
    assert_eq!(chain.mine().unwrap().number, 1, "a real node answers");
    // A free preferred port is taken as it is.
    let free = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let chain = AnvilChain::start(AnvilConfig {
        port: Some(free),
        ..AnvilConfig::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        chain.url().ends_with(&format!(":{free}")),
        "{}",
        chain.url()
    );
}
