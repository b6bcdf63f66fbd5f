//! Bring your own data: Datanets from CSV (feature records) and JSONL (documents).
//!
//! CSV: a header row naming the columns; one column must be `label` (an integer 0-255),
//! an optional `author` column names the contributor, every other column is a feature
//! (a finite number). Fields may be double-quoted (`""` escapes a quote). Empty lines are
//! skipped.
//!
//! JSONL: one JSON object per line, `{"author": "...", "text": "..."}`; other keys are
//! ignored. Text is split on whitespace into words.
//!
//! Loaded data has no ground truth: records and documents are marked
//! [`RecordKind::Unverified`] (counted as clean), `copy_of` is `None`, and
//! [`Datanet::truth`] is `None`. Contributor ids are given in order of first appearance,
//! CSV before JSONL. Malformed input is a [`LoadError::Parse`] naming the file, the
//! 1-based line and column, what was expected and what was found.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::contributor::ContributorId;
use super::datanet::Datanet;
use super::features::{FeatureRecord, RecordId, RecordKind};
use super::text::{DocId, Document, Vocab, document_hash};

/// An error loading a Datanet.
#[derive(Debug, Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Io {
        /// The file.
        file: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is malformed.
    #[error("{file}:{line}:{column}: expected {expected}, found {found}")]
    Parse {
        /// The file.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column (in characters).
        column: usize,
        /// What was expected there.
        expected: String,
        /// What was found.
        found: String,
    },
}

/// Author name used when a CSV has no `author` column.
pub const ANONYMOUS: &str = "anonymous";

#[derive(Default)]
struct Authors {
    ids: BTreeMap<String, ContributorId>,
    names: Vec<String>,
}

impl Authors {
    fn id(&mut self, name: &str) -> ContributorId {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = ContributorId(self.names.len() as u32);
        self.names.push(name.to_string());
        self.ids.insert(name.to_string(), id);
        id
    }
}

/// Splits one CSV line into fields with their 1-based starting columns.
fn split_csv_line(
    file: &str,
    line_no: usize,
    line: &str,
) -> Result<Vec<(String, usize)>, LoadError> {
    let chars: Vec<char> = line.chars().collect();
    let mut fields = Vec::new();
    let mut i = 0;
    loop {
        let start = i + 1;
        let mut field = String::new();
        if chars.get(i) == Some(&'"') {
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(LoadError::Parse {
                            file: file.to_string(),
                            line: line_no,
                            column: i + 1,
                            expected: "a closing quote".into(),
                            found: "end of line".into(),
                        });
                    }
                    Some('"') if chars.get(i + 1) == Some(&'"') => {
                        field.push('"');
                        i += 2;
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some(&c) => {
                        field.push(c);
                        i += 1;
                    }
                }
            }
            match chars.get(i) {
                None | Some(',') => {}
                Some(&c) => {
                    return Err(LoadError::Parse {
                        file: file.to_string(),
                        line: line_no,
                        column: i + 1,
                        expected: "a comma or end of line after a quoted field".into(),
                        found: format!("{c:?}"),
                    });
                }
            }
        } else {
            while let Some(&c) = chars.get(i) {
                if c == ',' {
                    break;
                }
                field.push(c);
                i += 1;
            }
        }
        fields.push((field, start));
        if chars.get(i) == Some(&',') {
            i += 1;
        } else {
            return Ok(fields);
        }
    }
}

fn parse_err(file: &str, line: usize, column: usize, expected: String, found: String) -> LoadError {
    LoadError::Parse {
        file: file.to_string(),
        line,
        column,
        expected,
        found,
    }
}

fn records_from_csv(
    file: &str,
    input: &str,
    authors: &mut Authors,
) -> Result<(Vec<String>, Vec<FeatureRecord>), LoadError> {
    let mut lines = input
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l)));
    let Some((hline, header)) = lines.find(|(_, l)| !l.trim().is_empty()) else {
        return Err(parse_err(
            file,
            1,
            1,
            "a header row with a `label` column".into(),
            "an empty file".into(),
        ));
    };
    let header = split_csv_line(file, hline, header)?;
    let mut label_col = None;
    let mut author_col = None;
    let mut feature_cols = Vec::new();
    let mut seen = BTreeMap::new();
    for (k, (name, col)) in header.iter().enumerate() {
        let name = name.trim();
        if name.is_empty() {
            return Err(parse_err(
                file,
                hline,
                *col,
                "a column name".into(),
                "an empty field".into(),
            ));
        }
        if seen.insert(name.to_string(), k).is_some() {
            return Err(parse_err(
                file,
                hline,
                *col,
                "a unique column name".into(),
                format!("duplicate `{name}`"),
            ));
        }
        match name {
            "label" => label_col = Some(k),
            "author" => author_col = Some(k),
            _ => feature_cols.push(k),
        }
    }
    let Some(label_col) = label_col else {
        let end = header.last().map_or(1, |(f, c)| c + f.chars().count());
        return Err(parse_err(
            file,
            hline,
            end,
            "a `label` column in the header".into(),
            "none".into(),
        ));
    };
    let feature_names = feature_cols
        .iter()
        .map(|&k| header[k].0.trim().to_string())
        .collect();
    let mut records = Vec::new();
    for (line_no, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let fields = split_csv_line(file, line_no, line)?;
        if fields.len() != header.len() {
            let column = if fields.len() > header.len() {
                fields[header.len()].1
            } else {
                line.chars().count() + 1
            };
            return Err(parse_err(
                file,
                line_no,
                column,
                format!("{} fields as in the header", header.len()),
                format!("{} fields", fields.len()),
            ));
        }
        let mut features = Vec::with_capacity(feature_cols.len());
        for &k in &feature_cols {
            let (text, col) = &fields[k];
            match text.trim().parse::<f32>() {
                Ok(v) if v.is_finite() => features.push(v),
                _ => {
                    return Err(parse_err(
                        file,
                        line_no,
                        *col,
                        format!("a finite number for feature `{}`", header[k].0.trim()),
                        format!("{text:?}"),
                    ));
                }
            }
        }
        let (text, col) = &fields[label_col];
        let label = text.trim().parse::<u8>().map_err(|_| {
            parse_err(
                file,
                line_no,
                *col,
                "an integer label 0-255".into(),
                format!("{text:?}"),
            )
        })?;
        let author = match author_col {
            Some(k) => {
                let (name, col) = &fields[k];
                if name.trim().is_empty() {
                    return Err(parse_err(
                        file,
                        line_no,
                        *col,
                        "an author name".into(),
                        "an empty field".into(),
                    ));
                }
                authors.id(name.trim())
            }
            None => authors.id(ANONYMOUS),
        };
        let id = RecordId(records.len() as u32);
        records.push(FeatureRecord::new(
            id,
            features,
            label,
            author,
            RecordKind::Unverified,
            None,
        ));
    }
    Ok((feature_names, records))
}

#[derive(Deserialize)]
struct JsonDoc {
    author: String,
    text: String,
}

#[derive(Serialize)]
struct JsonDocOut<'a> {
    author: &'a str,
    text: &'a str,
}

fn documents_from_jsonl(
    file: &str,
    input: &str,
    authors: &mut Authors,
    vocab: &mut Vocab,
) -> Result<Vec<Document>, LoadError> {
    let mut docs = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let doc: JsonDoc = serde_json::from_str(line).map_err(|e| {
            parse_err(
                file,
                line_no,
                e.column().max(1),
                "a JSON object {\"author\": string, \"text\": string}".into(),
                e.to_string(),
            )
        })?;
        if doc.author.trim().is_empty() {
            let column = line
                .find("\"author\"")
                .map_or(1, |b| line[..b].chars().count() + 1);
            return Err(parse_err(
                file,
                line_no,
                column,
                "a non-empty author".into(),
                "an empty string".into(),
            ));
        }
        let author = authors.id(doc.author.trim());
        let tokens = vocab.encode(&doc.text);
        let hash = document_hash(&vocab.render(&tokens));
        docs.push(Document {
            id: DocId(docs.len() as u32),
            tokens,
            author,
            clean: true,
            kind: RecordKind::Unverified,
            copy_of: None,
            hash,
        });
    }
    Ok(docs)
}

fn assemble(
    authors: Authors,
    feature_names: Vec<String>,
    records: Vec<FeatureRecord>,
    documents: Vec<Document>,
    vocab: Vocab,
) -> Datanet {
    Datanet {
        domain: None,
        seed: 0,
        contributors: authors.names,
        records,
        feature_names,
        documents,
        vocab,
        truth: None,
    }
}

/// Parses CSV feature records; `file` names the source in errors.
pub fn parse_csv(file: &str, input: &str) -> Result<Datanet, LoadError> {
    let mut authors = Authors::default();
    let (names, records) = records_from_csv(file, input, &mut authors)?;
    Ok(assemble(authors, names, records, Vec::new(), Vocab::new()))
}

/// Parses JSONL documents; `file` names the source in errors.
pub fn parse_jsonl(file: &str, input: &str) -> Result<Datanet, LoadError> {
    let mut authors = Authors::default();
    let mut vocab = Vocab::new();
    let docs = documents_from_jsonl(file, input, &mut authors, &mut vocab)?;
    Ok(assemble(authors, Vec::new(), Vec::new(), docs, vocab))
}

fn read(path: &Path) -> Result<(String, String), LoadError> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(s) => Ok((file, s)),
        Err(source) => Err(LoadError::Io { file, source }),
    }
}

/// Loads feature records from a CSV file.
pub fn load_csv(path: &Path) -> Result<Datanet, LoadError> {
    let (file, s) = read(path)?;
    parse_csv(&file, &s)
}

/// Loads documents from a JSONL file.
pub fn load_jsonl(path: &Path) -> Result<Datanet, LoadError> {
    let (file, s) = read(path)?;
    parse_jsonl(&file, &s)
}

/// Loads one Datanet from an optional CSV and an optional JSONL file; contributors with
/// the same name in both are the same contributor.
pub fn load(csv: Option<&Path>, jsonl: Option<&Path>) -> Result<Datanet, LoadError> {
    let mut authors = Authors::default();
    let mut vocab = Vocab::new();
    let (names, records) = match csv {
        Some(p) => {
            let (file, s) = read(p)?;
            records_from_csv(&file, &s, &mut authors)?
        }
        None => (Vec::new(), Vec::new()),
    };
    let docs = match jsonl {
        Some(p) => {
            let (file, s) = read(p)?;
            documents_from_jsonl(&file, &s, &mut authors, &mut vocab)?
        }
        None => Vec::new(),
    };
    Ok(assemble(authors, names, records, docs, vocab))
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) || s.trim() != s {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Writes the records as CSV: feature columns, `label`, `author` (contributor names).
/// Floats use Rust's shortest round-trip formatting, so [`parse_csv`] restores them exactly.
pub fn write_csv(datanet: &Datanet) -> String {
    let mut out = String::new();
    let header: Vec<String> = datanet
        .feature_names
        .iter()
        .map(|n| csv_field(n))
        .chain(["label".to_string(), "author".to_string()])
        .collect();
    out.push_str(&header.join(","));
    out.push('\n');
    for r in &datanet.records {
        for f in &r.features {
            out.push_str(&f.to_string());
            out.push(',');
        }
        out.push_str(&r.label.to_string());
        out.push(',');
        out.push_str(&csv_field(&datanet.contributors[r.author.0 as usize]));
        out.push('\n');
    }
    out
}

/// Writes the documents as JSONL, one `{"author", "text"}` object per line.
pub fn write_jsonl(datanet: &Datanet) -> String {
    let mut out = String::new();
    for d in &datanet.documents {
        let text = datanet.doc_text(d);
        let line = JsonDocOut {
            author: &datanet.contributors[d.author.0 as usize],
            text: &text,
        };
        out.push_str(&serde_json::to_string(&line).expect("strings always serialise"));
        out.push('\n');
    }
    out
}
