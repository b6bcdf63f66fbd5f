//! The four Datanet domains: feature schema, true labelling function and text grammar.
//!
//! Ground truth: each domain's classification task has a *known* labelling function
//! ([`Labeler`]), a fixed random linear rule plus one interaction term, drawn from the
//! stream `"domain/<name>/labeler"` of the master seed. Features live in `[-1, 1]`; the
//! label is `1` when `w·x + c·x_i·x_j + b > 0`, else `0`. The text grammar lists the
//! domain's words and sentence templates; templates are whitespace-separated words with the
//! slots `{e}` (entity), `{m}` (metric), `{v}` (venue), `{n}` (a number 0-99) and `{c}`
//! (a contributor's codename, only in private-fact templates).

use std::fmt;

use rand::RngExt;

use super::rng::{Stream, normal, stream};

/// A Datanet domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Domain {
    /// Market data: assets, venues, prices.
    Finance,
    /// Clinical data: drugs, sites, outcomes.
    Healthcare,
    /// Decentralised physical infrastructure: hotspots, sensors, uptime.
    Depin,
    /// Games: items, arenas, player behaviour.
    Gaming,
}

/// The text grammar of a domain: slot vocabularies and sentence templates.
#[derive(Clone, Copy, Debug)]
pub struct Grammar {
    /// Words for the `{e}` slot.
    pub entities: &'static [&'static str],
    /// Words for the `{m}` slot.
    pub metrics: &'static [&'static str],
    /// Words for the `{v}` slot.
    pub venues: &'static [&'static str],
    /// Template stating a world fact: uses `{e} {m} {v} {n}`.
    pub fact: &'static str,
    /// Template stating a contributor's private fact: uses `{c} {e} {m} {v} {n}`.
    pub private_fact: &'static str,
    /// Filler templates that make no numeric claim (any of `{e} {m} {v}`).
    pub fillers: &'static [&'static str],
}

impl Domain {
    /// All domains, in a fixed order.
    pub const ALL: [Domain; 4] = [
        Domain::Finance,
        Domain::Healthcare,
        Domain::Depin,
        Domain::Gaming,
    ];

    /// Stable lower-case name (used in stream names and files).
    pub fn name(self) -> &'static str {
        match self {
            Domain::Finance => "finance",
            Domain::Healthcare => "healthcare",
            Domain::Depin => "depin",
            Domain::Gaming => "gaming",
        }
    }

    /// Parses a name produced by [`Domain::name`].
    pub fn from_name(name: &str) -> Option<Domain> {
        Domain::ALL.into_iter().find(|d| d.name() == name)
    }

    /// What the classification task predicts (label 1).
    pub fn task(self) -> &'static str {
        match self {
            Domain::Finance => "price rises next epoch",
            Domain::Healthcare => "patient is high risk",
            Domain::Depin => "node is reliable",
            Domain::Gaming => "player churns",
        }
    }

    /// Names of the feature columns, all normalised to `[-1, 1]`.
    pub fn feature_names(self) -> &'static [&'static str] {
        match self {
            Domain::Finance => &[
                "price_change",
                "volume_z",
                "spread_bps",
                "volatility",
                "order_imbalance",
                "funding_rate",
                "open_interest",
                "sentiment",
            ],
            Domain::Healthcare => &[
                "age",
                "bmi",
                "systolic_bp",
                "glucose",
                "cholesterol",
                "heart_rate",
                "smoker_index",
                "activity",
            ],
            Domain::Depin => &[
                "uptime",
                "bandwidth",
                "latency",
                "signal",
                "peer_count",
                "stake",
                "geo_density",
                "reward_rate",
            ],
            Domain::Gaming => &[
                "playtime",
                "win_rate",
                "spend",
                "session_len",
                "level",
                "social",
                "churn_score",
                "reports",
            ],
        }
    }

    /// Number of features.
    pub fn dim(self) -> usize {
        self.feature_names().len()
    }

    /// The domain's text grammar.
    pub fn grammar(self) -> Grammar {
        match self {
            Domain::Finance => Grammar {
                entities: &["btc", "eth", "sol", "usdc", "open", "bond", "gold", "euro"],
                metrics: &[
                    "volume",
                    "price",
                    "spread",
                    "yield",
                    "volatility",
                    "liquidity",
                ],
                venues: &[
                    "binance", "coinbase", "kraken", "uniswap", "nasdaq", "curve",
                ],
                fact: "the {e} {m} on {v} was {n} .",
                private_fact: "{c} reports the {e} {m} on {v} at {n} .",
                fillers: &[
                    "analysts watched the {e} {m} closely .",
                    "the {v} desk reviewed {e} flows .",
                    "traders expect the {m} of {e} to move .",
                ],
            },
            Domain::Healthcare => Grammar {
                entities: &[
                    "insulin",
                    "aspirin",
                    "statin",
                    "vaccine",
                    "metformin",
                    "ibuprofen",
                    "antibiotic",
                    "placebo",
                ],
                metrics: &[
                    "dosage",
                    "efficacy",
                    "adherence",
                    "response",
                    "readmission",
                    "tolerance",
                ],
                venues: &[
                    "clinic", "hospital", "trial", "ward", "pharmacy", "registry",
                ],
                fact: "the {e} {m} at the {v} was {n} .",
                private_fact: "{c} measured the {e} {m} at the {v} as {n} .",
                fillers: &[
                    "clinicians reviewed the {e} {m} records .",
                    "the {v} staff logged {e} cases .",
                    "researchers compared {m} across {e} cohorts .",
                ],
            },
            Domain::Depin => Grammar {
                entities: &[
                    "hotspot", "sensor", "router", "node", "gateway", "antenna", "relay", "miner",
                ],
                metrics: &[
                    "uptime",
                    "bandwidth",
                    "coverage",
                    "latency",
                    "throughput",
                    "rewards",
                ],
                venues: &["berlin", "lagos", "austin", "seoul", "lima", "oslo"],
                fact: "the {e} {m} in {v} was {n} .",
                private_fact: "{c} observed the {e} {m} in {v} at {n} .",
                fillers: &[
                    "operators upgraded the {e} fleet in {v} .",
                    "the {v} network tracked {e} {m} .",
                    "validators sampled {m} from each {e} .",
                ],
            },
            Domain::Gaming => Grammar {
                entities: &[
                    "sword", "potion", "shield", "dragon", "quest", "guild", "mount", "relic",
                ],
                metrics: &[
                    "droprate",
                    "winrate",
                    "price",
                    "playtime",
                    "level",
                    "spawnrate",
                ],
                venues: &["arena", "dungeon", "market", "server", "realm", "lobby"],
                fact: "the {e} {m} in the {v} was {n} .",
                private_fact: "{c} logged the {e} {m} in the {v} at {n} .",
                fillers: &[
                    "players discussed the {e} {m} at length .",
                    "the {v} crowd traded {e} items .",
                    "designers tuned the {m} of every {e} .",
                ],
            },
        }
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The true labelling function of a domain's classification task (ground truth).
///
/// `label(x) = 1` iff `weights·x + interaction_weight·x[i]·x[j] + bias > 0`, where
/// `(i, j) = interaction`.
#[derive(Clone, Debug, PartialEq)]
pub struct Labeler {
    /// Linear weights, one per feature.
    pub weights: Vec<f32>,
    /// The two features of the interaction term.
    pub interaction: (usize, usize),
    /// Weight of the interaction term.
    pub interaction_weight: f32,
    /// Bias.
    pub bias: f32,
}

impl Labeler {
    /// Draws the labelling function of `domain` from the stream `"domain/<name>/labeler"`.
    pub fn for_domain(seed: u64, domain: Domain) -> Labeler {
        let mut rng = stream(seed, &format!("domain/{}/labeler", domain.name()));
        Labeler::draw(&mut rng, domain.dim())
    }

    /// Draws a labelling function over `dim >= 2` features.
    pub fn draw(rng: &mut Stream, dim: usize) -> Labeler {
        assert!(dim >= 2, "a labeler needs at least two features");
        let weights = (0..dim).map(|_| normal(rng) as f32).collect();
        let i = rng.random_range(0..dim);
        let mut j = rng.random_range(0..dim - 1);
        if j >= i {
            j += 1;
        }
        let sign = if rng.random_bool(0.5) { 1.0 } else { -1.0 };
        let interaction_weight = sign * rng.random_range(0.5f32..1.5);
        let bias = 0.2 * normal(rng) as f32;
        Labeler {
            weights,
            interaction: (i, j),
            interaction_weight,
            bias,
        }
    }

    /// The raw score; the label is `score > 0`.
    pub fn score(&self, x: &[f32]) -> f32 {
        let linear: f32 = self.weights.iter().zip(x).map(|(w, v)| w * v).sum();
        let (i, j) = self.interaction;
        linear + self.interaction_weight * x[i] * x[j] + self.bias
    }

    /// The true label of feature vector `x` (0 or 1).
    pub fn label(&self, x: &[f32]) -> u8 {
        u8::from(self.score(x) > 0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for d in Domain::ALL {
            assert_eq!(Domain::from_name(d.name()), Some(d));
            assert_eq!(d.dim(), 8);
        }
    }

    #[test]
    fn labeler_is_deterministic_and_balanced_enough() {
        for d in Domain::ALL {
            let a = Labeler::for_domain(3, d);
            assert_eq!(a, Labeler::for_domain(3, d));
            let mut rng = stream(3, "test");
            let n = 4000;
            let ones: usize = (0..n)
                .map(|_| {
                    let x: Vec<f32> = (0..8).map(|_| rng.random_range(-1.0f32..1.0)).collect();
                    a.label(&x) as usize
                })
                .sum();
            assert!(ones > n / 10 && ones < n * 9 / 10, "{d}: {ones}/{n} ones");
        }
    }

    #[test]
    fn templates_use_only_known_slots() {
        for d in Domain::ALL {
            let g = d.grammar();
            let all = [g.fact, g.private_fact]
                .into_iter()
                .chain(g.fillers.iter().copied());
            for t in all {
                for w in t.split_whitespace() {
                    if w.starts_with('{') {
                        assert!(["{e}", "{m}", "{v}", "{n}", "{c}"].contains(&w), "{t}");
                    }
                }
            }
        }
    }
}
