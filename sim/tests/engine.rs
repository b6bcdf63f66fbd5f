//! End-to-end runs of shipped scenarios on the embedded chain: determinism of the report's
//! result section (run twice, and under different thread counts), what the smoke scenario's
//! economy must show, the rendered report, and clear errors for what the engine cannot run.

use std::path::Path;

use olsim::engine::{self, RunOptions};
use olsim::report::{Report, digest_of, html, markdown};
use olsim::scenario::Scenario;

fn scenario(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(name);
    Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn run(s: &Scenario) -> Report {
    engine::run(s, &RunOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

fn in_pool(threads: usize, s: &Scenario) -> Report {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(|| run(s))
}

#[test]
fn smoke_report_is_deterministic_across_runs_and_thread_counts() {
    let s = scenario("smoke.toml");
    let a = run(&s);
    let b = run(&s);
    let one = in_pool(1, &s);
    let two = in_pool(2, &s);
    assert_eq!(
        a.digest,
        digest_of(&a.result),
        "the digest covers the result section"
    );
    for other in [&b, &one, &two] {
        assert_eq!(a.digest, other.digest);
        assert_eq!(a.result, other.result);
    }
    // A different seed is a different run.
    let mut reseeded = s.clone();
    reseeded.run.seed += 1;
    assert_ne!(run(&reseeded).digest, a.digest);
    // The whole-state digest is deterministic too, and the pool each run ran in is the one
    // its perf section names.
    assert!(a.chain_state_digest.is_some());
    assert_eq!(a.chain_state_digest, b.chain_state_digest);
    assert_eq!((one.perf.threads, two.perf.threads), (1, 2));
}

/// Smoke with three classifiers retrained every epoch: two of one base and LoRA shape and
/// one of another rank. In a 1-thread pool they train one after the other, in a 2-thread
/// pool concurrently: the same report either way.
#[test]
fn several_models_training_concurrently_give_the_same_report_in_any_pool() {
    let mut s = scenario("smoke.toml");
    s.models[0].retrain_every = 1;
    let mut twin = s.models[0].clone();
    twin.name = "price-direction-twin".into();
    let mut other = s.models[0].clone();
    other.name = "price-direction-rank-1".into();
    other.lora.rank = 1;
    s.models.extend([twin, other]);
    let one = in_pool(1, &s);
    let two = in_pool(2, &s);
    assert_eq!(one.digest, two.digest);
    assert_eq!(one.result, two.result);
    assert_eq!(one.result.models.len(), 3);
    assert!(one.result.models.iter().all(|m| m.settled_epochs > 0));
    let names = |r: &Report| {
        r.perf
            .stages
            .iter()
            .filter(|(n, _)| n == "training")
            .count()
    };
    assert_eq!((names(&one), names(&two)), (1, 1));
}

#[test]
fn perf_stages_do_not_overlap_and_sum_to_the_total() {
    let p = run(&scenario("smoke.toml")).perf;
    let names: Vec<&str> = p.stages.iter().map(|(n, _)| n.as_str()).collect();
    for stage in ["setup", "chain", "training", "other"] {
        assert_eq!(
            names.iter().filter(|n| **n == stage).count(),
            1,
            "{names:?}"
        );
    }
    let sum: f64 = p.stages.iter().map(|(_, s)| s).sum();
    assert!(p.stages.iter().all(|(_, s)| *s >= 0.0));
    assert!(
        (sum - p.total_seconds).abs() <= 1e-6 * p.total_seconds.max(1.0),
        "stages sum to {sum} s, total {} s: {:?}",
        p.total_seconds,
        p.stages
    );
}

#[test]
fn push_and_merkle_runs_end_with_equal_books_and_different_chain_states() {
    // The books digest hashes what the economy ended with; a Merkle settlement of the same
    // rewards takes more transactions (roots and claims), which only the whole-state digest
    // sees.
    let push = run(&scenario("smoke.toml"));
    let mut s = scenario("smoke.toml");
    s.tokenomics.settlement = olsim::scenario::Settlement::Merkle;
    let merkle = run(&s);
    assert!(merkle.result.chain.transactions > push.result.chain.transactions);
    assert_ne!(push.chain_state_digest, merkle.chain_state_digest);
    assert!(push.chain_state_digest.is_some() && merkle.chain_state_digest.is_some());
}

#[test]
fn the_treasury_and_the_models_add_up() {
    let r = run(&scenario("smoke.toml")).result;
    let e = &r.economy;
    assert_eq!(e.settlement, "push");
    // Smoke has no stakers: the stakers' share went to the treasury.
    assert!(e.treasury_unstaked_share > 0.0, "{e:?}");
    let parts = e.treasury_fee_share + e.treasury_unstaked_share + e.slashed;
    assert!((parts - e.treasury).abs() < 1e-9, "{parts} vs {e:?}");
    assert_eq!(r.models.len(), 1);
    let m = &r.models[0];
    assert_eq!(
        (m.kind.as_str(), m.attribution.as_str()),
        ("classifier", "datainf")
    );
    let calls: u64 = r.epochs.iter().map(|e| e.inference_calls).sum();
    assert_eq!(m.calls, calls);
    assert!((m.fees - e.fees).abs() < 1e-9);
    assert!((m.pool - 0.4 * m.fees).abs() < 1e-9);
    assert!((m.paid - e.contributor_rewards).abs() < 1e-9);
    assert!(m.settled_epochs >= 1);
    // Every compute row says which models it was for and where it was counted.
    assert!(
        r.compute
            .iter()
            .all(|c| c.models == "classifiers" && !c.source.is_empty()),
        "{:?}",
        r.compute
    );
}

#[test]
fn smoke_economy_rewards_honest_data_and_punishes_the_poisoner() {
    let r = run(&scenario("smoke.toml")).result;
    let fees: f64 = r.epochs.iter().map(|e| e.fees).sum();
    assert!(fees > 0.0 && r.chain.transactions > 0);
    assert!(r.economy.contributor_rewards > 0.0);
    // The contract's split: 40% of fees reach the contributor pools (default split).
    let pooled: f64 = r.epochs.iter().map(|e| e.contributor_pool).sum();
    assert!((pooled - 0.4 * fees).abs() < 1e-6, "{pooled} vs {fees}");
    assert!(
        r.fairness.honest_share.is_some_and(|h| h > 0.9),
        "{:?}",
        r.fairness
    );
    assert!(
        r.fairness.spearman_vs_truth.is_some_and(|s| s > 0.0),
        "{:?}",
        r.fairness
    );
    let flip = r
        .attacks
        .iter()
        .find(|a| a.kind == "label_flip")
        .expect("smoke has a label-flip attacker");
    assert!(flip.roi.is_some_and(|x| x < 0.0), "{flip:?}");
    assert!(flip.detection_recall.is_some_and(|x| x > 0.0), "{flip:?}");
    assert_eq!(r.fairness.lorenz.last(), Some(&(1.0, 1.0)));
    assert!(
        r.compute
            .iter()
            .any(|c| c.stage == "training" && c.flops > 0.0)
    );
}

#[test]
fn smoke_compute_is_bound_by_launches_or_memory_and_priced_per_inference() {
    let report = run(&scenario("smoke.toml"));
    let r = &report.result;
    for c in r.compute.iter().filter(|c| c.launches > 0.0) {
        // The point of the roofline: these models are far too small to be compute-bound.
        assert!(c.bound == "launch" || c.bound == "memory", "{c:?}");
        assert!(c.modelled_seconds >= c.launch_seconds, "{c:?}");
        assert!(c.modelled_seconds > 10.0 * c.compute_seconds, "{c:?}");
        assert_eq!(
            c.modelled_seconds,
            c.launch_seconds + c.memory_seconds.max(c.compute_seconds)
        );
    }
    let served = r.models.iter().filter(|m| m.calls > 0).collect::<Vec<_>>();
    assert!(!served.is_empty());
    for m in served {
        let gpu = m
            .gpu_usd_per_inference
            .expect("a model with calls served some");
        assert!(gpu > 0.0, "{m:?}");
        assert_eq!(
            m.margin_usd_per_inference,
            Some(m.fee_usd_per_inference - gpu)
        );
    }
    // No GPU ran: the measured comparison is absent and says why.
    assert_eq!(report.perf.measured, None);
    assert!(
        report
            .perf
            .measured_reason
            .as_deref()
            .is_some_and(|r| r.starts_with("no GPU in this run")),
        "{:?}",
        report.perf.measured_reason
    );
}

#[test]
fn report_renders_as_json_markdown_and_html_with_charts() {
    let report = run(&scenario("smoke.toml"));
    let back = Report::from_json(&report.to_json()).unwrap();
    // A report of another format version says so, not which field it lacks.
    let mut old: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    old["version"] = 5.into();
    old["result"].as_object_mut().unwrap().remove("models");
    let err = Report::from_json(&old.to_string()).unwrap_err();
    assert!(err.contains("format version 5 is not supported"), "{err}");
    assert_eq!(back.digest, report.digest);
    assert_eq!(back.result, report.result);
    let md = markdown::render(&report);
    assert!(md.contains("## Fairness") && md.contains(&report.digest));
    let page = html::render(&report).unwrap();
    // Smoke has no grants: four charts inline and a sentence in place of the grant chart.
    assert_eq!(page.matches("<svg").count(), 4, "four charts inline");
    assert!(page.contains("Grant return by tier (fee USD per grant USD): no grants in this run."));
    assert!(!page.contains("<script"));
    // A part of the row above keeps its indent.
    assert!(
        page.contains("<td style=\"padding-left:1em\">its fee share</td>"),
        "the treasury's parts are indented under it"
    );
}

#[cfg(not(feature = "cuda"))]
#[test]
fn cuda_in_a_cpu_build_is_a_clear_error_naming_the_feature() {
    let mut s = scenario("smoke.toml");
    s.run.device = olsim::scenario::DeviceKind::Cuda;
    let err = engine::run(&s, &RunOptions::default()).expect_err("a CPU build has no CUDA");
    assert!(
        matches!(err, olsim::engine::EngineError::Device(_)),
        "{err:?}"
    );
    assert!(err.to_string().contains("--features cuda"), "{err}");
    // `--device` overrides the scenario's device, both ways.
    let options = RunOptions {
        device: Some(olsim_ml::device::Device::Cpu),
        ..RunOptions::default()
    };
    assert!(engine::run(&s, &options).is_ok());
}

/// The engine is written once over any burn backend: the smoke scenario runs end to end with
/// its models on `NdArray<f64>` and gives the economy the default `f32` backend gives (the
/// chain and the agents are the same; only model arithmetic is wider).
#[test]
fn smoke_runs_on_a_second_backend() {
    type Wide = burn::backend::Autodiff<burn::backend::NdArray<f64>>;
    let s = scenario("smoke.toml");
    let narrow = run(&s);
    let wide = engine::run_on::<Wide>(&s, &RunOptions::default(), &Default::default())
        .unwrap_or_else(|e| panic!("{e}"))
        .report;
    assert_ne!(
        wide.scenario.device, narrow.scenario.device,
        "the report names the backend"
    );
    let (a, b) = (&narrow.result, &wide.result);
    assert_eq!(a.chain.transactions, b.chain.transactions);
    assert_eq!(a.economy.fees, b.economy.fees);
    let calls = |r: &olsim::report::ResultSection| -> Vec<u64> {
        r.epochs.iter().map(|e| e.inference_calls).collect()
    };
    assert_eq!(calls(a), calls(b));
    assert!((a.economy.contributor_rewards - b.economy.contributor_rewards).abs() < 1e-6);
    let close = |x: Option<f64>, y: Option<f64>| match (x, y) {
        (Some(x), Some(y)) => (x - y).abs() < 0.05,
        (x, y) => x == y,
    };
    assert!(
        close(a.fairness.gini, b.fairness.gini),
        "{:?} vs {:?}",
        a.fairness,
        b.fairness
    );
    assert_eq!(a.attacks[0].detection_recall, b.attacks[0].detection_recall);
}

/// A language model on a text Datanet: trained on accepted documents, served by batched
/// generation, attributed by suffix-array span matching, paid on chain.
const LM_SCENARIO: &str = r#"
[run]
name = "lm-smoke"
seed = 3
epochs = 2

[[datanets]]
name = "notes"
domain = "healthcare"
task = "text"

[datanets.contributors]
count = 4
documents = [4, 6]

[datanets.reviewers]
count = 2
accuracy = 1.0

[[models]]
name = "notes-lm"
kind = "language_model"
datanets = ["notes"]
price = 0.02

[inference]
calls_per_epoch = 40
users = 2
calls_per_payment = 20

[[attackers]]
kind = "spammer"
datanet = "notes"
"#;

#[test]
fn language_model_outputs_are_attributed_by_span_matching_and_paid_on_chain() {
    let s = Scenario::parse("lm-smoke.toml", LM_SCENARIO).unwrap_or_else(|e| panic!("{e}"));
    let a = run(&s);
    let r = &a.result;
    assert!(r.economy.contributor_rewards > 0.0, "{:?}", r.economy);
    assert!(
        r.fairness.honest_share.is_some_and(|h| h > 0.9),
        "{:?}",
        r.fairness
    );
    let spam = r.attacks.iter().find(|x| x.kind == "spammer").unwrap();
    assert_eq!(
        spam.revenue, 0.0,
        "word salad earns no span matches: {spam:?}"
    );
    assert!(r.compute.iter().any(|c| c.stage == "serving"
        && c.models == "language models"
        && c.flops > 0.0
        && c.launches > 0.0
        && c.bound != "compute"));
    assert!(
        r.models
            .iter()
            .filter(|m| m.kind == "language_model" && m.calls > 0)
            .all(|m| m.gpu_usd_per_inference.is_some_and(|g| g > 0.0)),
        "{:?}",
        r.models
    );
    // 40 calls an epoch, 32 decoded: the rest is modelled, counted but not measured, so
    // the measured seconds leave it out rather than show it as 0.
    assert!(
        r.compute
            .iter()
            .any(|c| c.source == "modelled (not decoded)")
    );
    let measured = &a.perf.measured_compute;
    assert!(
        measured
            .iter()
            .any(|m| m.stage == "serving" && m.models == "language models"),
        "{measured:?}"
    );
    assert!(
        measured
            .iter()
            .all(|m| m.device != "modelled (not decoded)" && m.seconds >= 0.0),
        "{measured:?}"
    );
    assert_eq!(run(&s).digest, a.digest);
}
