//! The one table writer: `run`'s table, `compare` and `article` build a `Table` of cells and write it for a
//! terminal (columns padded to their widest cell, a rule under the header) or as Markdown. Widths count characters,
//! so `×`, `≈` and `–` take one column each.

/// Where a column's cells sit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A table of text cells.
#[derive(Debug, Clone)]
pub struct Table {
    header: Vec<(String, Align)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these columns.
    pub fn new<S: Into<String>>(columns: impl IntoIterator<Item = (S, Align)>) -> Table {
        Table {
            header: columns.into_iter().map(|(h, a)| (h.into(), a)).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row; missing cells are empty, extra ones are dropped.
    pub fn row(&mut self, cells: impl IntoIterator<Item = String>) {
        let mut cells: Vec<String> = cells.into_iter().collect();
        cells.resize(self.header.len(), String::new());
        self.rows.push(cells);
    }

    fn widths(&self) -> Vec<usize> {
        let len = |s: &str| s.chars().count();
        self.header
            .iter()
            .enumerate()
            .map(|(i, (h, _))| self.rows.iter().map(|r| len(&r[i])).chain([len(h)]).max().unwrap_or(0))
            .collect()
    }

    /// For a terminal: padded columns two spaces apart, a rule of dashes under the header.
    pub fn terminal(&self) -> String {
        let widths = self.widths();
        let line = |cells: Vec<&str>| {
            let padded: Vec<String> = cells
                .iter()
                .zip(&widths)
                .zip(&self.header)
                .map(|((c, w), (_, align))| {
                    let pad = " ".repeat(w - c.chars().count());
                    match align {
                        Align::Left => format!("{c}{pad}"),
                        Align::Right => format!("{pad}{c}"),
                    }
                })
                .collect();
            padded.join("  ").trim_end().to_string() + "\n"
        };
        let mut out = line(self.header.iter().map(|(h, _)| h.as_str()).collect());
        let total: usize = widths.iter().sum::<usize>() + 2 * widths.len().saturating_sub(1);
        out.push_str(&"-".repeat(total));
        out.push('\n');
        for r in &self.rows {
            out.push_str(&line(r.iter().map(String::as_str).collect()));
        }
        out
    }

    /// As Markdown: `|` escaped in cells, right-aligned columns marked `--:`.
    pub fn markdown(&self) -> String {
        let cell = |c: &str| c.replace('|', "\\|");
        let mut out = String::from("|");
        for (h, _) in &self.header {
            out.push_str(&format!(" {} |", cell(h)));
        }
        out.push_str("\n|");
        for (_, align) in &self.header {
            out.push_str(match align {
                Align::Left => "---|",
                Align::Right => "--:|",
            });
        }
        out.push('\n');
        for r in &self.rows {
            out.push('|');
            for c in r {
                out.push_str(&format!(" {} |", cell(c)));
            }
            out.push('\n');
        }
        out
    }

    /// As an HTML table (for report.html): cells escaped, right-aligned columns of class `num`.
    pub fn html(&self) -> String {
        let esc = |c: &str| c.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        let class = |a: &Align| match a {
            Align::Left => "",
            Align::Right => " class=\"num\"",
        };
        let mut out = String::from("<table>\n<thead><tr>");
        for (h, a) in &self.header {
            out.push_str(&format!("<th{}>{}</th>", class(a), esc(h)));
        }
        out.push_str("</tr></thead>\n<tbody>\n");
        for r in &self.rows {
            out.push_str("<tr>");
            for (c, (_, a)) in r.iter().zip(&self.header) {
                out.push_str(&format!("<td{}>{}</td>", class(a), esc(c)));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody>\n</table>\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut t = Table::new([("case", Align::Left), ("vs sf", Align::Right)]);
        t.row(["sendfile".to_string(), "base".into()]);
        t.row(["parallel-sendfile ×10".to_string(), "≈1.05x [0.91–1.22]".into()]);
        t
    }

    #[test]
    fn terminal_columns_line_up_by_characters() {
        let text = sample().terminal();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "case                                vs sf");
        assert_eq!(lines[1].chars().count(), lines[3].chars().count());
        assert_eq!(lines[2], "sendfile                             base");
        assert!(lines[3].ends_with("≈1.05x [0.91–1.22]"));
    }

    #[test]
    fn markdown_marks_alignment_and_escapes_bars() {
        let mut t = sample();
        t.row(["a|b".to_string()]);
        let md = t.markdown();
        assert!(md.starts_with("| case | vs sf |\n|---|--:|\n"), "{md}");
        assert!(md.contains("| a\\|b |  |"), "{md}");
    }

    #[test]
    fn html_escapes_and_marks_numbers() {
        let mut t = sample();
        t.row(["<b>&".to_string()]);
        let html = t.html();
        assert!(html.contains("<th>case</th><th class=\"num\">vs sf</th>"), "{html}");
        assert!(html.contains("<td>&lt;b&gt;&amp;</td>"), "{html}");
        assert_eq!(html.matches("<tr>").count(), 4, "{html}");
    }
}
