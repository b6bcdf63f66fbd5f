//! The `olsim sweep` and `olsim merge` subcommands: argument parsing and terminal output over
//! [`super::run`] and [`super::merge`].

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::merge::{self, MergeOptions};
use super::run::{self, Shard, SweepOptions};
use super::{SweepError, SweepSpec};

/// Arguments of `olsim sweep`.
#[derive(Debug, clap::Args)]
pub struct SweepArgs {
    /// A sweep file (TOML with `base`, `seeds` and `[grid]`) or a scenario file to sweep
    /// with --set and --seeds (see docs/sweeps.md).
    pub file: PathBuf,
    /// A grid axis: a scenario field path and its values, e.g.
    /// `tokenomics.slash_fraction=0.1,0.2,0.4`; repeat for more axes.
    #[arg(long = "set", value_name = "PATH=V1,V2,...")]
    pub set: Vec<String>,
    /// Seeds: a count N (the base seed and the N-1 after it) or a list `S1,S2,...`.
    #[arg(long)]
    pub seeds: Option<String>,
    /// Run only points `i` with `i % N == I`: `I/N`, or `I` / `/N` with the rest from
    /// SLURM_ARRAY_TASK_ID / JOB_COMPLETION_INDEX and SLURM_ARRAY_TASK_COUNT.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Points run at the same time. Default: the available cores.
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Output folder. Default: `target/olsim-sweeps/<sweep name>`.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Arguments of `olsim merge`.
#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// Folders holding shard results of one sweep (`shard-*.json` and `points/`).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Folder for the table, charts and page. Default: the first folder.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Merge even when some points have no result yet.
    #[arg(long)]
    pub partial: bool,
}

/// Runs `olsim sweep`; prints where the results went.
pub fn sweep(args: SweepArgs) -> ExitCode {
    report(sweep_inner(args))
}

/// Runs `olsim merge`; prints where the table, charts and page went.
pub fn merge(args: MergeArgs) -> ExitCode {
    report(merge_inner(args))
}

fn report(result: Result<String, SweepError>) -> ExitCode {
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn sweep_inner(args: SweepArgs) -> Result<String, SweepError> {
    let mut spec = SweepSpec::load(&args.file)?;
    for set in &args.set {
        spec.set(set)?;
    }
    if let Some(seeds) = &args.seeds {
        spec.set_seeds_arg(seeds)?;
    }
    let shard = Shard::resolve(args.shard.as_deref(), |v| std::env::var(v).ok())?;
    let jobs = args.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let out = args
        .out
        .unwrap_or_else(|| Path::new("target/olsim-sweeps").join(&spec.name));
    let options = SweepOptions {
        shard,
        jobs,
        out,
        progress: !args.quiet,
    };
    let done = run::run(&spec, &options)?;
    Ok(format!(
        "sweep `{}` (id {}): ran {} of {} points (shard {}/{}; {} done by an earlier run) on \
         {} threads in {:.1} s\nresults: {}/points\nmerge: olsim merge {}\n",
        done.manifest.sweep,
        done.manifest.id,
        done.points.len() - done.resumed,
        done.manifest.total,
        shard.index,
        shard.count,
        done.resumed,
        jobs.max(1),
        done.wall_seconds,
        options.out.display(),
        options.out.display()
    ))
}

fn merge_inner(args: MergeArgs) -> Result<String, SweepError> {
    let out = args.out.unwrap_or_else(|| args.dirs[0].clone());
    let merged = merge::merge(
        &args.dirs,
        &MergeOptions {
            out,
            partial: args.partial,
        },
    )?;
    let mut text = format!(
        "sweep `{}` (id {}): merged {} of {} points",
        merged.sweep,
        merged.id,
        merged.rows.len(),
        merged.rows.len() + merged.missing.len()
    );
    if !merged.missing.is_empty() {
        text.push_str(" (--partial: the others have no result yet)");
    }
    text.push('\n');
    let (charts, pages): (Vec<&PathBuf>, Vec<&PathBuf>) = merged
        .files
        .iter()
        .partition(|f| f.extension().is_some_and(|e| e == "svg"));
    for file in pages {
        text.push_str(&format!("wrote {}\n", file.display()));
    }
    if let Some(first) = charts.first() {
        let dir = first.parent().unwrap_or(Path::new(""));
        text.push_str(&format!(
            "wrote {} charts in {}\n",
            charts.len(),
            dir.display()
        ));
    }
    Ok(text)
}
