//! The report's figures as titled tables, shared by the Markdown and HTML renderings.

use super::{Report, ResultSection};

/// A titled table of text cells.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// Section title.
    pub title: &'static str,
    /// Column headers.
    pub headers: Vec<&'static str>,
    /// Rows of cells, one per header.
    pub rows: Vec<Vec<String>>,
}

/// Formats an amount with thousands separators and two decimals; an amount too small to show
/// in two decimals gets three significant digits (`6.05e-3`) instead of reading as zero.
pub fn amount(x: f64) -> String {
    if x != 0.0 && x.abs() < 0.005 {
        return format!("{x:.2e}");
    }
    let text = format!("{:.2}", x.abs());
    // A tiny negative amount rounds to 0.00: never print `-0.00`.
    let negative = x < 0.0 && text.bytes().any(|b| (b'1'..=b'9').contains(&b));
    let (int, frac) = text.split_once('.').unwrap_or((&text, "00"));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{}{grouped}.{frac}", if negative { "-" } else { "" })
}

/// Three decimals (three significant digits below 0.001, so a small yield, time or cost
/// does not read as zero); never `-0.000`.
pub fn ratio(x: f64) -> String {
    if x != 0.0 && x.abs() < 0.001 {
        return format!("{x:.2e}");
    }
    let text = format!("{x:.3}");
    match text.strip_prefix('-') {
        Some(rest) if rest.bytes().all(|b| b == b'0' || b == b'.') => rest.to_string(),
        _ => text,
    }
}

/// A figure that may be undefined: three decimals, or `undefined` (docs/metrics.md says
/// when each figure is).
pub fn maybe(x: Option<f64>) -> String {
    x.map_or_else(|| UNDEFINED.into(), ratio)
}

/// Most rows of the per-contributor table (every contributor is in `report.json`).
pub const CONTRIBUTOR_ROWS: usize = 100;

/// The per-group summary and the per-contributor table (the first [`CONTRIBUTOR_ROWS`]).
fn contributor_tables(r: &ResultSection) -> Vec<Table> {
    if r.contributors.is_empty() {
        return Vec::new();
    }
    let summary = Table {
        title: "Contributor groups (honest groups by name, attackers by kind)",
        headers: vec![
            "group",
            "contributors",
            "mean quality",
            "mean coverage",
            "records",
            "accepted",
            "pending / lapsed",
            "rewards",
            "rewards per contributor",
            "slashed",
            "mean truth",
        ],
        rows: r
            .groups
            .iter()
            .map(|g| {
                vec![
                    g.name.clone(),
                    g.contributors.to_string(),
                    maybe(g.mean_quality),
                    maybe(g.mean_coverage),
                    g.records.to_string(),
                    g.accepted.to_string(),
                    format!("{} / {}", g.pending, g.lapsed),
                    amount(g.rewards),
                    amount(g.rewards_per_contributor),
                    amount(g.slashed),
                    maybe(g.mean_truth),
                ]
            })
            .collect(),
    };
    let contributors = Table {
        title: "Contributors (the first 100 by Datanet and id; every one is in report.json)",
        headers: vec![
            "contributor",
            "group",
            "quality",
            "coverage",
            "records",
            "accepted",
            "pending / lapsed",
            "rewards",
            "slashed",
            "truth",
        ],
        rows: r
            .contributors
            .iter()
            .take(CONTRIBUTOR_ROWS)
            .map(|c| {
                vec![
                    c.name.clone(),
                    c.group_label(),
                    maybe(c.quality),
                    maybe(c.coverage),
                    c.records.to_string(),
                    c.accepted.to_string(),
                    format!("{} / {}", c.pending, c.lapsed),
                    amount(c.rewards),
                    amount(c.slashed),
                    maybe(c.truth),
                ]
            })
            .collect(),
    };
    vec![summary, contributors]
}

/// How an undefined (null) figure is shown.
pub const UNDEFINED: &str = "undefined";

/// Every table of a report, in display order.
pub fn all(report: &Report) -> Vec<Table> {
    let r = &report.result;
    let e = &r.economy;
    let f = &r.fairness;
    let c = &r.chain;
    let mut tables = Vec::new();
    if !report.claims.is_empty() {
        tables.push(Table {
            title: "Claims ([[expect]])",
            headers: vec!["figure", "claim", "found", "holds", "why"],
            rows: report
                .claims
                .iter()
                .map(|c| {
                    vec![
                        c.path.clone(),
                        c.claim.clone(),
                        c.value
                            .as_ref()
                            .map_or_else(|| "-".into(), |v| v.to_string()),
                        if c.holds {
                            "yes".into()
                        } else {
                            format!("NO: {}", c.problem.clone().unwrap_or_default())
                        },
                        c.why.clone(),
                    ]
                })
                .collect(),
        });
    }
    tables.extend([
        Table {
            title: "Fairness",
            headers: vec!["measure", "value"],
            rows: vec![
                vec!["Gini of rewards".into(), maybe(f.gini)],
                vec!["honest share of rewards".into(), maybe(f.honest_share)],
                vec!["slash rule".into(), f.slash_rule.clone()],
                vec!["reward rule".into(), f.reward_rule.clone()],
                vec![
                    "honest stake slashed / honest stake posted".into(),
                    maybe(f.honest_slash_rate),
                ],
                vec![
                    "honest contributions slashed as harmful".into(),
                    f.honest_slashed_as_harmful.to_string(),
                ],
                vec![
                    format!("Spearman(reward, {})", f.truth),
                    maybe(f.spearman_vs_truth),
                ],
                vec![
                    "  its 95% bootstrap interval".into(),
                    f.spearman_vs_truth_interval.map_or_else(
                        || UNDEFINED.into(),
                        |[lo, hi]| format!("[{}, {}]", ratio(lo), ratio(hi)),
                    ),
                ],
                vec![
                    "  over contributors with accepted items".into(),
                    maybe(f.spearman_vs_truth_accepted),
                ],
                vec![
                    "  reliability of the truth (two independent estimates)".into(),
                    maybe(f.truth_reliability),
                ],
                vec![
                    format!("Spearman(accepted items, {}): paying by volume", f.truth),
                    maybe(f.spearman_volume_vs_truth),
                ],
            ],
        },
        Table {
            title: "Economy (OPEN)",
            headers: vec!["item", "amount"],
            rows: vec![
                vec!["inference fees".into(), amount(e.fees)],
                vec![
                    "paid from reward pools".into(),
                    amount(e.contributor_rewards),
                ],
                vec!["model owner fees".into(), amount(e.owner_fees)],
                vec!["staker rewards".into(), amount(e.staker_rewards)],
                vec![
                    "  of which still streaming at the end".into(),
                    amount(e.staking_streaming),
                ],
                vec!["treasury".into(), amount(e.treasury)],
                vec!["  its fee share".into(), amount(e.treasury_fee_share)],
                vec![
                    "  stakers' share while nobody staked".into(),
                    amount(e.treasury_unstaked_share),
                ],
                vec!["  slashed stake".into(), amount(e.slashed)],
                vec![
                    format!("left in reward pools ({} settlement)", e.settlement),
                    amount(e.pools),
                ],
                vec!["staking yield over the run".into(), maybe(e.staking_yield)],
            ],
        },
        Table {
            title: "Epochs",
            headers: vec![
                "epoch",
                "calls",
                "fees",
                "contributor pool",
                "rewards paid",
                "submitted/accepted/rejected",
                "slashed",
                "staked",
                "fee split bps",
            ],
            rows: r
                .epochs
                .iter()
                .map(|ep| {
                    vec![
                        ep.epoch.to_string(),
                        ep.inference_calls.to_string(),
                        amount(ep.fees),
                        amount(ep.contributor_pool),
                        amount(ep.rewards_paid),
                        format!(
                            "{}/{}/{}",
                            ep.contributions[0], ep.contributions[1], ep.contributions[2]
                        ),
                        amount(ep.slashed),
                        amount(ep.staked),
                        format!(
                            "{}/{}/{}/{}",
                            ep.fee_split[0], ep.fee_split[1], ep.fee_split[2], ep.fee_split[3]
                        ),
                    ]
                })
                .collect(),
        },
    ]);
    tables.extend(contributor_tables(r));
    if !r.models.is_empty() {
        tables.push(Table {
            title: "Models (OPEN)",
            headers: vec![
                "model",
                "kind",
                "attribution",
                "price",
                "calls",
                "fees",
                "contributor pool",
                "paid from pool",
                "settled epochs",
                "outputs attributed",
            ],
            rows: r
                .models
                .iter()
                .map(|m| {
                    vec![
                        m.name.clone(),
                        m.kind.clone(),
                        m.attribution.clone(),
                        amount(m.price),
                        m.calls.to_string(),
                        amount(m.fees),
                        amount(m.pool),
                        amount(m.paid),
                        m.settled_epochs.to_string(),
                        match m.attributed_fraction {
                            Some(f) => {
                                let error = match m.attribution_sampling_error {
                                    Some(e) if e > 0.0 => format!("; sampling error {e:.3}"),
                                    _ => String::new(),
                                };
                                format!(
                                    "{} of {} ({:.1}%{error})",
                                    m.outputs_attributed,
                                    m.outputs_served,
                                    100.0 * f
                                )
                            }
                            None => "none served".into(),
                        },
                    ]
                })
                .collect(),
        });
        let served = |x: Option<f64>| x.map_or_else(|| "not served".to_string(), ratio);
        tables.push(Table {
            title: "Fee and GPU cost per inference (USD; GPU cost modelled on the Compute \
                    table's profile, fee at the scenario's OPEN price)",
            headers: vec![
                "model",
                "fee",
                "GPU cost (modelled)",
                "margin before fee split",
            ],
            rows: r
                .models
                .iter()
                .map(|m| {
                    vec![
                        m.name.clone(),
                        ratio(m.fee_usd_per_inference),
                        served(m.gpu_usd_per_inference),
                        served(m.margin_usd_per_inference),
                    ]
                })
                .collect(),
        });
    }
    if !r.attacks.is_empty() {
        tables.push(Table {
            title: "Attacks",
            headers: vec![
                "kind",
                "identities",
                "capital",
                "cost",
                "revenue",
                "slashed",
                "return on capital",
                "detection precision",
                "detection recall",
                "split gain",
                "victim loss",
                "copy gain",
                "captured",
            ],
            rows: r
                .attacks
                .iter()
                .map(|a| {
                    vec![
                        a.kind.clone(),
                        a.identities.to_string(),
                        amount(a.capital),
                        amount(a.cost),
                        amount(a.revenue),
                        amount(a.slashed),
                        maybe(a.roi),
                        maybe(a.detection_precision),
                        maybe(a.detection_recall),
                        maybe(a.split_gain),
                        a.victim_loss.map_or_else(|| UNDEFINED.into(), amount),
                        maybe(a.copy_gain),
                        match a.captured {
                            Some(true) => "yes".into(),
                            Some(false) => "no".into(),
                            None => UNDEFINED.into(),
                        },
                    ]
                })
                .collect(),
        });
    }
    if !r.grants.is_empty() {
        tables.push(Table {
            title: "OpenCircle grants",
            headers: vec![
                "tier",
                "funded",
                "completed",
                "failed",
                "granted USD",
                "released OPEN",
                "returned OPEN",
                "fees generated",
                "fee USD per grant USD",
            ],
            rows: r
                .grants
                .iter()
                .map(|g| {
                    vec![
                        g.tier.clone(),
                        g.funded.to_string(),
                        g.completed.to_string(),
                        g.failed.to_string(),
                        amount(g.granted_usd),
                        amount(g.released),
                        amount(g.returned),
                        amount(g.fees_generated),
                        ratio(g.roi),
                    ]
                })
                .collect(),
        });
    }
    if !r.governance.is_empty() {
        tables.push(Table {
            title: "Governance",
            headers: vec![
                "proposal", "proposed", "state", "executed", "for", "against",
            ],
            rows: r
                .governance
                .iter()
                .map(|p| {
                    vec![
                        p.description.clone(),
                        p.proposed.to_string(),
                        p.state.clone(),
                        p.executed_epoch
                            .map_or("no".into(), |e| format!("epoch {e}")),
                        amount(p.votes[0]),
                        amount(p.votes[1]),
                    ]
                })
                .collect(),
        });
    }
    tables.push(Table {
        title: "Chain",
        headers: vec!["measure", "value"],
        rows: vec![
            vec!["blocks".into(), c.blocks.to_string()],
            vec!["transactions included".into(), c.transactions.to_string()],
            vec!["transactions refused".into(), c.refused.to_string()],
            vec!["gas used".into(), c.gas_used.to_string()],
            vec!["gas fees (ETH)".into(), ratio(c.gas_fees_eth)],
            vec!["books digest".into(), c.books_digest.clone()],
        ],
    });
    if !c.refusals.is_empty() {
        tables.push(Table {
            title: "Refused transactions",
            headers: vec!["action", "error", "count", "first"],
            rows: c
                .refusals
                .iter()
                .map(|r| {
                    vec![
                        r.action.clone(),
                        r.error.clone(),
                        r.count.to_string(),
                        r.first.clone(),
                    ]
                })
                .collect(),
        });
    }
    tables.push(Table {
        title: "Compute (counted kernels; time and cost modelled on a device profile: \
                launches × launch overhead + max(bytes / bandwidth, FLOPs / peak))",
        headers: vec![
            "stage",
            "models",
            "counted on",
            "GFLOP",
            "launches",
            "MB moved",
            "profile",
            "launch s",
            "memory s",
            "compute s",
            "modelled s",
            "bound",
            "modelled USD",
        ],
        rows: r
            .compute
            .iter()
            .map(|s| {
                vec![
                    s.stage.clone(),
                    s.models.clone(),
                    s.source.clone(),
                    format!("{:.3}", s.flops / 1e9),
                    format!("{:.0}", s.launches),
                    format!("{:.1}", s.bytes / 1e6),
                    s.profile.clone(),
                    ratio(s.launch_seconds),
                    ratio(s.memory_seconds),
                    ratio(s.compute_seconds),
                    ratio(s.modelled_seconds),
                    s.bound.clone(),
                    ratio(s.modelled_cost_usd),
                ]
            })
            .collect(),
    });
    let p = &report.perf;
    let mut perf_rows: Vec<Vec<String>> = p
        .stages
        .iter()
        .map(|(stage, s)| vec![format!("{stage} (s)"), ratio(*s)])
        .collect();
    perf_rows.extend([
        vec!["total (s)".into(), format!("{:.3}", p.total_seconds)],
        vec!["chain tx/s".into(), format!("{:.0}", p.tx_per_second)],
        vec!["chain gas/s".into(), format!("{:.0}", p.gas_per_second)],
        vec![
            "inferences/s".into(),
            format!("{:.0}", p.inferences_per_second),
        ],
        vec![
            "attributions/s".into(),
            format!("{:.0}", p.attributions_per_second),
        ],
        vec!["threads".into(), p.threads.to_string()],
        vec![
            "fine-tunes trained / reused (counterfactual runs included)".into(),
            p.fine_tunes.map_or_else(
                || "not recorded (a report written before they were counted)".into(),
                |f| format!("{} / {}", f.trained, f.reused),
            ),
        ],
        vec![
            "influence indexes built / handed on (counterfactual runs included)".into(),
            p.influence_indexes.map_or_else(
                || "not recorded (a report written before they were counted)".into(),
                |i| format!("{} / {}", i.built, i.reused),
            ),
        ],
        vec![
            "signatures made / reused (counterfactual runs included)".into(),
            p.signatures.map_or_else(
                || "not kept (no counterfactual run, or a report from before they were)".into(),
                |s| format!("{} / {}", s.made, s.reused),
            ),
        ],
    ]);
    perf_rows.extend(p.measured_compute.iter().map(|m| {
        vec![
            format!("{} of {} on {}, measured (s)", m.stage, m.models, m.device),
            ratio(m.seconds),
        ]
    }));
    match (&p.measured, &p.measured_reason) {
        (Some(lines), _) => perf_rows.extend(lines.iter().map(|m| {
            vec![
                format!(
                    "{} of {} on {}, measured / modelled",
                    m.stage, m.models, m.device
                ),
                format!(
                    "{:.3} / {} = {:.1}",
                    m.measured_seconds,
                    ratio(m.modelled_seconds),
                    m.ratio
                ),
            ]
        })),
        (None, reason) => perf_rows.push(vec![
            "GPU measured / modelled".into(),
            reason.clone().unwrap_or_default(),
        ]),
    }
    tables.push(Table {
        title: "Performance (wall clock, this machine; outside the digest)",
        headers: vec!["measure", "value"],
        rows: perf_rows,
    });
    tables
}

#[cfg(test)]
mod tests {
    use super::amount;

    #[test]
    fn amounts_are_grouped() {
        assert_eq!(amount(0.0), "0.00");
        assert_eq!(amount(1234.5), "1,234.50");
        assert_eq!(amount(-1234567.891), "-1,234,567.89");
        assert_eq!(amount(999.999), "1,000.00");
    }
}
