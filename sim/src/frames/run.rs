//! A run's tables as Parquet files beside its report.json: epochs, contributors, attacks,
//! grants, governance, models and the transaction log (docs/metrics.md, "Data files"). Each starts
//! with the `scenario` and `seed` columns and carries the scenario name, seed, report
//! version and result digest as metadata ([`context`]).

use alloy_primitives::U256;

use super::{Column, Context, FrameError, Scalar, parquet};
use crate::engine::{Failure, Transactions, TxRecord};
use crate::report::{
    AttackResult, ContributorResult, EpochResult, GrantTierResult, ModelResult, ProposalResult,
    REPORT_VERSION, Report,
};
use crate::units::to_open;

/// The files of a run's tables, in the order [`tables`] gives them.
pub const FILES: [&str; 7] = [
    "epochs.parquet",
    "contributors.parquet",
    "attacks.parquet",
    "grants.parquet",
    "governance.parquet",
    "models.parquet",
    "transactions.parquet",
];

/// Metadata key of the run's result digest.
pub const DIGEST_KEY: &str = "olsim.digest";

/// Metadata keys of every file: scenario name, seed, report format version, result digest.
pub const METADATA_KEYS: [&str; 4] = [
    "olsim.scenario",
    "olsim.seed",
    "olsim.report_version",
    DIGEST_KEY,
];

/// The context of `report`'s tables: `scenario` and `seed` columns, and the metadata of
/// [`METADATA_KEYS`].
pub fn context(report: &Report) -> Context {
    let values = [
        report.scenario.name.clone(),
        report.scenario.seed.to_string(),
        REPORT_VERSION.to_string(),
        report.digest.clone(),
    ];
    Context {
        constants: vec![
            (
                "scenario".into(),
                Scalar::Text(report.scenario.name.clone()),
            ),
            ("seed".into(), Scalar::U64(report.scenario.seed)),
        ],
        metadata: METADATA_KEYS
            .iter()
            .map(|k| k.to_string())
            .zip(values)
            .collect(),
    }
}

/// Every table of a run as `(file name of` [`FILES`]`, Parquet bytes)`.
pub fn tables(
    report: &Report,
    transactions: &Transactions,
    context: &Context,
) -> Result<Vec<(&'static str, Vec<u8>)>, FrameError> {
    let r = &report.result;
    let files = [
        parquet("epochs", context, &epoch_columns(), &r.epochs)?,
        contributors(report, context)?,
        parquet("attacks", context, &attack_columns(), &r.attacks)?,
        parquet("grants", context, &grant_columns(), &r.grants)?,
        parquet("governance", context, &proposal_columns(), &r.governance)?,
        parquet("models", context, &model_columns(), &r.models)?,
        parquet(
            "transactions",
            context,
            &transaction_columns(),
            transactions.rows(),
        )?,
    ];
    Ok(FILES.into_iter().zip(files).collect())
}

/// The contributors table of `report` (also a sweep point's part, with its parameters in
/// `context`).
pub fn contributors(report: &Report, context: &Context) -> Result<Vec<u8>, FrameError> {
    parquet(
        "contributors",
        context,
        &contributor_columns(),
        &report.result.contributors,
    )
}

fn epoch_columns<'a>() -> Vec<Column<'a, &'a EpochResult>> {
    vec![
        Column::u64("epoch", |e: &&EpochResult| u64::from(e.epoch)),
        Column::u64("inference_calls", |e: &&EpochResult| e.inference_calls),
        Column::f64("fees", |e: &&EpochResult| e.fees),
        Column::f64("contributor_pool", |e: &&EpochResult| e.contributor_pool),
        Column::f64("rewards_paid", |e: &&EpochResult| e.rewards_paid),
        Column::u64("contributions_submitted", |e: &&EpochResult| {
            e.contributions[0]
        }),
        Column::u64("contributions_accepted", |e: &&EpochResult| {
            e.contributions[1]
        }),
        Column::u64("contributions_rejected", |e: &&EpochResult| {
            e.contributions[2]
        }),
        Column::f64("slashed", |e: &&EpochResult| e.slashed),
        Column::f64("treasury", |e: &&EpochResult| e.treasury),
        Column::f64("staked", |e: &&EpochResult| e.staked),
        Column::u64("split_contributors_bps", |e: &&EpochResult| {
            u64::from(e.fee_split[0])
        }),
        Column::u64("split_owner_bps", |e: &&EpochResult| {
            u64::from(e.fee_split[1])
        }),
        Column::u64("split_stakers_bps", |e: &&EpochResult| {
            u64::from(e.fee_split[2])
        }),
        Column::u64("split_treasury_bps", |e: &&EpochResult| {
            u64::from(e.fee_split[3])
        }),
    ]
}

fn contributor_columns<'a>() -> Vec<Column<'a, &'a ContributorResult>> {
    type C<'b> = &'b ContributorResult;
    vec![
        Column::text("name", |c: &C| c.name.clone()),
        Column::text("kind", |c: &C| c.kind.clone()),
        Column::text("group", |c: &C| c.group.clone()),
        Column::u64("records", |c: &C| c.records),
        Column::u64("accepted", |c: &C| c.accepted),
        Column::u64("pending", |c: &C| c.pending),
        Column::u64("lapsed", |c: &C| c.lapsed),
        Column::f64("rewards", |c: &C| c.rewards),
        Column::f64("slashed", |c: &C| c.slashed),
        Column::f64("truth", |c: &C| c.truth),
        Column::f64("truth_low", |c: &C| c.truth_interval.map(|i| i[0])),
        Column::f64("truth_high", |c: &C| c.truth_interval.map(|i| i[1])),
        Column::f64("quality", |c: &C| c.quality),
        Column::f64("coverage", |c: &C| c.coverage),
        Column::u64("harmful_contributions", |c: &C| c.harmful_contributions),
    ]
}

fn attack_columns<'a>() -> Vec<Column<'a, &'a AttackResult>> {
    type A<'b> = &'b AttackResult;
    vec![
        Column::text("kind", |a: &A| a.kind.clone()),
        Column::u64("identities", |a: &A| u64::from(a.identities)),
        Column::f64("capital", |a: &A| a.capital),
        Column::f64("cost", |a: &A| a.cost),
        Column::f64("revenue", |a: &A| a.revenue),
        Column::f64("slashed", |a: &A| a.slashed),
        Column::f64("roi", |a: &A| a.roi),
        Column::f64("detection_precision", |a: &A| a.detection_precision),
        Column::f64("detection_recall", |a: &A| a.detection_recall),
        Column::f64("split_gain", |a: &A| a.split_gain),
        Column::f64("victim_loss", |a: &A| a.victim_loss),
        Column::f64("copy_gain", |a: &A| a.copy_gain),
        Column::bool("captured", |a: &A| a.captured),
    ]
}

fn grant_columns<'a>() -> Vec<Column<'a, &'a GrantTierResult>> {
    type G<'b> = &'b GrantTierResult;
    vec![
        Column::text("tier", |g: &G| g.tier.clone()),
        Column::u64("funded", |g: &G| u64::from(g.funded)),
        Column::u64("completed", |g: &G| u64::from(g.completed)),
        Column::u64("failed", |g: &G| u64::from(g.failed)),
        Column::f64("granted_usd", |g: &G| g.granted_usd),
        Column::f64("released", |g: &G| g.released),
        Column::f64("returned", |g: &G| g.returned),
        Column::f64("fees_generated", |g: &G| g.fees_generated),
        Column::f64("roi", |g: &G| g.roi),
    ]
}

fn model_columns<'a>() -> Vec<Column<'a, &'a ModelResult>> {
    type M<'b> = &'b ModelResult;
    vec![
        Column::text("name", |m: &M| m.name.clone()),
        Column::text("kind", |m: &M| m.kind.clone()),
        Column::text("attribution", |m: &M| m.attribution.clone()),
        Column::f64("price", |m: &M| m.price),
        Column::u64("calls", |m: &M| m.calls),
        Column::f64("fees", |m: &M| m.fees),
        Column::f64("pool", |m: &M| m.pool),
        Column::f64("paid", |m: &M| m.paid),
        Column::u64("settled_epochs", |m: &M| u64::from(m.settled_epochs)),
        Column::u64("outputs_served", |m: &M| m.outputs_served),
        Column::u64("outputs_attributed", |m: &M| m.outputs_attributed),
        Column::f64("attributed_fraction", |m: &M| m.attributed_fraction),
        Column::f64("attribution_sampling_error", |m: &M| {
            m.attribution_sampling_error
        }),
        Column::f64("gpu_usd_per_inference", |m: &M| m.gpu_usd_per_inference),
        Column::f64("fee_usd_per_inference", |m: &M| m.fee_usd_per_inference),
        Column::f64("margin_usd_per_inference", |m: &M| {
            m.margin_usd_per_inference
        }),
    ]
}

fn proposal_columns<'a>() -> Vec<Column<'a, &'a ProposalResult>> {
    type P<'b> = &'b ProposalResult;
    vec![
        Column::text("description", |p: &P| p.description.clone()),
        Column::u64("proposed", |p: &P| u64::from(p.proposed)),
        Column::bool("executed", |p: &P| p.executed),
        Column::u64("executed_epoch", |p: &P| p.executed_epoch.map(u64::from)),
        Column::text("state", |p: &P| p.state.clone()),
        Column::f64("votes_for", |p: &P| p.votes[0]),
        Column::f64("votes_against", |p: &P| p.votes[1]),
    ]
}

/// A transaction: its record, its sender's name and, if refused, why.
type TxRow<'a> = (&'a TxRecord, &'a str, Option<&'a Failure>);

fn transaction_columns<'a>() -> Vec<Column<'a, TxRow<'a>>> {
    vec![
        Column::u64("epoch", |t: &TxRow| u64::from(t.0.epoch)),
        Column::text("action", |t: &TxRow| t.0.label.to_string()),
        Column::text("agent", |t: &TxRow| t.1.to_string()),
        Column::text("status", |t: &TxRow| {
            if t.0.included() {
                "included"
            } else {
                "refused"
            }
            .to_string()
        }),
        Column::u64("gas_used", |t: &TxRow| t.0.gas_used.map(u64::from)),
        Column::f64("fee_eth", |t: &TxRow| to_open(U256::from(t.0.fee_wei()))),
        Column::text("fee_wei", |t: &TxRow| t.0.fee_wei().to_string()),
        Column::text("error", |t: &TxRow| t.2.map(|f| f.error.clone())),
        Column::text("reason", |t: &TxRow| t.2.map(|f| f.reason.clone())),
    ]
}

#[cfg(test)]
mod tests {
    use alloy_primitives::{Address, B256};
    use arrow_array::cast::AsArray;
    use arrow_array::types::UInt64Type;
    use olsim_chain::Receipt;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use super::*;
    use crate::engine::{Action, AgentId};
    use crate::report::{ResultSection, ScenarioInfo};

    /// `bytes` in an anonymous temporary file (what the Parquet reader reads from).
    fn file(bytes: &[u8]) -> std::fs::File {
        use std::io::Write as _;
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        f
    }

    #[test]
    fn a_refused_transaction_has_its_error_and_reason_and_no_gas_or_fee() {
        let action = Action::eth(AgentId(1), Address::ZERO, U256::ZERO);
        let receipt = Receipt {
            tx_hash: B256::ZERO,
            block_number: 1,
            from: Address::ZERO,
            to: None,
            contract_address: None,
            gas_used: 21_000,
            effective_gas_price: 1_000_000_007,
            l1_fee: Some(U256::from(5)),
            logs: Vec::new(),
        };
        let transactions = Transactions {
            records: vec![
                TxRecord::new(0, &action, Some(&receipt)),
                TxRecord::new(3, &action, None),
            ],
            failures: vec![Failure {
                epoch: 3,
                agent: "bob".into(),
                action: action.label,
                error: "StakeTooLow".into(),
                reason: "StakeTooLow(1, 100)".into(),
            }],
            agents: vec!["alice".into(), "bob".into()],
        };
        let info = ScenarioInfo {
            name: "t".into(),
            seed: 9,
            epochs: 4,
            backend: "embedded".into(),
            transactions: "signed".into(),
            device: "cpu".into(),
        };
        let report = Report::new(info, ResultSection::default(), Default::default());
        let files = tables(&report, &transactions, &context(&report)).unwrap();
        let (name, bytes) = files.last().expect("a run has tables");
        assert_eq!(*name, "transactions.parquet");
        let batch = ParquetRecordBatchReaderBuilder::try_new(file(bytes))
            .unwrap()
            .build()
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        let text = |c: &str| -> Vec<Option<String>> {
            batch[c]
                .as_string::<i32>()
                .iter()
                .map(|s| s.map(String::from))
                .collect()
        };
        let some = |s: &str| Some(s.to_string());
        assert_eq!(text("agent"), [some("bob"), some("bob")]);
        assert_eq!(text("status"), [some("included"), some("refused")]);
        assert_eq!(text("fee_wei"), [some("21000000147005"), some("0")]);
        assert_eq!(text("error"), [None, some("StakeTooLow")]);
        assert_eq!(text("reason"), [None, some("StakeTooLow(1, 100)")]);
        let gas: Vec<Option<u64>> = batch["gas_used"]
            .as_primitive::<UInt64Type>()
            .iter()
            .collect();
        assert_eq!(gas, [Some(21_000), None]);
        let epochs: Vec<Option<u64>> = batch["epoch"].as_primitive::<UInt64Type>().iter().collect();
        assert_eq!(epochs, [Some(0), Some(3)]);
        // Empty tables are written with their columns.
        let (_, epochs) = &files[0];
        let empty = ParquetRecordBatchReaderBuilder::try_new(file(epochs)).unwrap();
        assert_eq!(empty.metadata().file_metadata().num_rows(), 0);
        assert_eq!(empty.schema().fields().len(), 2 + 15);
    }
}
