//! Chain throughput: one workload (contributions, inference payments, reward settlements)
//! as tx/s and gas/s on three executors, measured in the same run:
//! - `raw_op_revm`: op-revm's transact-and-commit loop over prepared transactions, the
//!   floor under any chain built on it (no signature recovery, receipts or blocks);
//! - `embedded`: olsim's embedded L2 (`send_batch`: recovery, blocks, base fee, receipts);
//! - `embedded_impersonated`: the same round impersonated (`run.impersonate`: no sender
//!   recovery);
//! - `anvil`: a real anvil node, through olsim's `AnvilChain` (one request per transaction,
//!   each receipt read back);
//! - `anvil_raw_batched`: the same node as a user would drive it for speed: the signed
//!   round as `eth_sendRawTransaction` calls in JSON-RPC batches of 500, then `evm_mine`
//!   (plain HTTP, no client library), checking that the mined block holds them all;
//! - `anvil_impersonated_batched`: the impersonated round's counterpart on anvil: every
//!   sender impersonated once beforehand (`anvil_impersonateAccount`), then the same
//!   transactions, unsigned, as `eth_sendTransaction` calls from them, batched and mined
//!   the same way.
//!
//! After criterion's figures, a summary table prints tx/s, gas/s and the ratios the
//! performance issue sets as goals (signed embedded >= 0.9x raw, impersonated >= 0.95x raw,
//! embedded >= 20x raw batched anvil), and impersonated against anvil's impersonation.
//! Run: `cargo bench -p olsim-benches --bench chain_throughput`

use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use olsim_benches::TxWorkload;
use olsim_chain::embedded::{SPEC, op_transaction};
use olsim_chain::{AnvilChain, AnvilConfig, Chain, EmbeddedChain, EmbeddedConfig, SignedTx};
use op_revm::revm::context::{BlockEnv, CfgEnv, TxEnv};
use op_revm::revm::database::{CacheDB, EmptyDB};
use op_revm::revm::{Context, ExecuteCommitEvm};
use op_revm::{DefaultOp, OpBuilder, OpTransaction};

const SEED: u64 = 7;
const CONTRIBUTORS: usize = 40;
const USERS: usize = 40;

/// Everything needed to replay one round on each executor.
struct Fixture {
    embedded: EmbeddedChain,
    anvil: AnvilChain,
    round: Vec<SignedTx>,
    impersonated: Vec<SignedTx>,
    raw_txs: Vec<OpTransaction<TxEnv>>,
    raw_db: CacheDB<EmptyDB>,
    raw_block: BlockEnv,
}

fn fixture() -> Fixture {
    let config = EmbeddedConfig::default();
    let mut embedded = EmbeddedChain::new(config.clone());
    let mut anvil = AnvilChain::start(AnvilConfig::matching(&config))
        .expect("anvil starts (run scripts/setup)");
    let mut workload =
        TxWorkload::setup(&mut embedded, SEED, CONTRIBUTORS, USERS).expect("embedded setup");
    TxWorkload::setup(&mut anvil, SEED, CONTRIBUTORS, USERS).expect("anvil setup");
    let round = workload.sign_round(&mut embedded, 1).expect("signing");
    let raw_txs = round.iter().map(|tx| op_transaction(tx, tx.from)).collect();
    let impersonated = round
        .iter()
        .map(|tx| {
            let unsigned = tx.envelope.as_eip1559().expect("EIP-1559").tx().clone();
            SignedTx::impersonated(unsigned, tx.from)
        })
        .collect();
    impersonate_on_anvil(&anvil, &round);
    Fixture {
        impersonated,
        raw_db: embedded.database().clone(),
        raw_block: embedded.next_block_env(),
        embedded,
        anvil,
        round,
        raw_txs,
    }
}

/// The raw loop: op-revm executing and committing each prepared transaction. Returns gas.
fn raw_loop(
    db: CacheDB<EmptyDB>,
    block: BlockEnv,
    chain_id: u64,
    txs: &[OpTransaction<TxEnv>],
) -> u64 {
    let cfg = CfgEnv::new_with_spec(SPEC).with_chain_id(chain_id);
    let mut evm = Context::op()
        .with_db(db)
        .with_cfg(cfg)
        .with_block(block)
        .build_op();
    let mut gas = 0;
    for tx in txs {
        let result = evm.transact_commit(tx.clone()).expect("valid transaction");
        assert!(
            result.is_success(),
            "raw loop transaction failed: {result:?}"
        );
        gas += result.tx_gas_used();
    }
    gas
}

/// Transactions per JSON-RPC batch of the raw anvil client.
const RAW_BATCH: usize = 500;

/// One JSON-RPC request (or batch) POSTed to `url` over plain HTTP/1.1; the parsed reply.
fn post(url: &str, body: &str) -> serde_json::Value {
    use std::io::{Read, Write};
    let host = url.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(host).expect("anvil listens");
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("request sent");
    let mut reply = String::new();
    stream.read_to_string(&mut reply).expect("reply read");
    let (_, json) = reply.split_once("\r\n\r\n").expect("an HTTP reply");
    serde_json::from_str(json).expect("a JSON-RPC reply")
}

/// Impersonates every sender of `round` on anvil, once, outside any timing.
fn impersonate_on_anvil(anvil: &AnvilChain, round: &[SignedTx]) {
    let mut senders: Vec<_> = round.iter().map(|tx| tx.from).collect();
    senders.sort_unstable();
    senders.dedup();
    for sender in senders {
        let call = serde_json::json!({"jsonrpc": "2.0", "id": 0,
            "method": "anvil_impersonateAccount", "params": [sender]});
        let reply = post(anvil.url(), &call.to_string());
        assert!(reply.get("error").is_none(), "anvil refused: {reply}");
    }
}

/// A signed transaction as the parameters of `eth_sendRawTransaction`.
fn raw_params(tx: &SignedTx) -> serde_json::Value {
    serde_json::json!([tx.raw.to_string()])
}

/// A signed transaction as the parameters of `eth_sendTransaction` from its impersonated
/// sender: the same fields, unsigned.
fn impersonated_params(tx: &SignedTx) -> serde_json::Value {
    let t = tx.envelope.as_eip1559().expect("EIP-1559").tx();
    serde_json::json!([{
        "type": "0x2",
        "from": tx.from,
        "to": t.to.to(),
        "input": t.input,
        "value": t.value,
        "gas": format!("{:#x}", t.gas_limit),
        "nonce": format!("{:#x}", t.nonce),
        "chainId": format!("{:#x}", t.chain_id),
        "maxFeePerGas": format!("{:#x}", t.max_fee_per_gas),
        "maxPriorityFeePerGas": format!("{:#x}", t.max_priority_fee_per_gas),
    }])
}

/// How the raw anvil client sends a round: the method and each transaction's parameters.
type Sending = (&'static str, fn(&SignedTx) -> serde_json::Value);
/// Signed, as `eth_sendRawTransaction`.
const RAW: Sending = ("eth_sendRawTransaction", raw_params);
/// From impersonated senders, as `eth_sendTransaction`.
const IMPERSONATED: Sending = ("eth_sendTransaction", impersonated_params);

/// The round sent to anvil as a user would for speed (see the module docs), in JSON-RPC
/// batches then `evm_mine`, from the same state each time, checking that the mined block
/// holds them all; returns (elapsed, gas).
fn batched(
    anvil: &mut AnvilChain,
    round: &[SignedTx],
    (method, params): Sending,
) -> (Duration, u64) {
    let snapshot = anvil.snapshot().expect("snapshot");
    let url = anvil.url().to_string();
    let start = Instant::now();
    for (b, chunk) in round.chunks(RAW_BATCH).enumerate() {
        let calls: Vec<serde_json::Value> = chunk
            .iter()
            .enumerate()
            .map(|(i, tx)| {
                serde_json::json!({"jsonrpc": "2.0", "id": b * RAW_BATCH + i,
                    "method": method, "params": params(tx)})
            })
            .collect();
        let replies = post(&url, &serde_json::Value::Array(calls).to_string());
        let refused: Vec<_> = replies
            .as_array()
            .expect("a batch reply")
            .iter()
            .filter(|r| r.get("error").is_some())
            .collect();
        assert!(refused.is_empty(), "anvil refused: {refused:?}");
    }
    let mine = r#"{"jsonrpc":"2.0","id":0,"method":"evm_mine","params":[]}"#;
    post(&url, mine);
    let elapsed = start.elapsed();
    let head =
        r#"{"jsonrpc":"2.0","id":0,"method":"eth_getBlockByNumber","params":["latest",false]}"#;
    let block = post(&url, head)["result"].take();
    let mined = block["transactions"].as_array().map_or(0, Vec::len);
    assert_eq!(mined, round.len(), "anvil mined every {method} transaction");
    let gas = block["gasUsed"].as_str().expect("the block's gas used");
    let gas = u64::from_str_radix(gas.trim_start_matches("0x"), 16).expect("a hex quantity");
    anvil.revert_to(snapshot).expect("revert");
    (elapsed, gas)
}

/// Replays the round on a chain from the same state each time; returns (elapsed, gas).
fn replay<C: Chain>(chain: &mut C, round: &[SignedTx]) -> (Duration, u64) {
    let snapshot = chain.snapshot().expect("snapshot");
    let txs = round.to_vec();
    let start = Instant::now();
    let results = chain.send_batch(txs);
    let elapsed = start.elapsed();
    let gas = results
        .iter()
        .map(|r| r.as_ref().expect("workload transaction succeeds").gas_used)
        .sum();
    chain.revert_to(snapshot).expect("revert");
    (elapsed, gas)
}

fn bench(c: &mut Criterion) {
    let mut f = fixture();
    let chain_id = f.embedded.chain_id();
    let mut group = c.benchmark_group("chain_throughput");
    group.throughput(Throughput::Elements(f.round.len() as u64));
    group.sample_size(10);
    group.bench_function("raw_op_revm", |b| {
        b.iter_batched(
            || f.raw_db.clone(),
            |db| raw_loop(db, f.raw_block.clone(), chain_id, &f.raw_txs),
            BatchSize::LargeInput,
        )
    });
    group.bench_function("embedded", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| replay(&mut f.embedded, &f.round).0)
                .sum()
        })
    });
    group.bench_function("embedded_impersonated", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| replay(&mut f.embedded, &f.impersonated).0)
                .sum()
        })
    });
    group.bench_function("anvil", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| replay(&mut f.anvil, &f.round).0).sum())
    });
    group.bench_function("anvil_raw_batched", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| batched(&mut f.anvil, &f.round, RAW).0)
                .sum()
        })
    });
    group.bench_function("anvil_impersonated_batched", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| batched(&mut f.anvil, &f.round, IMPERSONATED).0)
                .sum()
        })
    });
    group.finish();
    summary(&mut f, chain_id);
}

/// Median of several timed replays per executor, as tx/s and gas/s, with the goal ratios;
/// the executors that keep the round's order must have used the raw loop's gas.
fn summary(f: &mut Fixture, chain_id: u64) {
    const RUNS: usize = 7;
    let n = f.round.len() as f64;
    let median = |mut runs: Vec<(Duration, u64)>| {
        runs.sort_unstable();
        runs[RUNS / 2]
    };
    let raw = median(
        (0..RUNS)
            .map(|_| {
                let db = f.raw_db.clone();
                let start = Instant::now();
                let gas = raw_loop(db, f.raw_block.clone(), chain_id, &f.raw_txs);
                (start.elapsed(), gas)
            })
            .collect(),
    );
    let embedded = median(
        (0..RUNS)
            .map(|_| replay(&mut f.embedded, &f.round))
            .collect(),
    );
    let impersonated = median(
        (0..RUNS)
            .map(|_| replay(&mut f.embedded, &f.impersonated))
            .collect(),
    );
    let anvil = median((0..RUNS).map(|_| replay(&mut f.anvil, &f.round)).collect());
    let mut anvil_batched = |sending: Sending| {
        median(
            (0..RUNS)
                .map(|_| batched(&mut f.anvil, &f.round, sending))
                .collect(),
        )
    };
    let raw_anvil = anvil_batched(RAW);
    let imp_anvil = anvil_batched(IMPERSONATED);
    let rows = [
        ("raw op-revm", raw),
        ("embedded", embedded),
        ("impersonated", impersonated),
        ("anvil", anvil),
        ("anvil raw batch", raw_anvil),
        ("anvil imp batch", imp_anvil),
    ];
    // anvil does not keep a JSON-RPC batch's order in the block it mines (the settlement
    // lands before some payments): same transactions, slightly different gas.
    for (name, (_, gas)) in &rows[..4] {
        assert_eq!(*gas, raw.1, "{name} used the raw loop's gas");
    }
    let tps = |(t, _): (Duration, u64)| n / t.as_secs_f64();
    let (raw_tps, emb_tps, imp_tps) = (tps(raw), tps(embedded), tps(impersonated));
    println!(
        "\nchain throughput, {} txs per round (median of {RUNS})",
        f.round.len()
    );
    println!("{:<16} {:>12} {:>14}", "executor", "tx/s", "Mgas/s");
    for (name, (t, gas)) in rows {
        let mgps = gas as f64 / t.as_secs_f64() / 1e6;
        let reordered = if gas == raw.1 {
            ""
        } else {
            "  (mined out of order)"
        };
        println!("{name:<16} {:>12.0} {mgps:>14.1}{reordered}", tps((t, gas)));
    }
    println!(
        "embedded / raw     = {:.2}x (goal >= 0.9x)",
        emb_tps / raw_tps
    );
    println!(
        "impersonated / raw = {:.2}x (goal >= 0.95x)",
        imp_tps / raw_tps
    );
    println!(
        "embedded / anvil   = {:.1}x (anvil through olsim's AnvilChain)",
        emb_tps / tps(anvil)
    );
    println!(
        "embedded / anvil raw batched = {:.1}x (goal >= 20x)",
        emb_tps / tps(raw_anvil)
    );
    println!(
        "impersonated / anvil impersonated batched = {:.1}x",
        imp_tps / tps(imp_anvil)
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
