//! One engine epoch: the epoch engine (agents, transactions on the embedded chain, training,
//! serving, attribution, settlement) on two shipped scenarios cut to one and to two epochs.
//! - `engine_epoch/<scenario>/1`: setup (deployment, data generation) and one epoch;
//! - `engine_epoch/<scenario>/2`: the same and a second epoch.
//!
//! After criterion's figures a summary table prints, per scenario, the median of five timed
//! runs of each cut, the marginal epoch (two epochs less one) as a ratio to the one-epoch run
//! measured in the same process, and where the marginal epoch's time goes by engine stage (the
//! report's `perf` stages of the two-epoch run less those of the one-epoch run).
//! Run: `cargo bench -p olsim-benches --bench engine_epoch`

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::Criterion;
use olsim::engine::{self, RunOptions};
use olsim::report::Report;
use olsim::scenario::Scenario;

const SCENARIOS: [&str; 2] = ["smoke", "attack-label-flip"];
const TIMED_RUNS: usize = 5;

fn scenario(name: &str, epochs: u32) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(format!("{name}.toml"));
    let mut s = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    s.run.epochs = epochs;
    s
}

fn run(s: &Scenario) -> Report {
    engine::run(s, &RunOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

/// The run with the median total wall time of [`TIMED_RUNS`].
fn median_run(s: &Scenario) -> Report {
    let mut runs: Vec<Report> = (0..TIMED_RUNS).map(|_| run(s)).collect();
    runs.sort_by(|a, b| a.perf.total_seconds.total_cmp(&b.perf.total_seconds));
    runs.swap_remove(TIMED_RUNS / 2)
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut group = c.benchmark_group("engine_epoch");
    for name in SCENARIOS {
        for epochs in [1, 2] {
            let s = scenario(name, epochs);
            group.bench_function(format!("{name}/{epochs}"), |b| {
                b.iter(|| black_box(run(&s)))
            });
        }
    }
    group.finish();

    println!("\nengine_epoch summary (median of {TIMED_RUNS} runs each; wall seconds)");
    println!(
        "| scenario | setup + 1 epoch | 2 epochs | marginal epoch | epoch / (setup + 1) | \
         marginal epoch by stage |"
    );
    println!("|---|---:|---:|---:|---:|---|");
    for name in SCENARIOS {
        let one = median_run(&scenario(name, 1));
        let two = median_run(&scenario(name, 2));
        let epoch = two.perf.total_seconds - one.perf.total_seconds;
        let stages: Vec<String> = two
            .perf
            .stages
            .iter()
            .map(|(stage, s)| {
                let before = one
                    .perf
                    .stages
                    .iter()
                    .find(|(n, _)| n == stage)
                    .map_or(0.0, |(_, s)| *s);
                format!("{stage} {:.4}", s - before)
            })
            .collect();
        println!(
            "| {name} | {:.4} | {:.4} | {epoch:.4} | {:.3} | {} |",
            one.perf.total_seconds,
            two.perf.total_seconds,
            epoch / one.perf.total_seconds,
            stages.join(", ")
        );
    }
}
