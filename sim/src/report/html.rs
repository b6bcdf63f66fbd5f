//! The report as one self-contained HTML page: tables (each scrolling sideways in its own
//! box when wider than the page) and inline SVG charts, a sentence in place of a chart the
//! run has no data for; no scripts and no external resources.

use std::fmt::Write;

use super::Report;
use super::charts::{self, Figure};
use super::tables::{self, Table};

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
         code{background:#f3f3f3}.wide{overflow-x:auto}</style></head><body>\n",
    );
    let _ = writeln!(
        out,
        "<h1>olsim report: {}</h1><p>seed {} · {} epochs · chain {} ({} transactions) · device {} \
         · report v{}</p><p>Result digest: <code>{}</code></p>",
        escape(&s.name),
        s.seed,
        s.epochs,
        escape(&s.backend),
        escape(&s.transactions),
        escape(&s.device),
        report.version,
        escape(&report.digest)
    );
    out.push_str("<h2>Charts</h2>\n");
    let mut absent = Vec::new();
    for chart in charts::all(&report.result)? {
        match chart.figure {
            Figure::Svg(svg) => {
                let _ = writeln!(
                    out,
                    "<figure>{}<figcaption>{}</figcaption></figure>",
                    strip_xml_declaration(&svg),
                    escape(chart.title)
                );
            }
            Figure::Absent(why) => absent.push((chart.title, why)),
        }
    }
    for (title, why) in absent {
        let _ = writeln!(out, "<p>{}: {}.</p>", escape(title), escape(why));
    }
    for table in tables::all(report) {
        write_table(&mut out, &table);
    }
    out.push_str("</body></html>\n");
    Ok(out)
}

fn write_table(out: &mut String, table: &Table) {
    let _ = writeln!(
        out,
        "<h2>{}</h2><div class=\"wide\"><table><tr>",
        escape(table.title)
    );
    for h in &table.headers {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr>\n");
    for row in &table.rows {
        out.push_str("<tr>");
        for cell in row {
            // A row label indented with spaces (`  of which ...`) is a part of the row above:
            // keep the indent, which HTML would collapse.
            let text = cell.trim_start_matches(' ');
            let indent = cell.len() - text.len();
            let _ = match indent {
                0 => write!(out, "<td>{}</td>", escape(cell)),
                n => write!(
                    out,
                    "<td style=\"padding-left:{}em\">{}</td>",
                    n / 2,
                    escape(text)
                ),
            };
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table></div>\n");
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
