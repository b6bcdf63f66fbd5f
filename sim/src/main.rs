//! `olsim`: the command-line entry point.
//!
//! `olsim run FILE` runs a scenario and writes its report (JSON, Markdown, HTML with charts)
//! and its tables as Parquet;
//! `olsim validate FILE...` checks scenario files; `olsim chain-demo` runs the scripted
//! protocol workload on a chain and prints what happened.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use olsim::engine::{self, Run, RunOptions};
use olsim::report::{self, Report};
use olsim::scenario::size::{Footprint, machine_memory};
use olsim::scenario::{DeviceKind, RunOverrides, Scenario};
use olsim::{frames, output};
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
    /// Run a scenario and write its report (report.json, report.md, report.html) and its
    /// tables as Parquet (epochs, contributors, attacks, grants, governance, models,
    /// transactions).
    Run {
        /// Scenario file (TOML, see docs/scenarios.md).
        file: PathBuf,
        /// Folder the report files go to. Default: `target/olsim-runs/<scenario name>`.
        #[arg(long)]
        out: Option<PathBuf>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        /// Exit with status 1 when one of the scenario's `[[expect]]` claims does not hold
        /// (the report is written either way).
        #[arg(long)]
        strict: bool,
        /// Where the models run: `cpu`, `cuda` or `cuda:N` (needs a build with the `cuda`
        /// feature). Default: the scenario's `run.device`.
        #[arg(long)]
        device: Option<olsim_ml::device::Device>,
        /// Impersonate the agents' transactions instead of signing them: no signing and no
        /// sender recovery (sets `run.impersonate`; embedded chain only).
        #[arg(long)]
        impersonate: bool,
    },
    /// Parse and check scenario files without running them (see docs/scenarios.md).
    Validate {
        /// Scenario files (TOML).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run a scenario over a grid of parameters times seeds (see docs/sweeps.md).
    Sweep(olsim::sweep::cli::SweepArgs),
    /// Join sweep shard results into one table, charts and page (see docs/sweeps.md).
    Merge(olsim::sweep::cli::MergeArgs),
    /// Compare the results of two reports (or a report and a baseline) metric by metric.
    Compare(olsim::compare::CompareArgs),
    /// Run a suite of scenarios and benches against its committed baseline.
    Check(olsim::check::CheckArgs),
    /// Time the hot paths against same-run references and write JSON `check` can compare.
    Bench(olsim::bench::BenchArgs),
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

/// Lets a write to a closed pipe end the process quietly, as it does other Unix tools
/// (`olsim bench | head`): Rust ignores `SIGPIPE`, so `println!` would panic there instead.
fn end_quietly_on_a_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: restoring a signal's default disposition before any thread starts; no
    // handler runs Rust code.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    olsim::alloc::keep_freed_memory();
    end_quietly_on_a_closed_pipe();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate { files } => return validate(&files),
        Command::Run {
            file,
            out,
            quiet,
            strict,
            device,
            impersonate,
        } => return run(&file, out, quiet, strict, device, impersonate),
        Command::Compare(args) => return olsim::compare::command(&args),
        Command::Check(args) => return olsim::check::command(&args),
        Command::Bench(args) => return olsim::bench::command(&args),
        Command::Sweep(args) => return olsim::sweep::cli::sweep(args),
        Command::Merge(args) => return olsim::sweep::cli::merge(args),
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

/// Prints `ok <file>: <summary>` and the run's estimated size, or every error of each
/// file; fails if any file has one.
fn validate(files: &[PathBuf]) -> ExitCode {
    let mut failed = false;
    for file in files {
        match Scenario::load(file) {
            Ok(s) => {
                println!("ok {}: {}", file.display(), s.summary());
                println!("   {}", Footprint::of(&s).describe(machine_memory()));
            }
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

/// Runs one scenario and writes its report files.
fn run(
    file: &Path,
    out: Option<PathBuf>,
    quiet: bool,
    strict: bool,
    device: Option<olsim_ml::device::Device>,
    impersonate: bool,
) -> ExitCode {
    let overrides = RunOverrides {
        device: device.map(|d| match d {
            olsim_ml::device::Device::Cpu => DeviceKind::Cpu,
            olsim_ml::device::Device::Cuda(_) => DeviceKind::Cuda,
        }),
        impersonate,
    };
    let scenario = match Scenario::load_with(file, overrides) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let dir = out.unwrap_or_else(|| Path::new("target/olsim-runs").join(&scenario.run.name));
    let files: Vec<&str> = REPORT_FILES
        .iter()
        .chain(&frames::run::FILES)
        .copied()
        .collect();
    if let Err(e) = output::probe_replace(&dir, &files) {
        eprintln!("error: --out: {e}; nothing was run");
        return ExitCode::FAILURE;
    }
    let options = RunOptions {
        progress: !quiet,
        device,
    };
    let run = match engine::run_logged(&scenario, &options) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let report = &run.report;
    match write_report(&run, &dir) {
        Ok(()) => {
            print!("{}", summary(report));
            println!("report: {}/report.{{json,md,html}}", dir.display());
            println!("tables: {}/*.parquet", dir.display());
            let failed = report.claims.iter().filter(|c| !c.holds).count();
            if strict && failed > 0 {
                eprintln!(
                    "error: {}: {failed} of {} [[expect]] claims do not hold (--strict)",
                    file.display(),
                    report.claims.len()
                );
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("error: writing the report to {}: {e}", dir.display());
            ExitCode::FAILURE
        }
    }
}

/// The report files of a run, in the order they are written; its tables
/// ([`frames::run::FILES`]) follow.
const REPORT_FILES: [&str; 3] = ["report.json", "report.md", "report.html"];

/// Replaces `dir` with a folder of the report's files and its tables as a whole
/// ([`output::replace_folder`]): a crash or a full disk leaves the previous report or the
/// new one, never a mix.
fn write_report(run: &Run, dir: &Path) -> Result<(), String> {
    let report = &run.report;
    let html = report::html::render(report)?;
    let texts = [report.to_json(), report::markdown::render(report), html];
    let mut files: Vec<(PathBuf, Vec<u8>)> = REPORT_FILES
        .iter()
        .zip(texts)
        .map(|(name, text)| (PathBuf::from(name), text.into_bytes()))
        .collect();
    let context = frames::run::context(report);
    let tables =
        frames::run::tables(report, &run.transactions, &context).map_err(|e| e.to_string())?;
    files.extend(tables.into_iter().map(|(name, b)| (PathBuf::from(name), b)));
    output::replace_folder(dir, &files).map_err(|e| e.to_string())
}

/// A few lines for the terminal.
fn summary(report: &Report) -> String {
    let r = &report.result;
    let mut out = format!(
        "{}: {} epochs, {} txs ({} refused), {:.2} OPEN fees, {:.2} OPEN paid from reward pools\n\
         fairness: gini {}, honest share {}, spearman vs truth {}\n",
        report.scenario.name,
        report.scenario.epochs,
        r.chain.transactions,
        r.chain.refused,
        r.economy.fees,
        r.economy.contributor_rewards,
        report::tables::maybe(r.fairness.gini),
        report::tables::maybe(r.fairness.honest_share),
        report::tables::maybe(r.fairness.spearman_vs_truth),
    );
    for a in &r.attacks {
        out.push_str(&format!(
            "attack {}: capital {}, revenue {}, cost {}, return on capital {}, recall {}\n",
            a.kind,
            report::tables::amount(a.capital),
            report::tables::amount(a.revenue),
            report::tables::amount(a.cost),
            report::tables::maybe(a.roi),
            report::tables::maybe(a.detection_recall)
        ));
    }
    for c in &report.claims {
        let found = c
            .value
            .as_ref()
            .map_or_else(|| "-".into(), |v| v.to_string());
        match &c.problem {
            None => out.push_str(&format!(
                "claim holds: {} {} (found {found})\n",
                c.path, c.claim
            )),
            Some(why) => out.push_str(&format!(
                "claim FAILS: {} {}: {why}{}\n",
                c.path,
                c.claim,
                if c.why.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", c.why)
                }
            )),
        }
    }
    out.push_str(&format!(
        "digest {} ({:.1} s wall)\n",
        report.digest, report.perf.total_seconds
    ));
    out
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
