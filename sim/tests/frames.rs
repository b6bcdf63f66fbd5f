//! Results as data: the Parquet tables `olsim run` writes beside its report have the columns,
//! rows and metadata of the report they come from, and two runs give byte-identical files;
//! the Python example of docs/analysis.md runs on a run and a merged sweep and prints what it
//! should.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, UInt64Type};
use olsim::frames::run::FILES;
use olsim::report::{REPORT_VERSION, Report};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

const OLSIM: &str = env!("CARGO_BIN_EXE_olsim");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A fresh folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("frames-tests")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `olsim ARGS...` from the repository root and panics with its output on failure.
fn olsim(args: &[&str]) {
    let out = Command::new(OLSIM)
        .current_dir(root())
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "olsim {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `olsim run scenarios/smoke.toml` into a folder named `name`.
fn smoke_run(name: &str) -> PathBuf {
    let dir = scratch(name).join("report");
    olsim(&[
        "run",
        "scenarios/smoke.toml",
        "--quiet",
        "--out",
        dir.to_str().unwrap(),
    ]);
    dir
}

/// One smoke run shared by the tests of this file.
fn shared_run() -> &'static Path {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    RUN.get_or_init(|| smoke_run("shared"))
}

/// A Parquet file read back: column names, key-value metadata and its batches.
struct Table {
    columns: Vec<String>,
    metadata: BTreeMap<String, String>,
    batches: Vec<RecordBatch>,
}

impl Table {
    fn read(path: &Path) -> Table {
        let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        let metadata = olsim::frames::metadata(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .into_iter()
            .collect();
        let columns = builder
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let batches = builder.build().unwrap().map(Result::unwrap).collect();
        Table {
            columns,
            metadata,
            batches,
        }
    }

    fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    fn u64s(&self, name: &str) -> Vec<Option<u64>> {
        self.batches
            .iter()
            .flat_map(|b| {
                b[name]
                    .as_primitive::<UInt64Type>()
                    .iter()
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn f64s(&self, name: &str) -> Vec<Option<f64>> {
        self.batches
            .iter()
            .flat_map(|b| {
                b[name]
                    .as_primitive::<Float64Type>()
                    .iter()
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn texts(&self, name: &str) -> Vec<Option<String>> {
        self.batches
            .iter()
            .flat_map(|b| {
                b[name]
                    .as_string::<i32>()
                    .iter()
                    .map(|s| s.map(str::to_string))
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

#[test]
fn a_runs_tables_match_its_report_and_two_runs_give_identical_files() {
    let dir = shared_run();
    let report =
        Report::from_json(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    let r = &report.result;
    let mut listing: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    listing.sort();
    let mut expected: Vec<String> = ["report.json", "report.md", "report.html"]
        .into_iter()
        .chain(FILES)
        .map(String::from)
        .collect();
    expected.sort();
    assert_eq!(listing, expected);

    let rows = [
        r.epochs.len(),
        r.contributors.len(),
        r.attacks.len(),
        r.grants.len(),
        r.governance.len(),
        r.models.len(),
        (r.chain.transactions + r.chain.refused) as usize,
    ];
    let first_columns = [
        "epoch",
        "name",
        "kind",
        "tier",
        "description",
        "name",
        "epoch",
    ];
    for ((file, rows), first) in FILES.iter().zip(rows).zip(first_columns) {
        let t = Table::read(&dir.join(file));
        assert_eq!(t.rows(), rows, "{file}");
        assert_eq!(t.columns[..3], ["scenario", "seed", first], "{file}");
        assert_eq!(t.metadata["olsim.digest"], report.digest, "{file}");
        assert_eq!(t.metadata["olsim.scenario"], "smoke", "{file}");
        assert_eq!(t.metadata["olsim.seed"], report.scenario.seed.to_string());
        assert_eq!(
            t.metadata["olsim.report_version"],
            REPORT_VERSION.to_string()
        );
        assert_eq!(t.metadata["olsim.table"], file.trim_end_matches(".parquet"));
        assert!(
            t.u64s("seed")
                .iter()
                .all(|s| *s == Some(report.scenario.seed))
        );
    }
    // Smoke refuses nothing; the refused rows' columns are unit-tested in frames::run.

    let people = Table::read(&dir.join("contributors.parquet"));
    for column in ["group", "quality", "coverage", "truth", "rewards"] {
        assert!(people.columns.iter().any(|c| c == column), "{column}");
    }
    let names: Vec<Option<String>> = r
        .contributors
        .iter()
        .map(|c| Some(c.name.clone()))
        .collect();
    assert_eq!(people.texts("name"), names);
    let rewards: Vec<Option<f64>> = r.contributors.iter().map(|c| Some(c.rewards)).collect();
    assert_eq!(people.f64s("rewards"), rewards);
    let quality: Vec<Option<f64>> = r.contributors.iter().map(|c| c.quality).collect();
    assert_eq!(people.f64s("quality"), quality);

    // The transaction log adds up to the report's chain figures.
    let txs = Table::read(&dir.join("transactions.parquet"));
    let status = txs.texts("status");
    let included = status
        .iter()
        .filter(|s| s.as_deref() == Some("included"))
        .count();
    assert_eq!(included as u64, r.chain.transactions);
    let gas: u64 = txs.u64s("gas_used").iter().flatten().sum();
    assert_eq!(gas, r.chain.gas_used);
    let fees: u128 = txs
        .texts("fee_wei")
        .iter()
        .map(|f| f.as_deref().unwrap().parse::<u128>().unwrap())
        .sum();
    assert_eq!(
        olsim::units::to_open(alloy_primitives::U256::from(fees)),
        r.chain.gas_fees_eth
    );
    let mut refusals: BTreeMap<(String, String), u64> = BTreeMap::new();
    let (actions, errors, reasons) = (txs.texts("action"), txs.texts("error"), txs.texts("reason"));
    for (i, s) in status.iter().enumerate() {
        let refused = s.as_deref() == Some("refused");
        assert_eq!(errors[i].is_some(), refused, "row {i}");
        assert_eq!(reasons[i].is_some(), refused, "row {i}");
        if refused {
            *refusals
                .entry((actions[i].clone().unwrap(), errors[i].clone().unwrap()))
                .or_default() += 1;
        }
    }
    let expected: BTreeMap<(String, String), u64> = r
        .chain
        .refusals
        .iter()
        .map(|f| ((f.action.clone(), f.error.clone()), f.count))
        .collect();
    assert_eq!(refusals, expected);

    // Byte-identical files from a second run: the writer adds nothing run-specific (no time,
    // no random ids), so the tables are a pure function of the scenario and seed.
    let again = smoke_run("again");
    for file in FILES {
        assert!(
            std::fs::read(dir.join(file)).unwrap() == std::fs::read(again.join(file)).unwrap(),
            "{file} differs between two runs"
        );
    }
}

/// The ```python block of docs/analysis.md.
fn analysis_script() -> String {
    let doc = std::fs::read_to_string(root().join("docs/analysis.md")).unwrap();
    let (_, rest) = doc
        .split_once("```python\n")
        .expect("docs/analysis.md has a ```python block");
    let (script, _) = rest.split_once("\n```").expect("the block is closed");
    script.to_string()
}

#[test]
fn the_analysis_example_runs_on_a_run_and_a_merged_sweep() {
    let python = root().join(".venv-analysis/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run scripts/setup-python (scripts/setup runs it) to create the \
         analysis venv with polars",
        python.display()
    );
    let run = shared_run();
    let dir = scratch("analysis");
    let sweep = dir.join("sweep");
    olsim(&[
        "sweep",
        "scenarios/smoke.toml",
        "--quiet",
        "--set",
        "run.epochs=2",
        "--set",
        "tokenomics.slash_fraction=0.1,0.4",
        "--out",
        sweep.to_str().unwrap(),
    ]);
    olsim(&["merge", sweep.to_str().unwrap()]);
    let script = dir.join("analysis.py");
    std::fs::write(&script, analysis_script()).unwrap();
    let out = Command::new(&python)
        .arg(&script)
        .arg(run)
        .arg(&sweep)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let report =
        Report::from_json(&std::fs::read_to_string(run.join("report.json")).unwrap()).unwrap();
    let r = &report.result;
    let txs = r.chain.transactions + r.chain.refused;
    let point_contributors: usize = (0..2)
        .map(|i| {
            let text = std::fs::read_to_string(sweep.join(format!("points/{i:06}.json"))).unwrap();
            Report::from_json(&text).unwrap().result.contributors.len()
        })
        .sum();
    for line in [
        format!("run contributors: {} rows", r.contributors.len()),
        format!("run transactions: {txs} rows"),
        "sweep points: 2 rows".to_string(),
        "tokenomics.slash_fraction=0.1 points=1".to_string(),
        "tokenomics.slash_fraction=0.4 points=1".to_string(),
        format!("sweep contributors: {point_contributors} rows"),
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "no line `{line}` in:\n{stdout}"
        );
    }
    // The per-kind and per-axis frames are printed.
    assert!(
        stdout.contains("label_flip") && stdout.contains("honest"),
        "{stdout}"
    );
}
