use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use alloy_primitives::U256;
use olsim_chain::protocol::{OPEN, ProtocolParams};
use olsim_ml::data::{Datanet, Domain};
use olsim_ml::model::LoraTargets;

use super::convert::to_bps;
use super::*;
use crate::units::{from_fixed, to_fixed};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The shipped scenario files, sorted, but `scale-10x.toml`, which validation refuses on a
/// machine of less memory than its estimate (`sim/tests/scenarios.rs` checks that this is
/// its only fault).
fn shipped() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .filter(|p| !p.ends_with("scale-10x.toml"))
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

#[test]
fn values_outside_the_contracts_bounds_are_located_errors() {
    // Each of these would make the deployment (or the governed setter) revert with
    // OutOfBounds: validation names the field and the contract's bounds instead.
    let text = "[run]\nname = \"t\"\nepoch_seconds = 30\n\n[tokenomics]\nreview_quorum = 20\n\
                voting_period_s = 60\nquorum_fraction = 0.0\nmin_stake = 20000000\n\
                timelock_delay_s = 9999999\n\n[[datanets]]\nname = \"a\"\ndomain = \"finance\"\n\n\
                [datanets.reviewers]\ncount = 15\n";
    let errs = errors("bounds.toml", text);
    let found: Vec<(usize, &str)> = errs.iter().map(|d| (d.line, d.path.as_str())).collect();
    assert_eq!(
        found,
        [
            (3, "run.epoch_seconds"),
            (6, "tokenomics.review_quorum"),
            (7, "tokenomics.voting_period_s"),
            (8, "tokenomics.quorum_fraction"),
            (9, "tokenomics.min_stake"),
            (10, "tokenomics.timelock_delay_s"),
            (17, "datanets[0].reviewers.count"),
        ],
        "{errs:#?}"
    );
    assert!(errs[1].to_string().contains("from 1 to 15"), "{}", errs[1]);
}

/// A scenario with every optional field set and every array holding an entry, so that
/// serialising it names every field of the schema.
fn exhaustive() -> Scenario {
    let attacker = Attacker {
        kind: AttackKind::Sybil,
        count: 1,
        start_epoch: 0,
        datanet: Some("a".into()),
        model: Some("m".into()),
        rate: Some(0.5),
        identities: Some(3),
        perturb: Some(0.1),
        calls_per_epoch: Some(5),
        stake: Some(10.0),
    };
    Scenario {
        run: Run {
            name: "all".into(),
            description: String::new(),
            seed: 1,
            epochs: 2,
            epoch_seconds: 10,
            chain: ChainBackend::Anvil,
            device: DeviceKind::Cuda,
            impersonate: true,
            truth_subsets: 8,
        },
        tokenomics: Tokenomics::default(),
        datanets: vec![DatanetConfig {
            name: "a".into(),
            domain: Domain::Finance,
            task: Task::Classification,
            source: Source::File,
            file: Some("a.csv".into()),
            contributors: Some(ContributorGroups(vec![Contributors {
                name: Some("desks".into()),
                stake: Some(100.0),
                ..Contributors::default()
            }])),
            text: Some(TextConfig::default()),
            reviewers: Reviewers::default(),
        }],
        models: vec![ModelConfig {
            name: "m".into(),
            kind: ModelKind::Classifier,
            datanets: vec!["a".into()],
            price: 0.01,
            train_epoch: 0,
            retrain_every: 0,
            weight: 1.0,
            hidden: Some(vec![4]),
            lora: LoraSection::default(),
            training: TrainingSection::default(),
        }],
        inference: Inference::default(),
        stakers: vec![StakerGroup {
            name: "s".into(),
            count: 1,
            stake: 1.0,
            participation: 1.0,
        }],
        proposals: vec![Proposal {
            epoch: 0,
            proposer: "s".into(),
            parameter: Parameter::MinStake,
            value: toml::Value::Integer(1),
            support: 1.0,
            description: String::new(),
        }],
        attackers: vec![attacker],
        grants: Grants {
            cohorts: vec![Cohort {
                tier: Tier::Building,
                teams: 1,
                epoch: 0,
                amount_usd: Some(Interval::new(50_000, 60_000)),
                budget_usd: Some(60_000),
                milestones: 1,
                milestone_epochs: 1,
                success_probability: 1.0,
                model_kind: ModelKind::Classifier,
                datanet: "a".into(),
                calls_per_epoch: 1,
                price: 0.01,
                weight: 1.0,
            }],
            ..Grants::default()
        },
        expect: vec![crate::scenario::expect::Expectation {
            path: "fairness.gini".into(),
            below: Some(1.0),
            above: Some(0.0),
            at_most: Some(1.0),
            at_least: Some(0.0),
            equals: Some(toml::Value::Boolean(true)),
            why: "every field".into(),
        }],
        dir: None,
    }
}

/// Dotted paths of every leaf under `v` (`datanets[].contributors.count`); arrays of
/// tables contribute `[]`, other arrays are leaves.
fn leaf_paths(prefix: &str, v: &toml::Value, out: &mut BTreeSet<String>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaf_paths(&p, v, out);
            }
        }
        toml::Value::Array(a) if a.first().is_some_and(toml::Value::is_table) => {
            for item in a {
                leaf_paths(&format!("{prefix}[]"), item, out);
            }
        }
        _ => {
            out.insert(prefix.to_string());
        }
    }
}

fn schema_paths() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    leaf_paths("", &toml::Value::try_from(exhaustive()).unwrap(), &mut out);
    out
}

fn docs() -> String {
    std::fs::read_to_string(repo().join("docs/scenarios.md")).unwrap()
}

#[test]
fn reference_page_documents_exactly_the_schema_fields() {
    let schema = schema_paths();
    assert!(schema.contains("datanets[].contributors.count"));
    assert!(schema.contains("grants.cohorts[].success_probability"));
    let documented: BTreeSet<String> = docs()
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`'))
        .map(|(path, _)| path.to_string())
        .filter(|p| p.contains('.'))
        .collect();
    let missing: Vec<_> = schema.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&schema).collect();
    assert!(
        missing.is_empty(),
        "fields missing from docs/scenarios.md: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "docs/scenarios.md names unknown fields: {stale:?}"
    );
}

#[test]
fn reference_example_validates_and_sets_every_field() {
    let text = docs();
    let start = text.find("## Complete example").unwrap();
    let block = &text[start..];
    let body = &block[block.find("```toml\n").unwrap() + 8..];
    let example = &body[..body.find("```").unwrap()];
    let s = Scenario::parse("docs/scenarios.md", example).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.attackers.len(), AttackKind::ALL.len());
    let mut set = BTreeSet::new();
    leaf_paths(
        "",
        &example.parse::<toml::Table>().unwrap().into(),
        &mut set,
    );
    let unset: Vec<_> = schema_paths()
        .into_iter()
        .filter(|p| !set.contains(p) && p != "datanets[].file")
        .collect();
    assert!(
        unset.is_empty(),
        "the complete example leaves out {unset:?}"
    );
}

#[test]
fn default_tokenomics_are_the_protocol_defaults() {
    assert_eq!(
        Tokenomics::default().protocol_params().unwrap(),
        ProtocolParams::default()
    );
}

#[test]
fn tokenomics_convert_exactly() {
    let t = Tokenomics {
        min_stake: 0.1,
        slash_fraction: 0.0125,
        quorum_fraction: 1.0,
        open_price_usd: 1.23456789,
        proposal_threshold: 12_345.678,
        ..Tokenomics::default()
    };
    let p = t.protocol_params().unwrap();
    assert_eq!(p.min_stake, OPEN / U256::from(10));
    assert_eq!(p.slash_bps, 125);
    assert_eq!(p.quorum_bps, 10_000);
    assert_eq!(p.open_price_usd_e8, U256::from(123_456_789u64));
    assert_eq!(
        p.proposal_threshold,
        U256::from(12_345_678u64) * OPEN / U256::from(1000)
    );
    assert_eq!(from_fixed(p.proposal_threshold, 18), 12_345.678);
    assert!(to_fixed(1e-19, 18).is_err());
    assert!(to_fixed(-1.0, 18).is_err());
    assert!(to_bps(0.00005).is_err());
    assert!(to_bps(1.0001).is_err());
    let bad = Tokenomics {
        review_quorum: 0,
        open_price_usd: 0.0,
        ..Tokenomics::default()
    };
    let fields: Vec<String> = bad
        .convert()
        .unwrap_err()
        .into_iter()
        .map(|e| e.field)
        .collect();
    assert_eq!(fields, ["review_quorum", "open_price_usd"]);
}

#[test]
fn proposals_become_typed_governance_calls() {
    let s = load("governance.toml");
    let changes: Vec<ParamChange> = s.proposals.iter().map(|p| p.change().unwrap()).collect();
    assert_eq!(
        changes,
        [
            ParamChange::FeeSplit(olsim_chain::protocol::FeeSplit {
                contributors_bps: 5000,
                owner_bps: 2000,
                stakers_bps: 2000,
                treasury_bps: 1000,
            }),
            ParamChange::MinStake(U256::from(250) * OPEN),
            ParamChange::SlashBps(500),
        ]
    );
    let applied = s.proposals[1].apply(&s.tokenomics).unwrap();
    assert_eq!(applied.min_stake, 250.0);
    let wrong = Proposal {
        value: toml::Value::String("lots".into()),
        ..s.proposals[1].clone()
    };
    let e = wrong.change().unwrap_err();
    assert_eq!(e.field, "min_stake");
    assert!(e.message.contains("a number (OPEN)"), "{e}");
}

#[test]
fn generated_datanet_spec_holds_every_contributor_and_generates() {
    let s = load("attack-sybil.toml");
    let g = s.datanet_spec(0).unwrap();
    let honest = s.datanets[0].contributor_groups()[0].count as usize;
    let sybil = &s.attackers[0];
    assert_eq!(
        g.spec.contributors.len(),
        honest + (sybil.count * sybil.identities()) as usize
    );
    assert_eq!(g.groups.len(), sybil.count as usize);
    for group in &g.groups {
        assert_eq!(group.identities.len(), sybil.identities() as usize);
        let specs: Vec<_> = group
            .identities
            .iter()
            .map(|id| &g.spec.contributors[id.0 as usize])
            .collect();
        // One actor's data, split evenly: same quality, counts within one of each other.
        assert!(specs.iter().all(|c| c.quality == specs[0].quality));
        let records: Vec<usize> = specs.iter().map(|c| c.records).collect();
        assert!(records.iter().max().unwrap() - records.iter().min().unwrap() <= 1);
    }
    assert_eq!(g, s.datanet_spec(0).unwrap());

    let smoke = load("smoke.toml");
    let g = smoke.datanet_spec(0).unwrap();
    let behaviours: BTreeSet<&str> = g
        .spec
        .contributors
        .iter()
        .map(|c| c.behaviour.name())
        .collect();
    assert_eq!(behaviours, BTreeSet::from(["honest", "label_flip"]));
    let datanet = Datanet::generate(&g.spec).unwrap();
    assert_eq!(datanet.contributors.len(), 7);
    assert!(datanet.records.len() >= 7 * 20);
}

#[test]
fn model_configs_follow_the_scenario() {
    let s = load("baseline.toml");
    let mlp = s.mlp_config(0).unwrap();
    assert_eq!(mlp.input_dim, Domain::Finance.dim());
    assert_eq!(mlp.hidden, [32, 32]);
    let lm = &s.models[1];
    let lora = lm.lora_config();
    assert_eq!(
        (lora.rank, lora.alpha, lora.targets),
        (8, 16.0, LoraTargets::All)
    );
    assert!(matches!(
        s.mlp_config(1),
        Err(ConvertError::NotClassifier(_))
    ));
    assert_eq!(lm.train_config(9).seed, 9);
    assert!(matches!(
        s.datanet_spec(5),
        Err(ConvertError::NoSuchEntry { index: 5, .. })
    ));
}

#[test]
fn lora_rank_is_checked_against_the_classifier_layers() {
    let text = format!(
        "{MINIMAL}\n[[models]]\nname = \"m\"\nkind = \"classifier\"\ndatanets = [\"a\"]\n\n[models.lora]\nrank = 8\n"
    );
    let shown = single(&text, 14, 1, "models[0].lora.rank");
    assert!(shown.contains("exceeds min(in, out) = 2"), "{shown}");
}

#[test]
fn impossible_combinations_are_rejected() {
    let cases = [
        // A language model cannot train on feature records.
        (
            "\n[[models]]\nname = \"m\"\nkind = \"language_model\"\ndatanets = [\"a\"]\n",
            "models[0].datanets[0]",
            "task = \"text\"",
        ),
        // Fewer reviewers than the quorum: nothing is ever decided.
        (
            "[datanets.reviewers]\ncount = 1\n",
            "datanets[0].reviewers.count",
            "review_quorum = 2",
        ),
        // A field of another attacker kind.
        (
            "\n[[attackers]]\nkind = \"spammer\"\ndatanet = \"a\"\nrate = 0.5\n",
            "attackers[0].rate",
            "allowed for this kind: kind, count, start_epoch, datanet",
        ),
        // A governance capturer that cannot propose.
        (
            "\n[[attackers]]\nkind = \"governance_capture\"\nstake = 5000\n",
            "attackers[0].stake",
            "proposal_threshold = 10000",
        ),
        // A grant above its tier.
        (
            "\n[[grants.cohorts]]\ntier = \"exploration\"\nteams = 1\ndatanet = \"a\"\namount_usd = [25000, 60000]\n",
            "grants.cohorts[0].amount_usd",
            "[25000, 50000]",
        ),
        // Demand with nothing to call.
        (
            "\n[inference]\ncalls_per_epoch = 10\n",
            "inference.calls_per_epoch",
            "no [[models]] entry",
        ),
        // A stake below the registry's minimum.
        (
            "[datanets.contributors]\nstake = 50\n",
            "datanets[0].contributors.stake",
            "min_stake = 100",
        ),
        // A second generated Datanet of the same domain.
        (
            "\n[[datanets]]\nname = \"b\"\ndomain = \"finance\"\n",
            "datanets[1].domain",
            "one generated Datanet per domain",
        ),
    ];
    for (extra, path, allowed) in cases {
        let errs = errors("case.toml", &format!("{MINIMAL}{extra}"));
        assert!(
            errs.iter()
                .any(|d| d.path == path && d.message.contains(allowed)),
            "{extra}: {errs:#?}"
        );
    }
}

#[test]
fn file_datanets_need_an_existing_file_of_the_task_type() {
    let dir = std::env::temp_dir().join(format!("olsim-scenario-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let header = "price_change,volume_z,spread_bps,volatility,order_imbalance,funding_rate,\
                  open_interest,sentiment,label,author";
    std::fs::write(
        dir.join("records.csv"),
        format!("{header}\n0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,1,alice\n"),
    )
    .unwrap();
    // `validate` reads the file: a malformed row or a label the classifiers cannot learn
    // is found before a run, located in the data file and at the scenario's `file`.
    std::fs::write(
        dir.join("bad-row.csv"),
        format!("{header}\n0.1,0.2,oops,0.4,0.5,0.6,0.7,0.8,1,alice\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("bad-label.csv"),
        format!("{header}\n0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,7,alice\n"),
    )
    .unwrap();
    std::fs::write(dir.join("bad.jsonl"), "{\"author\": \"a\", \"text\": \n").unwrap();
    let file = dir.join("s.toml").display().to_string();
    let text = |name: &str| {
        format!(
            "[run]\nname = \"t\"\n\n[[datanets]]\nname = \"a\"\ndomain = \"finance\"\nsource = \"file\"\nfile = \"{name}\"\n"
        )
    };
    let s = Scenario::parse(&file, &text("records.csv")).unwrap();
    assert!(matches!(
        s.datanet_spec(0),
        Err(ConvertError::NotGenerated(_))
    ));
    assert_eq!(s.contributor_count(), 0);
    let missing = errors(&file, &text("absent.csv"));
    assert_eq!(
        (missing[0].line, missing[0].path.as_str()),
        (8, "datanets[0].file")
    );
    assert!(missing[0].message.contains("does not exist"));
    let wrong = errors(&file, &text("records.jsonl"));
    assert!(wrong[0].message.contains("a .csv file"), "{:?}", wrong[0]);
    let row = errors(&file, &text("bad-row.csv"));
    assert_eq!(row[0].path, "datanets[0].file", "{row:?}");
    assert!(row[0].message.contains("bad-row.csv:2:"), "{}", row[0]);
    let label = errors(&file, &text("bad-label.csv"));
    assert!(label[0].message.contains("a label 0 or 1"), "{}", label[0]);
    let jsonl = "[run]\nname = \"t\"\n\n[[datanets]]\nname = \"a\"\ndomain = \"healthcare\"\n\
                 task = \"text\"\nsource = \"file\"\nfile = \"bad.jsonl\"\n";
    let bad = errors(&file, jsonl);
    assert!(bad[0].message.contains("bad.jsonl:1:"), "{}", bad[0]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unreadable_file_is_a_read_error() {
    let e = Scenario::load(Path::new("/nonexistent/olsim.toml")).unwrap_err();
    assert!(matches!(e, ScenarioError::Read { .. }));
    assert!(
        e.to_string()
            .starts_with("/nonexistent/olsim.toml: cannot read")
    );
}

#[test]
fn contributor_groups_parse_as_a_list_and_their_errors_name_the_group() {
    let two = "[[datanets.contributors]]\nname = \"clean\"\ncount = 3\nquality = [1.0, 1.0]\n\n\
               [[datanets.contributors]]\ncount = 2\n";
    let s = Scenario::parse("case.toml", &format!("{MINIMAL}\n{two}"))
        .unwrap_or_else(|e| panic!("{e}"));
    let groups = s.datanets[0].contributor_groups();
    assert_eq!(groups.len(), 2);
    assert_eq!(
        (groups[0].name.as_deref(), groups[0].count),
        (Some("clean"), 3)
    );
    assert_eq!((groups[1].name.as_deref(), groups[1].count), (None, 2));
    assert_eq!(s.contributor_count(), 5);
    // A bad field of the second group is located at it.
    let bad = format!("{MINIMAL}\n{two}coverage = [0.0, 0.5]\n");
    single(&bad, 15, 1, "datanets[0].contributors[1].coverage");
    let unknown = format!("{MINIMAL}\n{two}cout = 2\n");
    single(&unknown, 15, 1, "datanets[0].contributors[1].cout");
    // Two groups of one name cannot be told apart in the report.
    let twins = format!("{MINIMAL}\n{two}name = \"clean\"\n");
    let shown = single(&twins, 15, 1, "datanets[0].contributors[1].name");
    assert!(
        shown.contains("different from the Datanet's other groups"),
        "{shown}"
    );
    // The single-table form is one group, as before.
    let one = format!("{MINIMAL}\n[datanets.contributors]\ncount = 4\n");
    let s = Scenario::parse("case.toml", &one).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.datanets[0].contributor_groups().len(), 1);
}

#[test]
fn sizes_beyond_this_machine_or_a_run_are_refused_at_their_field() {
    // Each of these aborted out of memory or ran for hours with no output: validation
    // estimates the run's memory and transactions and names the field that drives them.
    let cases = [
        (
            "\n[datanets.contributors]\ncount = 100000000\n",
            "datanets[0].contributors.count",
            "memory",
        ),
        (
            "\n[datanets.contributors]\ncount = 10\nrecords = [100000000, 100000000]\n",
            "datanets[0].contributors.records",
            "memory",
        ),
        (
            "\n[[attackers]]\nkind = \"sybil\"\ndatanet = \"a\"\nidentities = 100000000\n",
            "attackers[0].identities",
            "memory",
        ),
        (
            "\n[[stakers]]\nname = \"s\"\ncount = 100000000\nstake = 10\n",
            "stakers[0].count",
            "memory",
        ),
        (
            "\n[inference]\nusers = 100000000\n",
            "inference.users",
            "memory",
        ),
    ];
    for (extra, path, what) in cases {
        let errs = errors("case.toml", &format!("{MINIMAL}{extra}"));
        assert!(
            errs.iter()
                .any(|d| d.path == path && d.message.contains(what)),
            "{extra}: {errs:#?}"
        );
    }
    let epochs = MINIMAL.replace("name = \"t\"\n", "name = \"t\"\nepochs = 1000000000\n");
    let shown = single(&epochs, 3, 1, "run.epochs");
    assert!(shown.contains("transactions"), "{shown}");
    let calls = "[run]\nname = \"t\"\n\n[[datanets]]\nname = \"a\"\ndomain = \"finance\"\n\n\
                 [[models]]\nname = \"m\"\nkind = \"classifier\"\ndatanets = [\"a\"]\n\n\
                 [inference]\ncalls_per_epoch = 1000000000000\n";
    let shown = single(calls, 14, 1, "inference.calls_per_epoch");
    assert!(shown.contains("transactions"), "{shown}");
}

#[test]
fn a_seed_past_the_toml_integers_is_refused() {
    let text = MINIMAL.replace(
        "name = \"t\"\n",
        "name = \"t\"\nseed = 9223372036854775808\n",
    );
    let shown = single(&text, 3, 1, "run.seed");
    assert!(shown.contains("2^63-1"), "{shown}");
    let max = MINIMAL.replace(
        "name = \"t\"\n",
        "name = \"t\"\nseed = 9223372036854775807\n",
    );
    Scenario::parse("case.toml", &max).unwrap_or_else(|e| panic!("{e}"));
}

#[cfg(not(feature = "cuda"))]
#[test]
fn a_cuda_device_in_a_cpu_build_is_refused_by_validation() {
    let text = MINIMAL.replace("name = \"t\"\n", "name = \"t\"\ndevice = \"cuda\"\n");
    let shown = single(&text, 3, 1, "run.device");
    assert!(shown.contains("--features cuda"), "{shown}");
}

#[test]
fn impersonation_on_anvil_is_refused_by_validation() {
    let text = MINIMAL.replace(
        "name = \"t\"\n",
        "name = \"t\"\nchain = \"anvil\"\nimpersonate = true\n",
    );
    let shown = single(&text, 4, 1, "run.impersonate");
    assert!(shown.contains("only on the embedded chain"), "{shown}");
    let embedded = MINIMAL.replace("name = \"t\"\n", "name = \"t\"\nimpersonate = true\n");
    let scenario = Scenario::parse("case.toml", &embedded).unwrap_or_else(|e| panic!("{e}"));
    assert!(scenario.run.impersonate);
}

#[test]
fn a_zero_hidden_width_is_blamed_on_hidden_alone() {
    let text = format!(
        "{MINIMAL}\n[[models]]\nname = \"m\"\nkind = \"classifier\"\ndatanets = [\"a\"]\nhidden = [0]\n"
    );
    let shown = single(&text, 12, 1, "models[0].hidden");
    assert!(shown.contains(">= 1"), "{shown}");
}
