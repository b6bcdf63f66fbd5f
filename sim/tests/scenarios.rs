//! Every shipped scenario but the full-size one, run as a new user would: its `[[expect]]`
//! claims hold (what `olsim run --strict` checks), and `olsim validate`'s summary of it
//! (contributor identities, inference calls) is what the run did.

use std::path::{Path, PathBuf};

use olsim::engine::{self, RunOptions};
use olsim::report::Report;
use olsim::scenario::{Scenario, Source};

fn path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(name)
}

/// Runs `name`, checks its claims and validate's counts, and returns its report.
fn shipped(name: &str) -> Report {
    let s = Scenario::load(&path(name)).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !s.expect.is_empty(),
        "{name}: a shipped scenario states the claims its description makes ([[expect]])"
    );
    let report = engine::run(&s, &RunOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let failed: Vec<String> = report
        .claims
        .iter()
        .filter(|c| !c.holds)
        .map(|c| {
            format!(
                "{} {}: {} ({})",
                c.path,
                c.claim,
                c.problem.clone().unwrap_or_default(),
                c.why
            )
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{name}: claims that do not hold:\n{}",
        failed.join("\n")
    );
    assert_eq!(report.claims.len(), s.expect.len());

    // validate counts generated identities; file Datanets' authors are counted apart.
    let generated: Vec<&str> = s
        .datanets
        .iter()
        .filter(|d| d.source == Source::Generated)
        .map(|d| d.name.as_str())
        .collect();
    let identities = report
        .result
        .contributors
        .iter()
        .filter(|c| {
            generated
                .iter()
                .any(|d| c.name.starts_with(&format!("{d}/")))
        })
        .count() as u64;
    assert_eq!(
        identities,
        s.contributor_count(),
        "{name}: validate's contributors vs the run's generated identities"
    );
    let calls: u64 = report.result.epochs.iter().map(|e| e.inference_calls).sum();
    let predicted = s.inference_calls();
    if s.grants.cohorts.is_empty() {
        assert_eq!(
            calls, predicted,
            "{name}: validate's inference calls vs the run's"
        );
    } else {
        // Grant-funded models bring demand validate cannot predict (who delivers).
        assert!(
            calls >= predicted,
            "{name}: {calls} calls, validate said {predicted}"
        );
    }
    report
}

/// Rewards and accepted items of the contributors of `kind`, summed.
fn rewards_and_accepted(r: &olsim::report::ResultSection, kind: &str) -> (f64, u64) {
    r.contributors
        .iter()
        .filter(|c| c.kind == kind)
        .fold((0.0, 0u64), |(w, n), c| (w + c.rewards, n + c.accepted))
}

/// The default slash rule convicts no honest contributor of quality 0.9 or more.
fn no_good_contributor_slashed_as_harmful(report: &Report) {
    let convicted: Vec<String> = report
        .result
        .contributors
        .iter()
        .filter(|c| {
            c.kind == "honest" && c.harmful_contributions > 0 && c.quality.is_some_and(|q| q >= 0.9)
        })
        .map(|c| format!("{} (quality {:?})", c.name, c.quality))
        .collect();
    assert!(convicted.is_empty(), "slashed as harmful: {convicted:?}");
    assert_eq!(report.result.fairness.slash_rule, "validation");
}

/// Ten times the full-size run: too slow to run here (about 15 minutes), and on a machine of less
/// memory than its estimate (about 18 GiB; it peaked at 14.1 GB on the 2-vCPU reference
/// machine, which has 24) validation refuses it for that alone, naming the estimate.
#[test]
fn scale_10x_is_valid_or_refused_only_for_its_memory() {
    match Scenario::load(&path("scale-10x.toml")) {
        Ok(s) => assert_eq!(s.datanets.len(), 4),
        Err(e) => {
            let shown = e.to_string();
            assert!(!e.diagnostics().is_empty());
            for d in e.diagnostics() {
                assert!(d.to_string().contains("of memory"), "{shown}");
            }
        }
    }
}

#[test]
fn every_shipped_scenario_has_a_test_here() {
    let here = include_str!("scenarios.rs");
    for entry in std::fs::read_dir(path("")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let too_large = ["scale.toml", "scale-10x.toml"];
        if name.ends_with(".toml") && !too_large.contains(&name.as_str()) {
            assert!(
                here.contains(&format!("shipped(\"{name}\")")),
                "scenarios/{name} is not run by sim/tests/scenarios.rs"
            );
        }
    }
}

/// Reward follows data quality group by group, and every fairness figure of the report is
/// defined and consistent: the truth's reliability, Spearman inside its interval, the
/// sybil's split gain from its counterfactual run.
#[test]
fn fairness() {
    let report = shipped("fairness.toml");
    let r = &report.result;
    let per_contributor = |name: &str| {
        r.groups
            .iter()
            .find(|g| g.name == name)
            .unwrap_or_else(|| panic!("no group {name}: {:?}", r.groups))
            .rewards_per_contributor
    };
    assert!(per_contributor("clean") > per_contributor("noisy"));
    assert!(per_contributor("noisy") >= per_contributor("poor"));
    let f = &r.fairness;
    assert!(f.truth.starts_with("Data Banzhaf"), "{}", f.truth);
    assert!(f.truth_reliability.is_some_and(|t| t > 0.8), "{f:?}");
    assert_eq!(f.reward_rule, "confident", "the default rules");
    let [lo, hi] = f.spearman_vs_truth_interval.expect("an interval");
    let s = f.spearman_vs_truth.expect("a correlation");
    assert!(lo <= s && s <= hi, "{lo} {s} {hi}");
    assert!(s >= 0.8, "Spearman(reward, truth) {s}");
    for c in r.contributors.iter().filter(|c| c.accepted > 0) {
        let [lo, hi] = c
            .truth_interval
            .expect("trained-on contributors have an interval");
        assert!(lo <= hi, "{c:?}");
    }
    let sybil = r.attacks.iter().find(|a| a.kind == "sybil").unwrap();
    assert!(
        sybil.split_gain.is_some_and(|g| g <= 1.0),
        "replication robust: {sybil:?}"
    );
    // The split gain comes from a second run; the digest covers it, and its wall time is a
    // stage of its own, adding up with the others to the total.
    assert_eq!(report.digest, olsim::report::digest_of(r));
    let stages = &report.perf.stages;
    assert!(
        stages
            .iter()
            .any(|(name, s)| name == "counterfactual run: sybils as one" && *s > 0.0),
        "{stages:?}"
    );
    let sum: f64 = stages.iter().map(|(_, s)| s).sum();
    assert!((sum - report.perf.total_seconds).abs() < 1e-6, "{stages:?}");
    let md = olsim::report::markdown::render(&report);
    assert!(md.contains("| clean | 20 |"), "{md}");
    no_good_contributor_slashed_as_harmful(&report);
}

#[test]
fn smoke() {
    shipped("smoke.toml");
}

#[test]
fn baseline() {
    no_good_contributor_slashed_as_harmful(&shipped("baseline.toml"));
}

#[test]
fn byod() {
    shipped("byod.toml");
}

#[test]
fn grants() {
    no_good_contributor_slashed_as_harmful(&shipped("grants.toml"));
}

#[test]
fn governance() {
    let report = shipped("governance.toml");
    no_good_contributor_slashed_as_harmful(&report);
    let r = report.result;
    // The slash cut had 30% of the voting stake for it: defeated, by stake.
    let cut = &r.governance[2];
    assert!(cut.votes[1] > cut.votes[0], "{cut:?}");
}

#[test]
fn attack_sybil() {
    shipped("attack-sybil.toml");
}

#[test]
fn attack_copycat() {
    shipped("attack-copycat.toml");
}

#[test]
fn attack_label_flip() {
    shipped("attack-label-flip.toml");
}

#[test]
fn attack_backdoor() {
    shipped("attack-backdoor.toml");
}

#[test]
fn attack_spammer() {
    shipped("attack-spammer.toml");
}

#[test]
fn attack_wash_inference() {
    let r = shipped("attack-wash-inference.toml").result;
    // The wash trader starts in epoch 2: epochs 0 and 1 carry only honest demand.
    assert!(r.epochs[1].inference_calls < 5_000, "{:?}", r.epochs[1]);
    assert!(r.epochs[2].inference_calls >= 5_000, "{:?}", r.epochs[2]);
}

#[test]
fn attack_colluding_reviewers() {
    shipped("attack-colluding-reviewers.toml");
}

#[test]
fn attack_attribution_gaming() {
    let r = shipped("attack-attribution-gaming.toml").result;
    let gaming = r
        .attacks
        .iter()
        .find(|a| a.kind == "attribution_gaming")
        .expect("the attack is in the table");
    assert_eq!(gaming.identities, 4, "{gaming:?}");
    // What the mechanism makes true on this seed: the gamers paid for one probe per crafted
    // record (their only fees), labelled as the live model predicts their records pass
    // review, and with every served output attributed their records are never confidently
    // helpful: they earn nothing, while honest data does, so the probes are not paid back.
    assert!(gaming.cost > 0.0 && gaming.slashed == 0.0, "{gaming:?}");
    let per_record = |kind: &str| {
        let (rewards, records) = rewards_and_accepted(&r, kind);
        rewards / records.max(1) as f64
    };
    let (gamer, honest) = (per_record("attribution_gaming"), per_record("honest"));
    let (_, accepted) = rewards_and_accepted(&r, "attribution_gaming");
    assert!(
        accepted > 0 && gamer == 0.0 && honest > 0.0,
        "gamers earn {gamer} per accepted record ({accepted}), honest {honest}: {gaming:?}"
    );
    // The probes were served but are not attributed (answered outside the serving stage).
    let model = &r.models[0];
    assert!(model.outputs_served > model.outputs_attributed, "{model:?}");
    assert!(gaming.roi.is_some_and(|x| x < 0.0), "{gaming:?}");
}

/// Span gaming of a language model: documents stuffed with the model's own generations
/// win more span attribution per document than honest documents, unless review rejects them.
#[test]
fn attack_span_gaming() {
    let r = shipped("attack-span-gaming.toml").result;
    let gaming = r
        .attacks
        .iter()
        .find(|a| a.kind == "attribution_gaming")
        .expect("the attack is in the table");
    assert_eq!(gaming.identities, 4, "{gaming:?}");
    assert!(gaming.cost > 0.0, "the probes are paid for: {gaming:?}");
    // Reward per accepted document and epoch in the model: honest documents are accepted in
    // epoch 0 and in the model from epoch 1 (4 epochs); the gamers' in epoch 2, in the model
    // retrained that epoch (3 epochs).
    let per_document_epoch = |kind: &str, epochs: f64| {
        let (rewards, accepted) = rewards_and_accepted(&r, kind);
        (accepted > 0).then(|| rewards / accepted as f64 / epochs)
    };
    let honest = per_document_epoch("honest", 4.0).expect("honest documents are accepted");
    let gamer = per_document_epoch("attribution_gaming", 3.0).expect("a gamer passes review");
    assert!(
        gamer > 2.0 * honest,
        "stuffed documents earn {gamer} per document and epoch, honest ones {honest}"
    );
    // Every gamer review rejected was caught, and only those earned nothing.
    for c in r
        .contributors
        .iter()
        .filter(|c| c.kind == "attribution_gaming")
    {
        assert_eq!(c.accepted == 0, c.rewards == 0.0, "{c:?}");
    }
    assert!(
        gaming.detection_recall.is_some_and(|x| x < 1.0),
        "{gaming:?}"
    );
}

#[test]
fn attack_jit_staker() {
    shipped("attack-jit-staker.toml");
}

/// On today's contracts the capture passes and its figures add up: from the epoch its
/// proposal executes (opened in 1, voted in 2, queued in 3, executed in 4) every contributor
/// pool is its revenue, the honest contributors get the rest, and the borrowed stake is back
/// once the vote has ended.
#[test]
fn attack_governance_capture() {
    let capture_of = |r: &olsim::report::ResultSection| {
        r.attacks
            .iter()
            .find(|a| a.kind == "governance_capture")
            .cloned()
            .expect("the attack is in the table")
    };
    // With the guardian (the default), the passed proposal is canceled.
    let r = shipped("attack-governance-capture.toml").result;
    let vetoed = capture_of(&r);
    assert_eq!(vetoed.captured, Some(false), "{vetoed:?}");
    assert_eq!(
        (vetoed.capital, vetoed.revenue),
        (100_000.0, 0.0),
        "{vetoed:?}"
    );
    // The borrowed stake was staked and unstaked within epoch 1 (snapshot voting needs it
    // only the second before the proposal).
    assert!(
        r.epochs.iter().all(|e| e.staked == 100_000.0),
        "{:?}",
        r.epochs
    );

    // Without a guardian the same vote hands it the attributor role: it takes every pool
    // from the epoch after execution on, and honest contributors get the rest.
    let mut s = Scenario::load(&path("attack-governance-capture.toml")).unwrap();
    s.tokenomics.guardian = false;
    let r = engine::run(&s, &RunOptions::default()).unwrap().result;
    let capture = capture_of(&r);
    assert_eq!(capture.captured, Some(true), "{capture:?}");
    assert_eq!(
        (capture.capital, capture.cost),
        (100_000.0, 0.0),
        "{capture:?}"
    );
    let taken: f64 = r.epochs[4..].iter().map(|e| e.contributor_pool).sum();
    assert!(
        taken > 0.0 && (capture.revenue - taken).abs() < 1e-6,
        "{capture:?}"
    );
    let honest: f64 = r.contributors.iter().map(|c| c.rewards).sum();
    let paid = r.economy.contributor_rewards;
    assert!(
        (honest + capture.revenue - paid).abs() < 1e-6,
        "{honest} + {capture:?}"
    );
}

/// The engine's attack modules keep the run deterministic: the same scenario and seed give
/// the same result and digest, whatever the thread count.
#[test]
fn attack_modules_are_deterministic() {
    for name in [
        "attack-attribution-gaming.toml",
        "attack-span-gaming.toml",
        "attack-jit-staker.toml",
        "attack-governance-capture.toml",
        "attack-wash-inference.toml",
        "attack-colluding-reviewers.toml",
    ] {
        let s = Scenario::load(&path(name)).unwrap_or_else(|e| panic!("{e}"));
        let a = engine::run(&s, &RunOptions::default()).unwrap();
        let b = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| engine::run(&s, &RunOptions::default()).unwrap());
        assert_eq!(a.digest, b.digest, "{name}");
        assert_eq!(a.result, b.result, "{name}");
    }
}
