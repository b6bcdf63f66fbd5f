//! The report as one self-contained HTML page: tables and inline SVG charts, no scripts and
//! no external resources.

use std::fmt::Write;

use super::tables::{self, Table};
use super::{Report, charts};

/// Renders `report` as an HTML page.
pub fn render(report: &Report) -> Result<String, String> {
    let s = &report.scenario;
    let mut out =
        String::from("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
    let _ = writeln!(out, "<title>olsim report: {}</title>", escape(&s.name));
    out.push_str(
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}\
         table{border-collapse:collapse;margin:0.5em 0 1.5em}\
         td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}\
         th{background:#f3f3f3}td:first-child{text-align:left}\
         figure{display:inline-block;margin:0.5em}figcaption{text-align:center}\
         code{background:#f3f3f3}</style></head><body>\n",
    );
    let _ = writeln!(
        out,
        "<h1>olsim report: {}</h1><p>seed {} · {} epochs · chain {} · device {} · report v{}</p>\
         <p>Result digest: <code>{}</code></p>",
        escape(&s.name),
        s.seed,
        s.epochs,
        escape(&s.backend),
        escape(&s.device),
        report.version,
        escape(&report.digest)
    );
    out.push_str("<h2>Charts</h2>\n");
    for chart in charts::all(&report.result)? {
        let _ = writeln!(
            out,
            "<figure>{}<figcaption>{}</figcaption></figure>",
            strip_xml_declaration(&chart.svg),
            escape(chart.title)
        );
    }
    for table in tables::all(report) {
        write_table(&mut out, &table);
    }
    out.push_str("</body></html>\n");
    Ok(out)
}

fn write_table(out: &mut String, table: &Table) {
    let _ = writeln!(out, "<h2>{}</h2><table><tr>", escape(table.title));
    for h in &table.headers {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr>\n");
    for row in &table.rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{}</td>", escape(cell));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

pub(crate) fn strip_xml_declaration(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(start) => &svg[start..],
        None => svg,
    }
}

/// Escapes text for HTML.
pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
