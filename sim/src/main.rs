//! `olsim`: the command-line entry point.
//!
//! Until the scenario engine lands, `olsim chain-demo` is the main job: it runs the scripted
//! protocol workload end to end on a chain and prints what happened.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use olsim::scenario::Scenario;
use olsim_chain::embedded::{BASE_FEE_VAULT, L1_FEE_VAULT, SEQUENCER_FEE_VAULT};
use olsim_chain::protocol::OPEN;
use olsim_chain::workload::{self, WorkloadConfig, WorkloadRun};
use olsim_chain::{AnvilChain, AnvilConfig, Chain, ChainError, EmbeddedChain, EmbeddedConfig};

#[derive(Parser)]
#[command(
    name = "olsim",
    version,
    about = "Deterministic simulation testbed of the OpenLedger ecosystem"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parse and check scenario files without running them (see docs/scenarios.md).
    Validate {
        /// Scenario files (TOML).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Deploy the protocol and run a scripted workload touching every contract.
    ChainDemo {
        /// Master seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Chain backend.
        #[arg(long, value_enum, default_value_t = Backend::Embedded)]
        backend: Backend,
        /// Number of data contributors.
        #[arg(long, default_value_t = 8)]
        contributors: usize,
        /// Number of inference buyers.
        #[arg(long, default_value_t = 4)]
        users: usize,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Backend {
    /// op-revm in this process.
    Embedded,
    /// A local anvil node (installed by scripts/setup).
    Anvil,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate { files } => return validate(&files),
        Command::ChainDemo {
            seed,
            backend,
            contributors,
            users,
        } => chain_demo(seed, backend, contributors, users),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints `ok <file>: <summary>` or every error of each file; fails if any file has one.
fn validate(files: &[PathBuf]) -> ExitCode {
    let mut failed = false;
    for file in files {
        match Scenario::load(file) {
            Ok(s) => println!("ok {}: {}", file.display(), s.summary()),
            Err(e) => {
                failed = true;
                eprintln!("{e}");
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn chain_demo(
    seed: u64,
    backend: Backend,
    contributors: usize,
    users: usize,
) -> Result<(), ChainError> {
    let config = WorkloadConfig {
        seed,
        contributors,
        users,
    };
    match backend {
        Backend::Embedded => {
            let mut chain = EmbeddedChain::new(EmbeddedConfig::default());
            let run = workload::run(&mut chain, &config)?;
            print_run(&mut chain, &run)?;
            let stats = chain.stats();
            println!(
                "chain totals   {} blocks, {} txs (deposits and deployment included), {} gas, {} refused at inclusion",
                stats.blocks, stats.txs, stats.gas_used, stats.failed
            );
            println!("state digest   {}", chain.state_digest());
        }
        Backend::Anvil => {
            let mut chain = AnvilChain::start(AnvilConfig::matching(&EmbeddedConfig::default()))?;
            let run = workload::run(&mut chain, &config)?;
            print_run(&mut chain, &run)?;
        }
    }
    Ok(())
}

fn print_run<C: Chain>(chain: &mut C, run: &WorkloadRun) -> Result<(), ChainError> {
    println!("{:<48} {:>6} {:>10}  outcome", "step", "block", "gas");
    for step in &run.steps {
        match &step.outcome {
            Ok(r) => println!(
                "{:<48} {:>6} {:>10}  ok",
                step.label, r.block_number, r.gas_used
            ),
            Err(e) => println!(
                "{:<48} {:>6} {:>10}  refused as scripted: {}",
                step.label,
                "-",
                "-",
                e.revert_reason().unwrap_or("")
            ),
        }
    }
    let head = chain.head()?;
    let receipts: Vec<_> = run.receipts().collect();
    let gas: u64 = receipts.iter().map(|r| r.gas_used).sum();
    let exec_fees: u128 = receipts
        .iter()
        .map(|r| u128::from(r.gas_used) * r.effective_gas_price)
        .sum();
    println!();
    println!("backend        {}", chain.backend());
    println!(
        "blocks         {} (head timestamp {}, next base fee {} wei)",
        head.number,
        head.timestamp,
        chain.next_base_fee()?
    );
    println!(
        "transactions   {} included by the workload, {} refused as scripted",
        receipts.len(),
        run.steps.len() - receipts.len()
    );
    println!("gas used       {gas}");
    println!("L2 exec fees   {} gwei", exec_fees / 1_000_000_000);
    if chain.backend() == "embedded" {
        for (name, vault) in [
            ("base fee vault", BASE_FEE_VAULT),
            ("L1 fee vault", L1_FEE_VAULT),
            ("sequencer fees", SEQUENCER_FEE_VAULT),
        ] {
            println!(
                "{name:<15}{} gwei",
                chain.balance(vault)? / alloy_primitives::U256::from(1_000_000_000u64)
            );
        }
    }
    let l = run.ledger;
    let open = |v: alloy_primitives::U256| format!("{} OPEN", v / OPEN);
    println!("OPEN supply    {}", open(l.total_supply));
    println!(
        "accounted      {} (holders + contracts)",
        open(run.open_accounted(chain)?)
    );
    println!("treasury       {}", open(l.treasury));
    println!(
        "reward pools   {} pooled, {} reserved",
        open(l.rewards_pooled),
        open(l.rewards_reserved)
    );
    println!(
        "staking        {} staked, {} reward reserve",
        open(l.governance_staked),
        open(l.governance_rewards)
    );
    println!(
        "grant vault    {} available, {} reserved",
        open(l.grants_available),
        open(l.grants_reserved)
    );
    println!("escrowed stake {}", open(l.datanets_escrowed));
    match l.check_books() {
        Ok(()) => println!("books          every contract's balance matches its books"),
        Err(e) => println!("books          MISMATCH: {e}"),
    }
    Ok(())
}
