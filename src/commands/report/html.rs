//! The pieces of a self-contained HTML page: escaping, the page around the sections (its style inline, nothing
//! loaded from anywhere), key-value tables, and the small part of Markdown that `compare` writes (headings, lists,
//! tables, paragraphs, `code` and **bold**), turned into HTML.

use std::fmt::Write as _;

/// Text made safe for HTML, in an element or an attribute.
pub fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The whole page: `title`, then the sections as given (each already HTML).
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{t}</title>\n\
         <style>{STYLE}</style>\n</head>\n<body>\n<h1>{t}</h1>\n{body}\n<footer>Made by xferbench {v}; \
         everything on this page is in this one file.</footer>\n</body>\n</html>\n",
        t = esc(title),
        v = env!("CARGO_PKG_VERSION"),
    )
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:1400px;margin:2em auto;padding:0 1em;\
color:#222}table{border-collapse:collapse;margin:.5em 0 1em}th,td{border:1px solid #ccc;padding:.25em .6em;\
vertical-align:top}th{background:#f3f3f3;text-align:left}td.num,th.num{text-align:right;\
font-variant-numeric:tabular-nums}figure{margin:1em 0}figure svg{max-width:100%;height:auto}\
figcaption{color:#555}code,pre{font-family:ui-monospace,monospace}footer{margin-top:3em;color:#777}\
section{margin-bottom:2em}";

/// A section with a heading and an id (`<section id="...">`).
pub fn section(id: &str, heading: &str, inner: &str) -> String {
    format!("<section id=\"{id}\">\n<h2>{}</h2>\n{inner}</section>\n", esc(heading))
}

/// A chart as inline SVG, in a figure with a caption.
pub fn figure(stem: &str, svg: &str, caption: &str) -> String {
    // The SVG text as plotters writes it, less any XML declaration (not allowed inside HTML).
    let svg = svg.trim_start();
    let svg = match svg.strip_prefix("<?xml") {
        Some(rest) => rest.split_once("?>").map_or(svg, |(_, after)| after.trim_start()),
        None => svg,
    };
    format!(
        "<figure class=\"chart\" id=\"chart-{stem}\">\n{svg}\n<figcaption>{}</figcaption>\n</figure>\n",
        esc(caption)
    )
}

/// A two-column table of (name, value) pairs.
pub fn pairs(rows: &[(String, String)]) -> String {
    let mut out = String::from("<table class=\"pairs\">\n<tbody>\n");
    for (k, v) in rows {
        let _ = writeln!(out, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v));
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

/// `code` and **bold** in already escaped text.
fn inline(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in esc(text).split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{part}</code>");
        } else {
            for (j, piece) in part.split("**").enumerate() {
                if j % 2 == 1 {
                    let _ = write!(out, "<strong>{piece}</strong>");
                } else {
                    out.push_str(piece);
                }
            }
        }
    }
    out
}

/// The cells of one Markdown table line, `\|` read as a bar.
fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|');
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    let mut cells = vec![String::new()];
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cells.last_mut().expect("one cell").push('|');
                chars.next();
            }
            '|' => cells.push(String::new()),
            c => cells.last_mut().expect("one cell").push(c),
        }
    }
    cells.into_iter().map(|c| c.trim().to_string()).collect()
}

/// A Markdown table (header line, rule, rows) as HTML.
fn table(lines: &[&str]) -> String {
    let mut out = String::from("<table>\n<thead><tr>");
    for c in cells(lines[0]) {
        let _ = write!(out, "<th>{}</th>", inline(&c));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for line in lines.iter().skip(2) {
        out.push_str("<tr>");
        for c in cells(line) {
            let _ = write!(out, "<td>{}</td>", inline(&c));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

/// The Markdown `compare` writes, as HTML: `#` headings, `1.` and `-` lists, `|` tables, paragraphs.
pub fn markdown(md: &str) -> String {
    let lines: Vec<&str> = md.lines().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let block_end =
            |from: usize, f: &dyn Fn(&str) -> bool| (from..lines.len()).find(|&j| !f(lines[j])).unwrap_or(lines.len());
        if line.trim().is_empty() {
            i += 1;
        } else if let Some(h) = line.strip_prefix("## ") {
            let _ = writeln!(out, "<h3>{}</h3>", inline(h));
            i += 1;
        } else if let Some(h) = line.strip_prefix("# ") {
            let _ = writeln!(out, "<h2>{}</h2>", inline(h));
            i += 1;
        } else if line.starts_with('|') {
            let end = block_end(i, &|l: &str| l.starts_with('|'));
            out.push_str(&table(&lines[i..end]));
            i = end;
        } else if list_item(line).is_some() {
            let end = block_end(i, &|l: &str| list_item(l).is_some());
            let tag = if line.starts_with('-') { "ul" } else { "ol" };
            let _ = writeln!(out, "<{tag}>");
            for l in &lines[i..end] {
                let _ = writeln!(out, "<li>{}</li>", inline(list_item(l).unwrap_or_default()));
            }
            let _ = writeln!(out, "</{tag}>");
            i = end;
        } else {
            let end = block_end(i, &|l: &str| {
                !l.trim().is_empty() && !l.starts_with('#') && !l.starts_with('|') && list_item(l).is_none()
            });
            let _ = writeln!(out, "<p>{}</p>", inline(&lines[i..end].join(" ")));
            i = end.max(i + 1);
        }
    }
    out
}

/// The text of a list line (`- x`, `3. x`), or None.
fn list_item(line: &str) -> Option<&str> {
    if let Some(rest) = line.strip_prefix("- ") {
        return Some(rest);
    }
    let (number, rest) = line.split_once(". ")?;
    (!number.is_empty() && number.chars().all(|c| c.is_ascii_digit())).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_of_compare_becomes_html() {
        let md = "# xferbench compare\n\nResult sets:\n\n1. `a`: host x\n2. `b`: host y\n\n## Cases\n\n\
                  | case | a\\|b |\n|---|--:|\n| sendfile | **1.0** |\n\nMB/s: median <over> all.\n";
        let html = markdown(md);
        assert!(html.contains("<h2>xferbench compare</h2>"), "{html}");
        assert!(html.contains("<ol>\n<li><code>a</code>: host x</li>"), "{html}");
        assert!(html.contains("<th>case</th><th>a|b</th>"), "{html}");
        assert!(
            html.contains("<td>sendfile</td><td><strong>1.0</strong></td>"),
            "{html}"
        );
        assert!(html.contains("<p>MB/s: median &lt;over&gt; all.</p>"), "{html}");
        assert_eq!(html.matches("<tr>").count(), 2, "{html}");
    }

    #[test]
    fn figures_drop_the_xml_declaration() {
        let f = figure("ratio", "<?xml version=\"1.0\"?>\n<svg x=\"1\"></svg>", "a < b");
        assert!(
            f.contains("<figure class=\"chart\" id=\"chart-ratio\">\n<svg x=\"1\"></svg>"),
            "{f}"
        );
        assert!(f.contains("<figcaption>a &lt; b</figcaption>"), "{f}");
    }
}
