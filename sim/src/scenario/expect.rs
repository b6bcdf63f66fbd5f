//! `[[expect]]`: claims a scenario makes about its own result, checked after the run.
//!
//! ```toml
//! [[expect]]
//! path = "attacks[sybil].roi"
//! below = 0.0
//! why = "sybil identities do not profit"
//! ```
//!
//! A path walks the report's `result` section (docs/metrics.md names every figure): field
//! names joined by `.`, and `[selector]` after a list: a number is a position (from 0), any
//! other text picks the entry whose `kind`, `name`, `tier` or `stage` equals it
//! (`attacks[label_flip]`, `contributors[finance-signals/contributor-3]`). Each claim takes
//! one or more of `below`, `above`, `at_most`, `at_least` (numbers) or `equals` (a number,
//! a boolean or a string). A figure that is `null` (undefined, with its reason in the docs)
//! never satisfies a claim. `olsim run` prints every claim with the value it found, and
//! `--strict` fails the run when one does not hold.

use serde::{Deserialize, Serialize};

/// One claim about the run's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// Where the figure is in the report's `result` section (see the module docs).
    pub path: String,
    /// The figure is `< below`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
    /// The figure is `> above`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<f64>,
    /// The figure is `<= at_most`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_most: Option<f64>,
    /// The figure is `>= at_least`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_least: Option<f64>,
    /// The figure equals this number, boolean or string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<toml::Value>,
    /// What the claim means, in words (printed beside its outcome). Default: empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub why: String,
}

/// One step of a result path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// A field of an object.
    Field(String),
    /// The entry at this position of a list.
    Index(usize),
    /// The entry of a list whose `kind`, `name`, `tier` or `stage` is this text.
    Select(String),
}

/// The fields of a report's `result` section, which every path starts with (a test keeps
/// this list and the report in step).
pub const RESULT_FIELDS: [&str; 11] = [
    "epochs",
    "contributors",
    "groups",
    "fairness",
    "attacks",
    "economy",
    "grants",
    "governance",
    "models",
    "chain",
    "compute",
];

/// Fields a `[selector]` is matched against, in order.
pub const SELECTOR_FIELDS: [&str; 4] = ["kind", "name", "tier", "stage"];

/// Parses a result path (`attacks[sybil].roi`) into its steps, or says what is wrong.
pub fn parse_path(path: &str) -> Result<Vec<Step>, String> {
    let allowed = "field names joined by `.`, each optionally followed by `[position]` or \
                   `[kind, name, tier or stage]`, e.g. `attacks[sybil].roi`";
    let bad = |why: &str| format!("`{path}`: {why}; allowed: {allowed}");
    let mut steps = Vec::new();
    for part in path.split('.') {
        let (field, mut rest) = match part.find('[') {
            Some(i) => part.split_at(i),
            None => (part, ""),
        };
        if field.is_empty() || !field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(bad("a field name is empty or not a plain name"));
        }
        steps.push(Step::Field(field.to_string()));
        while !rest.is_empty() {
            let Some(close) = rest.find(']') else {
                return Err(bad("a `[` is not closed"));
            };
            let inner = &rest[1..close];
            if inner.is_empty() {
                return Err(bad("an empty `[]`"));
            }
            steps.push(match inner.parse::<usize>() {
                Ok(i) => Step::Index(i),
                Err(_) => Step::Select(inner.to_string()),
            });
            rest = &rest[close + 1..];
            if !rest.is_empty() && !rest.starts_with('[') {
                return Err(bad("text after `]` that is not another `[...]`"));
            }
        }
    }
    Ok(steps)
}

impl Expectation {
    /// The claim in words, e.g. `< 0` or `= "defeated"`.
    pub fn claim(&self) -> String {
        let mut parts = Vec::new();
        if let Some(v) = self.above {
            parts.push(format!("> {v}"));
        }
        if let Some(v) = self.at_least {
            parts.push(format!(">= {v}"));
        }
        if let Some(v) = self.below {
            parts.push(format!("< {v}"));
        }
        if let Some(v) = self.at_most {
            parts.push(format!("<= {v}"));
        }
        if let Some(v) = &self.equals {
            parts.push(format!("= {v}"));
        }
        parts.join(" and ")
    }

    /// What is wrong with the claim itself (not its outcome), if anything.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        match parse_path(&self.path).as_deref() {
            Err(e) => out.push(("path", e.clone())),
            Ok([Step::Field(first), ..]) if !RESULT_FIELDS.contains(&first.as_str()) => out.push((
                "path",
                format!(
                    "`{}` does not start with a field of the report's result section; allowed: \
                     {} (docs/metrics.md)",
                    self.path,
                    RESULT_FIELDS.join(", ")
                ),
            )),
            Ok(_) => {}
        }
        let bounds = [self.below, self.above, self.at_most, self.at_least];
        if bounds.iter().all(Option::is_none) && self.equals.is_none() {
            out.push((
                "path",
                "the claim compares with nothing; allowed: one or more of `below`, `above`, \
                 `at_most`, `at_least`, or `equals`"
                    .to_string(),
            ));
        }
        if self.equals.is_some() && bounds.iter().any(Option::is_some) {
            out.push((
                "equals",
                "`equals` together with a bound; allowed: `equals` alone, or bounds".to_string(),
            ));
        }
        for (field, v) in [
            ("below", self.below),
            ("above", self.above),
            ("at_most", self.at_most),
            ("at_least", self.at_least),
        ] {
            if v.is_some_and(|v| !v.is_finite()) {
                out.push((
                    field,
                    "not a finite number; allowed: a finite number".to_string(),
                ));
            }
        }
        if let Some(toml::Value::Float(x)) = &self.equals
            && !x.is_finite()
        {
            out.push(("equals", format!("got {x}; allowed: a finite number")));
        }
        if let Some(v) = &self.equals
            && !matches!(
                v,
                toml::Value::Integer(_)
                    | toml::Value::Float(_)
                    | toml::Value::Boolean(_)
                    | toml::Value::String(_)
            )
        {
            out.push((
                "equals",
                format!("got {v}; allowed: a number, a boolean or a string"),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_into_fields_positions_and_selectors() {
        assert_eq!(
            parse_path("attacks[sybil].roi").unwrap(),
            vec![
                Step::Field("attacks".into()),
                Step::Select("sybil".into()),
                Step::Field("roi".into())
            ]
        );
        assert_eq!(
            parse_path("fairness.lorenz[3][1]").unwrap(),
            vec![
                Step::Field("fairness".into()),
                Step::Field("lorenz".into()),
                Step::Index(3),
                Step::Index(1)
            ]
        );
        for bad in ["", "a..b", "a[", "a[]", "a[1]b", "a b", ".a"] {
            assert!(parse_path(bad).is_err(), "{bad}");
        }
    }
}
