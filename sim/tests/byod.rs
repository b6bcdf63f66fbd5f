//! Bring your own data: `source = "file"` Datanets run end to end on the embedded chain.
//! `scenarios/byod.toml` (a CSV classification Datanet and a JSONL text Datanet from
//! `scenarios/data/`) pays its file contributors from the on-chain pools, says that they have
//! no ground truth, and is deterministic; a CSV-only run values them by leave-one-out
//! retraining on held-out records of the file; malformed data files are errors naming file,
//! line and column; data attackers aimed at a file Datanet are validation errors.

use std::path::{Path, PathBuf};
use std::process::Command;

use olsim::engine::{self, RunOptions};
use olsim::report::Report;
use olsim::scenario::Scenario;

fn scenarios() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

fn run(s: &Scenario) -> Report {
    engine::run(s, &RunOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

/// Authors in a data file: the CSV's `author` column or the JSONL's `author` keys.
fn authors(file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(scenarios().join("data").join(file)).unwrap();
    let mut out: Vec<String> = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let author = if file.ends_with(".csv") {
            line.rsplit(',').next().unwrap().to_string()
        } else {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            v["author"].as_str().unwrap().to_string()
        };
        if author != "author" && !out.contains(&author) {
            out.push(author);
        }
    }
    out
}

#[test]
fn byod_pays_file_contributors_on_chain_says_there_is_no_ground_truth_and_is_deterministic() {
    let s = Scenario::load(&scenarios().join("byod.toml")).unwrap_or_else(|e| panic!("{e}"));
    let a = run(&s);
    let r = &a.result;
    let mut expected: Vec<String> = authors("desk-signals.csv")
        .into_iter()
        .map(|n| format!("desk-signals/contributor-{n}"))
        .collect();
    expected.extend(
        authors("clinic-notes.jsonl")
            .into_iter()
            .map(|n| format!("clinic-notes/contributor-{n}")),
    );
    assert_eq!(expected.len(), 11, "6 desks and 5 clinics: {expected:?}");
    let names: Vec<&str> = r.contributors.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, expected);
    let submitted: u64 = r.epochs.iter().map(|e| e.contributions[0]).sum();
    assert_eq!(submitted, 11, "one contribution per author: {:?}", r.epochs);
    for c in &r.contributors {
        assert_eq!(c.kind, "honest");
        assert!(c.records > 0, "{c:?}");
        assert_eq!(c.truth, None, "no generator truth for loaded data: {c:?}");
        assert_eq!(
            c.quality, None,
            "no generator quality for loaded data: {c:?}"
        );
        // Loaded data has no clean validation set: the default slash rule never convicts it.
        assert_eq!(c.harmful_contributions, 0, "{c:?}");
    }
    // Paid from the model's pool unless rejected by review. Under `influence` an accepted
    // contributor whose records never helped the served outputs on net earns nothing, at
    // most one per file; under the default `confident` rule, also one whose influence does
    // not clear its own spread: with about 20 records each over two epochs that is five of
    // the six desks (docs/metrics.md, "Reward rules").
    let mut by_influence = s.clone();
    by_influence.tokenomics.reward_rule = olsim::scenario::RewardRule::Influence;
    let by_influence = run(&by_influence).result;
    let unpaid = |r: &olsim::report::ResultSection, prefix: &str| -> Vec<String> {
        r.contributors
            .iter()
            .filter(|c| c.name.starts_with(prefix) && c.accepted > 0 && c.rewards == 0.0)
            .map(|c| c.name.clone())
            .collect()
    };
    for prefix in ["desk-signals/", "clinic-notes/"] {
        let unpaid = unpaid(&by_influence, prefix);
        assert!(unpaid.len() <= 1, "accepted but unpaid: {unpaid:?}");
    }
    assert_eq!(unpaid(r, "desk-signals/").len(), 5, "{:?}", r.contributors);
    assert!(
        unpaid(r, "clinic-notes/").is_empty(),
        "spans pay as influence does"
    );
    for prefix in ["desk-signals/", "clinic-notes/"] {
        let paid: f64 = r
            .contributors
            .iter()
            .filter(|c| c.name.starts_with(prefix))
            .map(|c| c.rewards)
            .sum();
        assert!(paid > 0.0, "{prefix} contributors earned nothing: {r:#?}");
    }
    let paid: f64 = r.contributors.iter().map(|c| c.rewards).sum();
    assert!((paid - r.economy.contributor_rewards).abs() < 1e-9);
    let pooled: f64 = r.epochs.iter().map(|e| e.contributor_pool).sum();
    assert!(paid > 0.0 && paid <= pooled + 1e-9, "{paid} of {pooled}");
    let truth = &r.fairness.truth;
    assert!(
        truth.contains("none for file Datanets `desk-signals`, `clinic-notes`"),
        "{truth}"
    );
    assert_eq!(r.fairness.spearman_vs_truth, None);
    let again = run(&s);
    assert_eq!(again.digest, a.digest);
    assert_eq!(again.result, a.result);
}

/// The CSV Datanet alone: every model is a small classifier, so leave-one-out retraining
/// values the file's contributors on records of the file held out of training.
const CSV_ONLY: &str = r#"
[run]
name = "byod-csv"
seed = 5
epochs = 2

[tokenomics]
review_quorum = 2

[[datanets]]
name = "desk-signals"
domain = "finance"
source = "file"
file = "data/desk-signals.csv"

[datanets.reviewers]
count = 3
accuracy = 1.0

[[models]]
name = "desk-direction"
kind = "classifier"
datanets = ["desk-signals"]
hidden = [16]

[models.lora]
rank = 2
alpha = 4.0

[models.training]
epochs = 3
batch_size = 16

[inference]
calls_per_epoch = 100
users = 2
calls_per_payment = 50
"#;

#[test]
fn leave_one_out_values_file_contributors_on_held_out_records() {
    let file = scenarios().join("byod-csv.toml").display().to_string();
    let s = Scenario::parse(&file, CSV_ONLY).unwrap_or_else(|e| panic!("{e}"));
    let r = run(&s).result;
    let truth = &r.fairness.truth;
    assert!(
        truth.starts_with("leave-one-out retraining value"),
        "{truth}"
    );
    assert!(truth.contains("held out of training"), "{truth}");
    assert_eq!(r.contributors.len(), 6);
    // Reviewers are never wrong here and the file has no duplicates: all accepted, all
    // trained on, all valued.
    for c in &r.contributors {
        assert_eq!(c.accepted, c.records, "{c:?}");
        assert!(c.truth.is_some_and(|v| v != 0.0), "{c:?}");
    }
    assert!(r.fairness.spearman_vs_truth.is_some(), "{:?}", r.fairness);
    assert!(r.economy.contributor_rewards > 0.0, "{:?}", r.economy);
}

/// The CSV-only scenario in a fresh folder `dir`, its data file being `csv` (as `data.csv`):
/// the scenario file's path and text.
fn with_csv(dir: &Path, csv: &str) -> (String, String) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("data.csv"), csv).unwrap();
    let text = CSV_ONLY.replace("data/desk-signals.csv", "data.csv");
    (dir.join("s.toml").display().to_string(), text)
}

#[test]
fn malformed_data_files_are_validation_errors_naming_file_line_and_column() {
    // Validation reads the data file as the run does, so `olsim validate` finds these
    // before any run, at the scenario's `file` field, with the data file's own position.
    let header = "f0,f1,f2,f3,f4,f5,f6,f7,label,author";
    let row = "0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8";
    let cases = [
        (
            format!("{header}\n{row},1,ann\n{row},1,bob\n0.1,x,0.3,0.4,0.5,0.6,0.7,0.8,0,ann\n"),
            "data.csv:4:5: expected a finite number for feature `f1`, found \"x\"",
        ),
        (
            "f0,f1,label,author\n0.1,0.2,1,ann\n".to_string(),
            "data.csv:1:1: expected 8 feature columns",
        ),
        (
            format!("{header}\n\n{row},1,ann\n{row},2,bob\n"),
            "data.csv:4: expected a label 0 or 1",
        ),
        (format!("{header}\n"), "no items"),
    ];
    let base = std::env::temp_dir().join(format!("olsim-byod-{}", std::process::id()));
    for (k, (csv, expected)) in cases.iter().enumerate() {
        let (file, text) = with_csv(&base.join(k.to_string()), csv);
        let err = Scenario::parse(&file, &text).expect_err(expected);
        let d = &err.diagnostics()[0];
        assert_eq!(d.path, "datanets[0].file", "{d}");
        assert!(d.message.contains(expected), "{d}");
    }
    std::fs::remove_dir_all(&base).unwrap();
}

#[test]
fn an_attacker_aimed_at_a_file_datanet_is_a_validation_error() {
    let dir = std::env::temp_dir().join(format!("olsim-byod-attack-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string(scenarios().join("byod.toml"))
        .unwrap()
        .replace("data/", &format!("{}/", scenarios().join("data").display()))
        + "\n[[attackers]]\nkind = \"label_flip\"\ndatanet = \"desk-signals\"\n";
    let file = dir.join("attack.toml");
    std::fs::write(&file, &text).unwrap();
    let line = text.lines().count();
    let err = Scenario::load(&file).expect_err("label_flip on a file Datanet");
    let d = &err.diagnostics()[0];
    assert_eq!(
        (d.line, d.column, d.path.as_str()),
        (line, 1, "attackers[0].datanet")
    );
    assert!(
        d.message.starts_with("attackers need a generated Datanet"),
        "{d}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_olsim"))
        .arg("validate")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "attack.toml:{line}:1: attackers[0].datanet: attackers need"
        )),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
