//! Scenario errors with file positions: every problem, whether a TOML syntax error, an
//! unknown field, a wrong type or a semantic issue, becomes a [`Diagnostic`] naming the
//! file, line, column and field path.

use std::fmt;
use std::ops::Range;

use thiserror::Error;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// One located problem in a scenario file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file as given.
    pub file: String,
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
    /// Field path, e.g. `datanets[1].contributors.count` (empty: the whole document).
    pub path: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "(document)"
        } else {
            &self.path
        };
        write!(
            f,
            "{}:{}:{}: {path}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// Why a scenario file was not accepted.
#[derive(Debug, Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("{file}: cannot read the scenario file: {source}; check the path")]
    Read {
        /// The file as given.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file was read but has problems; all of them are listed, one per line.
    #[error("{}", join(.0))]
    Invalid(Vec<Diagnostic>),
}

fn join(d: &[Diagnostic]) -> String {
    d.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl ScenarioError {
    /// The located problems (empty for a read error).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ScenarioError::Read { .. } => &[],
            ScenarioError::Invalid(d) => d,
        }
    }
}

/// One segment of a field path.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

fn format_path(segs: &[Seg]) -> String {
    let mut out = String::new();
    for s in segs {
        match s {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

fn parse_path(path: &str) -> Vec<Seg> {
    let mut segs = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, rest) = part.split_once('[').unwrap_or((part, ""));
        segs.push(Seg::Key(key.to_string()));
        for idx in rest.split('[') {
            if let Ok(i) = idx.trim_end_matches(']').parse() {
                segs.push(Seg::Index(i));
            }
        }
    }
    segs
}

/// Maps byte offsets and field paths of one document to positions.
pub(crate) struct Locator<'t> {
    file: &'t str,
    text: &'t str,
    root: Option<Spanned<DeTable<'t>>>,
}

impl<'t> Locator<'t> {
    /// A locator over `text`; `root` is the parsed document when it parsed.
    pub fn new(file: &'t str, text: &'t str, root: Option<Spanned<DeTable<'t>>>) -> Self {
        Locator { file, text, root }
    }

    /// Line and column (1-based, column in characters) of byte `offset`.
    fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, before[start..].chars().count() + 1)
    }

    fn diagnostic(&self, offset: usize, path: String, message: String) -> Diagnostic {
        let (line, column) = self.position(offset);
        Diagnostic {
            file: self.file.to_string(),
            line,
            column,
            path,
            message,
        }
    }

    /// A diagnostic for a TOML syntax error: the path is read from the table headers and
    /// the key on the error's line.
    pub fn syntax(&self, err: &toml::de::Error) -> Diagnostic {
        let offset = err.span().map_or(0, |s| s.start);
        let path = header_path(self.text, offset);
        self.diagnostic(
            offset,
            path,
            format!("TOML syntax error: {}", err.message()),
        )
    }

    /// A diagnostic for a deserialisation error (unknown field, wrong type, missing field):
    /// the path is that of the innermost key or value whose span holds the error.
    pub fn serde(&self, err: &toml::de::Error) -> Diagnostic {
        let span = err.span().unwrap_or(0..0);
        let mut path = self.path_at(&span);
        let message = err.message().to_string();
        let message = match message.strip_prefix("missing field `") {
            Some(rest) => {
                let field = rest.trim_end_matches('`');
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(field);
                format!("missing field `{field}`; it is required (see docs/scenarios.md)")
            }
            None => message,
        };
        self.diagnostic(span.start, path, message)
    }

    /// A diagnostic for a semantic issue at `path`: positioned at the field when the file
    /// sets it, else at the nearest enclosing table that it does set.
    pub fn at_path(&self, path: &str, message: String) -> Diagnostic {
        let offset = self
            .root
            .as_ref()
            .map_or(0, |root| locate(root, &parse_path(path)));
        self.diagnostic(offset, path.to_string(), message)
    }

    fn path_at(&self, span: &Range<usize>) -> String {
        let Some(root) = &self.root else {
            return String::new();
        };
        let mut nodes = Vec::new();
        collect_table(root.get_ref(), &mut Vec::new(), &mut nodes);
        // The narrowest span holding the error; the deepest node among equals.
        nodes
            .into_iter()
            .filter(|(_, s)| s.start <= span.start && span.end <= s.end.max(s.start + 1))
            .min_by_key(|(segs, s)| (s.end - s.start, usize::MAX - segs.len()))
            .map(|(segs, _)| format_path(&segs))
            .unwrap_or_default()
    }
}

/// Every key (with its key span and its value span) and array element (with its span)
/// under `table`, with its path.
fn collect_table(
    table: &DeTable<'_>,
    segs: &mut Vec<Seg>,
    out: &mut Vec<(Vec<Seg>, Range<usize>)>,
) {
    for (k, v) in table.iter() {
        segs.push(Seg::Key(k.get_ref().to_string()));
        out.push((segs.clone(), k.span()));
        out.push((segs.clone(), v.span()));
        collect_value(v.get_ref(), segs, out);
        segs.pop();
    }
}

fn collect_value(
    value: &DeValue<'_>,
    segs: &mut Vec<Seg>,
    out: &mut Vec<(Vec<Seg>, Range<usize>)>,
) {
    match value {
        DeValue::Table(t) => collect_table(t, segs, out),
        DeValue::Array(a) => {
            for (i, item) in a.iter().enumerate() {
                segs.push(Seg::Index(i));
                out.push((segs.clone(), item.span()));
                collect_value(item.get_ref(), segs, out);
                segs.pop();
            }
        }
        _ => {}
    }
}

/// Byte offset of the deepest prefix of `segs` present in the document: the value of a
/// set key, or the header of the innermost table that exists.
fn locate(root: &Spanned<DeTable<'_>>, segs: &[Seg]) -> usize {
    let mut offset = root.span().start;
    let mut current: Option<&DeValue<'_>> = None;
    let mut table = Some(root.get_ref());
    for seg in segs {
        let next = match (seg, table, current) {
            (Seg::Key(k), Some(t), _) => t
                .iter()
                .find(|(key, _)| key.get_ref() == k)
                .map(|(key, v)| (key.span().start, v)),
            (Seg::Index(i), _, Some(DeValue::Array(a))) => a.get(*i).map(|v| (v.span().start, v)),
            _ => None,
        };
        let Some((at, v)) = next else { break };
        offset = at;
        current = Some(v.get_ref());
        table = v.get_ref().as_table();
    }
    offset
}

/// The field path at `offset` of a document that does not parse: the last table header
/// before it (with array-of-tables indices counted) and the key on its line.
fn header_path(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let mut counts: Vec<(String, usize)> = Vec::new();
    let mut header: Vec<String> = Vec::new();
    for line in text[..line_start].lines() {
        let l = line.trim();
        let array = l.starts_with("[[");
        if !l.starts_with('[') {
            continue;
        }
        let inner = l.trim_start_matches('[');
        let Some(end) = inner.find(']') else { continue };
        let keys: Vec<String> = inner[..end]
            .split('.')
            .map(|k| k.trim().trim_matches(['"', '\'']).to_string())
            .collect();
        let dotted = keys.join(".");
        if array {
            counts.retain(|(k, _)| !k.starts_with(&format!("{dotted}.")));
            match counts.iter_mut().find(|(k, _)| *k == dotted) {
                Some((_, n)) => *n += 1,
                None => counts.push((dotted.clone(), 1)),
            }
        }
        header.clear();
        for i in 0..keys.len() {
            header.push(keys[i].clone());
            let prefix = keys[..=i].join(".");
            if let Some((_, n)) = counts.iter().find(|(k, _)| *k == prefix) {
                let last = header.pop().unwrap_or_default();
                header.push(format!("{last}[{}]", n - 1));
            }
        }
    }
    let line = text[line_start..].lines().next().unwrap_or("");
    if let Some((key, _)) = line.split_once('=') {
        let key = key.trim();
        if !key.is_empty() && !key.starts_with('[') && !key.starts_with('#') {
            header.push(key.to_string());
        }
    }
    header.join(".")
}
