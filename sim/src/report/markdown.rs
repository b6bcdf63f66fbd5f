//! The report as Markdown: a header, then every table.

use std::fmt::Write;

use super::Report;
use super::tables::{self, Table};

/// Renders `report` as Markdown.
pub fn render(report: &Report) -> String {
    let s = &report.scenario;
    let mut out = format!(
        "# olsim report: {}\n\nseed {} · {} epochs · chain {} ({} transactions) · device {} · \
         report v{}\n\nResult digest: `{}`\n\n",
        s.name,
        s.seed,
        s.epochs,
        s.backend,
        s.transactions,
        s.device,
        report.version,
        report.digest
    );
    for table in tables::all(report) {
        write_table(&mut out, &table);
    }
    out
}

fn write_table(out: &mut String, table: &Table) {
    let _ = writeln!(out, "## {}\n", table.title);
    let _ = writeln!(out, "| {} |", table.headers.join(" | "));
    let _ = writeln!(
        out,
        "|{}",
        table.headers.iter().map(|_| "---|").collect::<String>()
    );
    for row in &table.rows {
        let cells: Vec<String> = row.iter().map(|c| c.replace('|', "\\|")).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out.push('\n');
}
