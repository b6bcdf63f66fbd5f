//! Every setting a new user found misread now does what docs/scenarios.md says, and what a
//! report prints is defined (docs/metrics.md): each test here failed before the engine
//! rework that fixed it.

use std::process::Command;

use olsim::engine::{self, RunOptions};
use olsim::report::{Report, markdown};
use olsim::scenario::Scenario;

/// The smoke scenario's setting with `extra` TOML spliced in after `[tokenomics]` and the
/// model price replaced by `price`.
fn smoke_with(tokenomics: &str, price: &str, inference: &str) -> String {
    format!(
        r#"
[run]
name = "settings"
seed = 7
epochs = 3

[tokenomics]
review_quorum = 2
{tokenomics}

[[datanets]]
name = "finance-signals"
domain = "finance"

[datanets.contributors]
count = 6
records = [20, 40]

[datanets.reviewers]
count = 2
accuracy = 0.95

[[models]]
name = "price-direction"
kind = "classifier"
datanets = ["finance-signals"]
price = {price}
hidden = [16]

[models.lora]
rank = 2
alpha = 4.0

[models.training]
epochs = 3
batch_size = 16

[inference]
users = 4
calls_per_payment = 50
{inference}
"#
    )
}

fn run(text: &str) -> Report {
    let s = Scenario::parse("settings.toml", text).unwrap_or_else(|e| panic!("{e}"));
    engine::run(&s, &RunOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn open_amounts_keep_eighteen_decimals_from_file_to_chain() {
    // A minimum stake of 0.0000014 OPEN: six decimals kept would stake 0.000001 and every
    // contribution would revert with StakeTooLow.
    let r = run(&smoke_with(
        "min_stake = 0.0000014",
        "0.01",
        "calls_per_epoch = 200",
    ))
    .result;
    assert_eq!(r.chain.refused, 0, "{:?}", r.chain.refusals);
    assert_eq!(r.epochs[0].contributions[0], 6);
    // A price of 1e-7 OPEN per call is 10^11 wei on chain, not 0.
    let r = run(&smoke_with("", "1e-7", "calls_per_epoch = 200")).result;
    let calls: u64 = r.epochs.iter().map(|e| e.inference_calls).sum();
    assert_eq!(calls, 600);
    assert!(
        (r.economy.fees - 600.0 * 1e-7).abs() < 1e-15,
        "{}",
        r.economy.fees
    );
    // A price that would be zero on chain is a located validation error.
    let err = Scenario::parse("settings.toml", &smoke_with("", "1e-19", "")).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("settings.toml:") && text.contains("models[0].price"),
        "{text}"
    );
}

#[test]
fn price_elasticity_changes_the_calls_sold_not_only_their_split() {
    // One model at twice the reference price with elasticity 1 sells half the calls.
    let r = run(&smoke_with(
        "",
        "0.02",
        "calls_per_epoch = 200\nprice_elasticity = 1.0",
    ))
    .result;
    let calls: Vec<u64> = r.epochs.iter().map(|e| e.inference_calls).collect();
    assert_eq!(calls, vec![100, 100, 100]);
    // At a fifth of the reference price and elasticity 2 it sells 25 times the calls (five
    // times the spend), and the users' budgets cover them (no payment refused).
    let r = run(&smoke_with(
        "",
        "0.002",
        "calls_per_epoch = 200\nprice_elasticity = 2.0",
    ))
    .result;
    let calls: Vec<u64> = r.epochs.iter().map(|e| e.inference_calls).collect();
    assert_eq!(calls, vec![5000, 5000, 5000]);
    assert_eq!(r.chain.refused, 0, "{:?}", r.chain.refusals);
}

#[test]
fn undefined_figures_are_null_never_zero() {
    // No demand: no rewards, so the Gini, the honest share and Spearman are undefined.
    let report = run(&smoke_with("", "0.01", "calls_per_epoch = 0"));
    let f = &report.result.fairness;
    assert_eq!(
        (f.gini, f.honest_share, f.spearman_vs_truth),
        (None, None, None)
    );
    assert_eq!(
        (f.spearman_vs_truth_interval, f.spearman_vs_truth_accepted),
        (None, None)
    );
    assert_eq!(report.result.economy.staking_yield, None, "no stakers");
    let json = report.to_json();
    assert!(json.contains("\"gini\": null"), "{json}");
    let negative: Vec<&str> = json
        .lines()
        .filter(|l| {
            let value = l.trim().trim_end_matches(',');
            value.ends_with(": -0.0") || value == "-0.0"
        })
        .collect();
    assert!(
        negative.is_empty(),
        "negative zero in the report: {negative:?}"
    );
    let md = markdown::render(&report);
    assert!(md.contains("| Gini of rewards | undefined |"), "{md}");
    assert!(!md.contains("-0.00"), "{md}");
    // Tiny modelled times and costs show their digits instead of rounding to zero.
    let md = markdown::render(&run(&smoke_with("", "0.01", "calls_per_epoch = 200")));
    assert!(!md.contains("0.000000"), "{md}");
}

#[test]
fn return_on_capital_is_one_formula_for_every_kind() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/attack-colluding-reviewers.toml");
    let s = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let r = engine::run(&s, &RunOptions::default()).unwrap().result;
    for a in &r.attacks {
        match a.roi {
            Some(roi) => {
                assert!(a.capital > 0.0, "{a:?}");
                assert!(
                    (roi - (a.revenue - a.cost) / a.capital).abs() < 1e-12,
                    "{a:?}"
                );
            }
            None => assert_eq!(a.capital, 0.0, "{a:?}"),
        }
    }
    let colluders = r
        .attacks
        .iter()
        .find(|a| a.kind == "colluding_reviewers")
        .unwrap();
    assert_eq!(colluders.roi, None, "no capital at risk: undefined, not 0");
    assert_eq!(colluders.detection_recall, None, "reviewers submit nothing");
}

#[test]
fn strict_runs_fail_when_a_claim_does_not_hold() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("claims.toml");
    let write = |claims: &str| {
        std::fs::write(
            &file,
            format!(
                "{}{claims}",
                smoke_with("", "0.01", "calls_per_epoch = 200")
            ),
        )
        .unwrap()
    };
    let olsim = |strict: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_olsim"));
        cmd.arg("run").arg(&file).arg("--quiet").arg("--out");
        cmd.arg(dir.path().join("out"));
        if strict {
            cmd.arg("--strict");
        }
        cmd.output().unwrap()
    };
    write(
        "\n[[expect]]\npath = \"economy.fees\"\nequals = 6.0\n\n[[expect]]\npath = \"chain.refused\"\nequals = 0\n",
    );
    let out = olsim(true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("claim holds: economy.fees = 6"), "{stdout}");
    write("\n[[expect]]\npath = \"fairness.gini\"\nabove = 0.99\nwhy = \"a false claim\"\n");
    let lax = olsim(false);
    assert!(
        lax.status.success(),
        "without --strict a failed claim is reported only"
    );
    let strict = olsim(true);
    assert_eq!(strict.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&strict.stdout);
    assert!(
        stdout.contains("claim FAILS: fairness.gini > 0.99"),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&strict.stderr).contains("1 of 1 [[expect]] claims"));
    let report = std::fs::read_to_string(dir.path().join("out/report.json")).unwrap();
    assert!(
        report.contains("\"holds\": false"),
        "the report is written either way"
    );
    // A malformed claim is a located validation error, before any run.
    write("\n[[expect]]\npath = \"attacks[\"\nbelow = 0.0\n");
    let bad = olsim(true);
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success() && stderr.contains("expect[0].path"),
        "{stderr}"
    );
}

#[test]
fn colluding_reviewers_start_colluding_at_their_start_epoch() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/attack-colluding-reviewers.toml");
    let mut s = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let honest_rejected = |s: &Scenario| {
        let r = engine::run(s, &RunOptions::default()).unwrap().result;
        r.contributors
            .iter()
            .filter(|c| c.kind == "honest" && c.records > 0 && c.accepted == 0)
            .count()
    };
    let from_start = honest_rejected(&s);
    // Every contribution arrives in epoch 0: colluders who start in the last epoch review
    // them all honestly.
    let colluders = s
        .attackers
        .iter_mut()
        .find(|a| a.kind == olsim::scenario::AttackKind::ColludingReviewers)
        .unwrap();
    colluders.start_epoch = s.run.epochs - 1;
    let late = honest_rejected(&s);
    assert!(from_start > late, "{from_start} honest rejected vs {late}");
}

#[test]
fn the_slash_rule_decides_who_is_slashed_as_harmful() {
    // Noisy honest contributors, four label-flippers and lax reviewers (one flipper gets
    // through review on seed 17): the validation rule convicts the accepted flipper and
    // no honest contributor; the old served rule convicts honest contributors and misses
    // the flipper; `none` convicts nobody. The report names the rule. (The validation rule
    // is a 95% test per contribution and epoch: on seed 7 it convicts an honest
    // contributor of quality 0.84 whose leave-one-out value is positive.)
    let text = |rule: &str| {
        smoke_with(
            &format!("slash_rule = \"{rule}\""),
            "0.01",
            "calls_per_epoch = 400",
        )
        .replace("seed = 7", "seed = 17")
        .replace("count = 6\n", "count = 6\nquality = [0.7, 0.9]\n")
        .replace("accuracy = 0.95", "accuracy = 0.7")
            + "\n[[attackers]]\nkind = \"label_flip\"\ndatanet = \"finance-signals\"\ncount = 4\nrate = 0.9\n"
    };
    let convicted = |r: &Report, kind: &str| {
        r.result
            .contributors
            .iter()
            .filter(|c| c.kind == kind && c.harmful_contributions > 0)
            .count()
    };
    let accepted_flippers = |r: &Report| {
        r.result
            .contributors
            .iter()
            .filter(|c| c.kind == "label_flip" && c.accepted > 0)
            .count()
    };
    let validation = run(&text("validation"));
    let f = &validation.result.fairness;
    assert_eq!(f.slash_rule, "validation");
    assert_eq!(f.honest_slashed_as_harmful, 0, "{f:?}");
    assert_eq!(convicted(&validation, "honest"), 0);
    assert!(accepted_flippers(&validation) >= 1);
    assert_eq!(
        convicted(&validation, "label_flip"),
        accepted_flippers(&validation),
        "{:?}",
        validation.result.contributors
    );
    let served = run(&text("served"));
    assert_eq!(served.result.fairness.slash_rule, "served");
    assert!(
        convicted(&served, "honest") >= 1,
        "{:?}",
        served.result.contributors
    );
    assert!(served.result.fairness.honest_slash_rate > f.honest_slash_rate);
    let none = run(&text("none"));
    assert_eq!(none.result.fairness.slash_rule, "none");
    assert_eq!(
        convicted(&none, "honest") + convicted(&none, "label_flip"),
        0
    );
    // A confidence outside [0.5, 0.9999], or under a rule that would ignore it, is a
    // located error.
    for (rule, confidence, says) in [
        ("validation", "1.0", "allowed: 0.5 to 0.9999"),
        ("served", "0.99", "slash_confidence only applies"),
    ] {
        let rule_line = format!("slash_rule = \"{rule}\"");
        let bad = text(rule).replace(
            &rule_line,
            &format!("{rule_line}\nslash_confidence = {confidence}"),
        );
        let err = Scenario::parse("settings.toml", &bad)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("settings.toml:")
                && err.contains("tokenomics.slash_confidence")
                && err.contains(says),
            "{err}"
        );
    }
}

#[test]
fn the_reward_rule_decides_how_the_pool_is_divided() {
    // The shipped smoke setting: six honest contributors and a label-flipper.
    let scenario = |tokenomics: &str| {
        smoke_with(tokenomics, "0.01", "calls_per_epoch = 400")
            + "\n[[attackers]]\nkind = \"label_flip\"\ndatanet = \"finance-signals\"\nrate = 0.8\n"
    };
    let text = |rule: &str| scenario(&format!("reward_rule = \"{rule}\""));
    let paid = |r: &Report| -> Vec<(u64, f64)> {
        r.result
            .contributors
            .iter()
            .map(|c| (c.accepted, c.rewards))
            .collect()
    };
    let influence = run(&text("influence"));
    assert_eq!(influence.result.fairness.reward_rule, "influence");
    // Volume: every accepted record earns the same (the model trains on all of them from
    // epoch 0), whatever its attribution.
    let volume = run(&text("volume"));
    assert_eq!(volume.result.fairness.reward_rule, "volume");
    let per_record: Vec<f64> = paid(&volume)
        .into_iter()
        .filter(|(accepted, _)| *accepted > 0)
        .map(|(accepted, rewards)| rewards / accepted as f64)
        .collect();
    assert!(per_record.len() >= 2, "{per_record:?}");
    for r in &per_record {
        assert!((r / per_record[0] - 1.0).abs() < 1e-6, "{per_record:?}");
    }
    assert_ne!(paid(&volume), paid(&influence));
    // Smoothing and ranking divide the same pools differently; clipping changes nothing
    // here (no weight is 3 medians above the rest; its arithmetic is unit-tested). Each
    // pays the pools out in full.
    for rule in ["smoothed", "clipped", "rank"] {
        let r = run(&text(rule));
        assert_eq!(r.result.fairness.reward_rule, rule);
        assert_eq!(paid(&r) == paid(&influence), rule == "clipped", "{rule}");
        let (a, b) = (r.result.economy, influence.result.economy.clone());
        assert!(
            (a.contributor_rewards - b.contributor_rewards).abs() < 1e-6,
            "{rule}"
        );
    }
    // The default, `confident`, pays a lower confidence bound: different shares, never more
    // in total than `influence` (each bound is below its weight), and nothing to the
    // label-flipper whose flipped records cancel its others.
    let confident = run(&scenario(""));
    assert_eq!(confident.result.fairness.reward_rule, "confident");
    assert_ne!(paid(&confident), paid(&influence));
    assert!(
        confident.result.economy.contributor_rewards
            <= influence.result.economy.contributor_rewards + 1e-6
    );
    let flipper = confident
        .result
        .attacks
        .iter()
        .find(|a| a.kind == "label_flip");
    assert_eq!(flipper.map(|a| a.revenue), Some(0.0), "{flipper:?}");
    let err = Scenario::parse("settings.toml", &text("shapley"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("tokenomics.reward_rule") && err.contains("`volume`"),
        "{err}"
    );
}

#[test]
fn a_split_vote_stays_pending_until_its_review_deadline_then_lapses() {
    // As many reviewers as the quorum: on this seed two contributions get one accept and
    // one reject. They stay pending, later epochs do not send the same reviewers again (the
    // registry would refuse: AlreadyReviewed), and the report counts them as pending.
    let text = smoke_with("", "0.01", "calls_per_epoch = 200").replace("seed = 7", "seed = 5")
        + "\n[[attackers]]\nkind = \"label_flip\"\ndatanet = \"finance-signals\"\nrate = 0.8\n";
    let r = run(&text).result;
    let pending: u64 = r
        .epochs
        .iter()
        .map(|e| e.contributions[0] - e.contributions[1] - e.contributions[2])
        .sum();
    assert!(pending >= 1, "no split vote on this seed: {:?}", r.epochs);
    assert_eq!(r.chain.refused, 0, "{:?}", r.chain.refusals);
    let pending_records: u64 = r.contributors.iter().map(|c| c.pending).sum();
    assert!(pending_records >= 1, "{:?}", r.contributors);
    assert!(r.contributors.iter().all(|c| c.lapsed == 0));
    // Week-long epochs: the registry's 14-day review deadline passes in epoch 2, where each
    // split contribution's author withdraws the whole stake and the contribution lapses:
    // never accepted, never slashed, its stake back.
    let weekly = text.replacen("epochs = 3\n", "epochs = 3\nepoch_seconds = 604800\n", 1);
    let r = run(&weekly).result;
    assert_eq!(r.chain.refused, 0, "{:?}", r.chain.refusals);
    let lapsed: Vec<_> = r.contributors.iter().filter(|c| c.lapsed > 0).collect();
    assert!(!lapsed.is_empty(), "{:?}", r.contributors);
    for c in &lapsed {
        assert_eq!((c.accepted, c.pending, c.slashed), (0, 0, 0.0), "{c:?}");
        assert_eq!(c.lapsed, c.records, "{c:?}");
    }
    assert!(r.contributors.iter().all(|c| c.pending == 0));
    let lapsed_group: u64 = r.groups.iter().map(|g| g.lapsed).sum();
    assert_eq!(lapsed_group, lapsed.iter().map(|c| c.lapsed).sum::<u64>());
}

/// The copycat counterfactual (docs/metrics.md, "Replication robustness"): when review lets
/// exact copies through, the copycats earn about what the authors they copied lose, and
/// when it rejects them the authors lose nothing.
#[test]
fn a_copycat_that_passes_review_takes_what_its_authors_lose() {
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scenarios/attack-copycat.toml"
    ))
    .unwrap();
    let copycat = |text: &str| {
        let r = run(text);
        r.result
            .attacks
            .into_iter()
            .find(|a| a.kind == "copycat")
            .unwrap()
    };
    let caught = copycat(&shipped);
    assert_eq!(caught.revenue, 0.0, "{caught:?}");
    assert_eq!(caught.victim_loss, Some(0.0), "{caught:?}");
    assert_eq!(
        caught.copy_gain, None,
        "the authors lost nothing: {caught:?}"
    );
    // Reviewers right barely more than half the time, and copies exact.
    let lax = shipped
        .replace("accuracy = 0.9", "accuracy = 0.55")
        .replace("count = 5", "count = 8")
        .replace("perturb = 0.01", "perturb = 0.0");
    let passed = copycat(&lax);
    assert!(passed.revenue > 1.0, "{passed:?}");
    let loss = passed
        .victim_loss
        .expect("a copycat entry has a victim loss");
    assert!(loss > 1.0, "{passed:?}");
    let gain = passed.copy_gain.expect("the authors lost");
    assert!((gain - passed.revenue / loss).abs() < 1e-9, "{passed:?}");
    assert!((0.5..2.0).contains(&gain), "{passed:?}");
}

#[cfg(not(feature = "cuda"))]
#[test]
fn a_cuda_scenario_is_refused_by_validate_in_a_cpu_build_and_runs_with_device_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gpu.toml");
    let text = smoke_with("", "0.01", "calls_per_epoch = 200").replacen(
        "epochs = 3\n",
        "epochs = 3\ndevice = \"cuda\"\n",
        1,
    );
    std::fs::write(&file, text).unwrap();
    let olsim = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_olsim"))
            .args(args)
            .arg(&file)
            .output()
            .unwrap()
    };
    let validate = olsim(&["validate"]);
    assert!(!validate.status.success());
    let stderr = String::from_utf8_lossy(&validate.stderr);
    assert!(
        stderr.contains("gpu.toml:6:1: run.device") && stderr.contains("--features cuda"),
        "{stderr}"
    );
    let out = dir.path().join("out");
    let run = Command::new(env!("CARGO_BIN_EXE_olsim"))
        .args(["run", "--quiet", "--device", "cpu", "--out"])
        .arg(&out)
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(out.join("report.json").is_file());
}
