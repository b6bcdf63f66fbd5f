//! Checks a scenario's `[[expect]]` claims against its report's result section.

use serde_json::Value;

use crate::report::{ClaimOutcome, ResultSection};
use crate::scenario::expect::{Expectation, SELECTOR_FIELDS, Step, parse_path};

/// The outcome of every claim, in the scenario's order.
pub fn check(claims: &[Expectation], result: &ResultSection) -> Vec<ClaimOutcome> {
    let json = serde_json::to_value(result).expect("a result section always serialises");
    claims.iter().map(|c| outcome(c, &json)).collect()
}

fn outcome(claim: &Expectation, result: &Value) -> ClaimOutcome {
    let (value, problem) = match parse_path(&claim.path).and_then(|p| resolve(result, &p)) {
        Ok(v) => {
            let problem = judge(claim, v);
            (Some(v.clone()), problem)
        }
        Err(e) => (None, Some(e)),
    };
    ClaimOutcome {
        path: claim.path.clone(),
        claim: claim.claim(),
        why: claim.why.clone(),
        value,
        holds: problem.is_none(),
        problem,
    }
}

/// The value at `path`, or why there is none (naming what is there instead).
fn resolve<'a>(mut at: &'a Value, path: &[Step]) -> Result<&'a Value, String> {
    let mut walked = String::new();
    for step in path {
        let next = match (step, at) {
            (Step::Field(f), Value::Object(map)) => map.get(f).ok_or_else(|| {
                let keys: Vec<&str> = map.keys().map(String::as_str).collect();
                format!(
                    "no field `{f}` in `{}`; it has: {}",
                    name(&walked),
                    keys.join(", ")
                )
            })?,
            (Step::Index(i), Value::Array(list)) => list.get(*i).ok_or_else(|| {
                format!(
                    "`{}` has {} entries; position {i} is past its end",
                    name(&walked),
                    list.len()
                )
            })?,
            (Step::Select(s), Value::Array(list)) => list
                .iter()
                .find(|e| {
                    SELECTOR_FIELDS
                        .iter()
                        .any(|f| e.get(f).and_then(Value::as_str) == Some(s.as_str()))
                })
                .ok_or_else(|| {
                    let names: Vec<&str> = list
                        .iter()
                        .filter_map(|e| {
                            SELECTOR_FIELDS
                                .iter()
                                .find_map(|f| e.get(f).and_then(Value::as_str))
                        })
                        .collect();
                    format!(
                        "no entry `{s}` in `{}`; it has: {}",
                        name(&walked),
                        if names.is_empty() {
                            "no entries".to_string()
                        } else {
                            names.join(", ")
                        }
                    )
                })?,
            (step, other) => {
                return Err(format!(
                    "`{}` is {}, so `{}` does not apply",
                    name(&walked),
                    kind_of(other),
                    show(step)
                ));
            }
        };
        walked.push_str(&match step {
            Step::Field(f) if walked.is_empty() => f.clone(),
            s => show(s),
        });
        at = next;
    }
    Ok(at)
}

fn name(walked: &str) -> &str {
    if walked.is_empty() { "result" } else { walked }
}

fn show(step: &Step) -> String {
    match step {
        Step::Field(f) => format!(".{f}"),
        Step::Index(i) => format!("[{i}]"),
        Step::Select(s) => format!("[{s}]"),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a table",
    }
}

/// Why `value` does not satisfy `claim`, or `None` when it does.
fn judge(claim: &Expectation, value: &Value) -> Option<String> {
    if value.is_null() {
        return Some(
            "the figure is null (undefined for this run; docs/metrics.md says when)".into(),
        );
    }
    if let Some(expected) = &claim.equals {
        let equal = match (expected, value) {
            (toml::Value::Integer(a), Value::Number(b)) => b.as_f64() == Some(*a as f64),
            (toml::Value::Float(a), Value::Number(b)) => b.as_f64() == Some(*a),
            (toml::Value::Boolean(a), Value::Bool(b)) => a == b,
            (toml::Value::String(a), Value::String(b)) => a == b,
            _ => false,
        };
        return (!equal).then(|| format!("found {value}"));
    }
    let Some(x) = value.as_f64() else {
        return Some(format!("found {}, not a number", kind_of(value)));
    };
    let fails = [
        (claim.below.is_some_and(|b| x >= b), "not below"),
        (claim.above.is_some_and(|b| x <= b), "not above"),
        (
            claim.at_most.is_some_and(|b| x > b),
            "above the most allowed",
        ),
        (
            claim.at_least.is_some_and(|b| x < b),
            "below the least allowed",
        ),
    ];
    fails
        .iter()
        .find(|(fail, _)| *fail)
        .map(|(_, why)| format!("found {x}, {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claim(path: &str) -> Expectation {
        Expectation {
            path: path.into(),
            below: None,
            above: None,
            at_most: None,
            at_least: None,
            equals: None,
            why: String::new(),
        }
    }

    fn result() -> Value {
        json!({
            "attacks": [
                {"kind": "label_flip", "roi": -0.2, "detection_recall": 1.0},
                {"kind": "colluding_reviewers", "roi": null}
            ],
            "governance": [{"state": "executed"}, {"state": "defeated"}],
            "fairness": {"gini": 0.4}
        })
    }

    #[test]
    fn claim_paths_start_with_the_result_sections_fields() {
        let json = serde_json::to_value(ResultSection::default()).unwrap();
        let fields: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected = crate::scenario::expect::RESULT_FIELDS.to_vec();
        expected.sort_unstable();
        let mut fields = fields;
        fields.sort_unstable();
        assert_eq!(fields, expected);
    }

    #[test]
    fn claims_hold_fail_and_explain() {
        let r = result();
        let below = Expectation {
            below: Some(0.0),
            ..claim("attacks[label_flip].roi")
        };
        assert!(outcome(&below, &r).holds);
        let above = Expectation {
            above: Some(0.0),
            ..claim("attacks[label_flip].roi")
        };
        let o = outcome(&above, &r);
        assert!(!o.holds);
        assert_eq!(o.problem.as_deref(), Some("found -0.2, not above"));
        let defeated = Expectation {
            equals: Some(toml::Value::String("defeated".into())),
            ..claim("governance[1].state")
        };
        assert!(outcome(&defeated, &r).holds);
        let null = Expectation {
            below: Some(1.0),
            ..claim("attacks[colluding_reviewers].roi")
        };
        let o = outcome(&null, &r);
        assert!(!o.holds && o.problem.unwrap().contains("null"));
        let missing = Expectation {
            below: Some(1.0),
            ..claim("attacks[sybil].roi")
        };
        let o = outcome(&missing, &r);
        assert_eq!(
            o.problem.as_deref(),
            Some("no entry `sybil` in `attacks`; it has: label_flip, colluding_reviewers")
        );
        let typo = Expectation {
            below: Some(1.0),
            ..claim("fairness.gin")
        };
        assert_eq!(
            outcome(&typo, &r).problem.as_deref(),
            Some("no field `gin` in `fairness`; it has: gini")
        );
        let range = Expectation {
            above: Some(0.3),
            below: Some(0.5),
            ..claim("fairness.gini")
        };
        assert!(outcome(&range, &r).holds);
    }
}
