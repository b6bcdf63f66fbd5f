use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use alloy_primitives::U256;
use olsim_chain::protocol::{OPEN, ProtocolParams};
use olsim_ml::data::{Datanet, Domain};
use olsim_ml::model::LoraTargets;

use super::convert::{from_fixed, to_bps, to_fixed};
use super::*;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The shipped scenario files, sorted.
fn shipped() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

fn load(name: &str) -> Scenario {
    Scenario::load(&repo().join("scenarios").join(name)).unwrap_or_else(|e| panic!("{e}"))
}

/// Parses `text` as `file`, expecting errors; returns them.
fn errors(file: &str, text: &str) -> Vec<Diagnostic> {
    match Scenario::parse(file, text) {
        Ok(_) => panic!("{file} was accepted"),
        Err(e) => e.diagnostics().to_vec(),
    }
}

/// The one error of `text`, checked to carry file, line, column and path in its display.
fn single(text: &str, line: usize, column: usize, path: &str) -> String {
    let errs = errors("case.toml", text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let d = &errs[0];
    assert_eq!(
        (d.line, d.column, d.path.as_str()),
        (line, column, path),
        "{d}"
    );
    let shown = d.to_string();
    assert!(
        shown.starts_with(&format!("case.toml:{line}:{column}: {path}: ")),
        "{shown}"
    );
    shown
}

const MINIMAL: &str = "[run]\nname = \"t\"\n\n[[datanets]]\nname = \"a\"\ndomain = \"finance\"\n";

#[test]
fn every_shipped_scenario_validates() {
    let files = shipped();
    let names: BTreeSet<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for required in [
        "smoke.toml",
        "baseline.toml",
        "grants.toml",
        "governance.toml",
        "scale.toml",
    ] {
        assert!(names.contains(required), "scenarios/{required} is missing");
    }
    for kind in AttackKind::ALL {
        let name = format!("attack-{}.toml", kind.name().replace('_', "-"));
        assert!(names.contains(&name), "scenarios/{name} is missing");
        let s = load(&name);
        assert!(
            s.attackers.iter().any(|a| a.kind == kind),
            "{name} has no `{}` attacker",
            kind.name()
        );
    }
    for f in &files {
        let s = Scenario::load(f).unwrap_or_else(|e| panic!("{e}"));
        for (i, d) in s.datanets.iter().enumerate() {
            if d.source == Source::Generated {
                s.datanet_spec(i)
                    .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            }
        }
        for (i, m) in s.models.iter().enumerate() {
            if m.kind == ModelKind::Classifier {
                s.mlp_config(i)
                    .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            }
        }
        for p in &s.proposals {
            p.change().unwrap();
        }
    }
}

#[test]
fn scale_and_smoke_have_their_sizes() {
    let scale = load("scale.toml");
    assert!(scale.contributor_count() >= 100_000);
    assert!(scale.inference_calls() >= 1_000_000);
    let smoke = load("smoke.toml");
    assert_eq!(smoke.datanets.len(), 1);
    assert_eq!(smoke.models.len(), 1);
    assert!((2..=3).contains(&smoke.run.epochs));
    assert!(smoke.contributor_count() <= 10);
    let grants = load("grants.toml");
    let tiers: BTreeSet<u8> = grants
        .grants
        .cohorts
        .iter()
        .map(|c| c.tier.index())
        .collect();
    assert_eq!(tiers, BTreeSet::from([0, 1, 2]));
    assert!(!load("governance.toml").proposals.is_empty());
}

#[test]
fn unknown_field_lists_the_allowed_names() {
    let text = format!("{MINIMAL}\n[datanets.contributors]\ncout = 3\n");
    let shown = single(&text, 9, 1, "datanets[0].contributors.cout");
    for allowed in ["count", "records", "quality", "coverage", "arrival_epochs"] {
        assert!(shown.contains(&format!("`{allowed}`")), "{shown}");
    }
}

#[test]
fn wrong_type_names_the_expected_type() {
    let text = format!(
        "{MINIMAL}\n[[datanets]]\nname = \"b\"\ndomain = \"gaming\"\n\n[datanets.contributors]\ncount = \"many\"\n"
    );
    let shown = single(&text, 13, 9, "datanets[1].contributors.count");
    assert!(shown.contains("invalid type: string \"many\""), "{shown}");
    assert!(shown.contains("u32"), "{shown}");
}

#[test]
fn unknown_enum_value_lists_the_allowed_values() {
    let shown = single(
        "[run]\nname = \"t\"\ndevice = \"gpu\"\n",
        3,
        10,
        "run.device",
    );
    assert!(
        shown.contains("`cpu`") && shown.contains("`cuda`"),
        "{shown}"
    );
}

#[test]
fn missing_field_is_named() {
    let shown = single("[run]\nepochs = 2\n", 1, 1, "run.name");
    assert!(shown.contains("missing field `name`"), "{shown}");
}

#[test]
fn range_must_have_two_ends() {
    let text = format!("{MINIMAL}[datanets.contributors]\nquality = [0.1, 0.2, 0.3]\n");
    let shown = single(&text, 8, 11, "datanets[0].contributors.quality");
    assert!(shown.contains("exactly two numbers"), "{shown}");
}

#[test]
fn out_of_range_value_says_what_is_allowed() {
    let text = format!("{MINIMAL}[datanets.reviewers]\naccuracy = 1.5\n");
    let shown = single(&text, 8, 1, "datanets[0].reviewers.accuracy");
    assert!(
        shown.contains("got 1.5; allowed: a fraction in [0, 1]"),
        "{shown}"
    );
}

#[test]
fn bad_reference_lists_the_defined_names() {
    let text = format!(
        "{MINIMAL}\n[[models]]\nname = \"m\"\nkind = \"classifier\"\ndatanets = [\"a\", \"nope\"]\n"
    );
    let shown = single(&text, 11, 18, "models[0].datanets[1]");
    assert!(
        shown.contains("no Datanet is named `nope`; allowed: `a`"),
        "{shown}"
    );
}

#[test]
fn syntax_error_is_located_under_its_table() {
    let text = format!(
        "{MINIMAL}\n[[datanets]]\nname = \"b\"\ndomain = \"gaming\"\n[datanets.contributors]\ncount = = 3\n"
    );
    let errs = errors("case.toml", &text);
    let d = &errs[0];
    assert_eq!(
        (d.line, d.column, d.path.as_str()),
        (12, 9, "datanets[1].contributors.count"),
        "{d}"
    );
    assert!(
        d.to_string()
            .starts_with("case.toml:12:9: datanets[1].contributors.count: TOML syntax error"),
        "{d}"
    );
}

#[test]
fn semantic_errors_are_reported_together_in_file_order() {
    let text = "[run]\nname = \"t\"\nepochs = 3\n\n[tokenomics]\nslash_fraction = 0.33333\n\n\
                [tokenomics.fee_split]\ncontributors_bps = 5000\nowner_bps = 3000\n\
                stakers_bps = 2000\ntreasury_bps = 1000\n\n[[datanets]]\nname = \"a\"\n\
                domain = \"finance\"\n\n[datanets.contributors]\ncount = 0\n\n[[attackers]]\n\
                kind = \"sybil\"\ndatanet = \"a\"\nrate = 0.3\n\n[[proposals]]\nepoch = 2\n\
                proposer = \"whales\"\nparameter = \"review_quorum\"\nvalue = 0\n";
    let errs = errors("many.toml", text);
    let found: Vec<(usize, &str)> = errs.iter().map(|d| (d.line, d.path.as_str())).collect();
    assert_eq!(
        found,
        [
            (6, "tokenomics.slash_fraction"),
            (8, "tokenomics.fee_split"),
            (19, "datanets[0].contributors.count"),
            (24, "attackers[0].rate"),
            (27, "proposals[0].epoch"),
            (28, "proposals[0].proposer"),
            (30, "proposals[0].value"),
        ],
        "{errs:#?}"
    );
}
