//! A file Datanet's data (`source = "file"`): read and checked once for what the engine
//! needs, by `olsim validate` and by the run alike.

use std::path::Path;

use olsim_ml::data::Datanet;
use olsim_ml::data::load::{load_csv, load_jsonl};

use super::{Scenario, Task};

/// Labels a file Datanet's records may carry: the engine's classifiers are binary.
const CLASSES: u8 = 2;

/// Loads file Datanet `index` of `scenario` (CSV records for `classification`, JSONL
/// documents for `text`) from [`Scenario::data_path`] and checks that the engine can use
/// it: at least one item and, for classification, one feature column per feature of the
/// Datanet's domain (the classifiers' input) and labels 0 or 1. Errors name the file, line
/// and column. `olsim validate` reads the files this way too, so a malformed one is found before a run.
pub fn load_file(scenario: &Scenario, index: usize) -> Result<Datanet, String> {
    let config = &scenario.datanets[index];
    let path = scenario
        .data_path(index)
        .ok_or_else(|| "source = \"file\" needs `file`".to_string())?;
    let data = match config.task {
        Task::Classification => load_csv(&path),
        Task::Text => load_jsonl(&path),
    }
    .map_err(|e| e.to_string())?;
    let file = path.display();
    let (items, what) = match config.task {
        Task::Classification => (data.records.len(), "data row after the header"),
        Task::Text => (data.documents.len(), "JSON line"),
    };
    if items == 0 {
        return Err(format!("{file}: no items; allowed: at least one {what}"));
    }
    if config.task == Task::Classification {
        let domain = config.domain;
        // Line numbers for the errors below: the file is read again only on an error.
        if data.feature_names.len() != domain.dim() {
            return Err(format!(
                "{file}:{}:1: expected {} feature columns besides `label` and `author`, one \
                 per feature of the `{}` domain ({}), found {} ({})",
                data_lines(&path).first().copied().unwrap_or(1),
                domain.dim(),
                domain.name(),
                domain.feature_names().join(", "),
                data.feature_names.len(),
                data.feature_names.join(", ")
            ));
        }
        if let Some((k, r)) = data
            .records
            .iter()
            .enumerate()
            .find(|(_, r)| r.label >= CLASSES)
        {
            return Err(format!(
                "{file}:{}: expected a label 0 or 1 (the engine's classifiers are binary), \
                 found {}",
                data_lines(&path).get(k + 1).copied().unwrap_or(1),
                r.label
            ));
        }
    }
    Ok(data)
}

/// 1-based numbers of the non-blank lines of `path` (a CSV's header, then its data rows, as
/// the loader reads them); empty when it cannot be read again.
fn data_lines(path: &Path) -> Vec<usize> {
    std::fs::read_to_string(path)
        .map(|text| {
            text.lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
                .map(|(i, _)| i + 1)
                .collect()
        })
        .unwrap_or_default()
}
