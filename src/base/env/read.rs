//! Reading the kernel's text files for the record, and the small parsers their formats need. Every item of the
//! record goes through `value`, so an unreadable file becomes "unknown" in one place and never a guess.

use std::path::Path;

/// What an item says when the machine would not tell.
pub const UNKNOWN: &str = "unknown";
/// What an item says when its file was readable and empty (an empty cpuset, a blank DMI field).
const EMPTY: &str = "(empty)";

/// A /proc or /sys file's text, trimmed, with each run of white space made one space (tcp_rmem separates its
/// three numbers with tabs); `None` when it cannot be read. Files this is used on are a page at most.
pub fn text(path: impl AsRef<Path>) -> Option<String> {
    let raw = std::fs::read_to_string(path).ok()?;
    Some(raw.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// `text`, or "unknown" when the file cannot be read.
pub fn value(path: impl AsRef<Path>) -> String {
    or_unknown(text(path))
}

/// An item's value, or "unknown"; an empty value says so rather than printing nothing.
pub fn or_unknown(v: Option<String>) -> String {
    match v {
        Some(s) if s.is_empty() => EMPTY.to_string(),
        Some(s) => s,
        None => UNKNOWN.to_string(),
    }
}

/// The selected entry of a sysfs choice list: `madvise` in "always [madvise] never". A list of one entry has no
/// brackets ("none" for a queue without a scheduler), so a lone word is its own choice.
pub fn bracketed(list: &str) -> Option<String> {
    if let Some(start) = list.find('[') {
        let end = list[start..].find(']')? + start;
        return Some(list[start + 1..end].to_string());
    }
    let mut words = list.split_whitespace();
    match (words.next(), words.next()) {
        (Some(only), None) => Some(only.to_string()),
        _ => None,
    }
}

/// The kernel's own parameters from a /proc/cmdline text, as (name, value): what follows a lone `--` is passed
/// to init and is not the kernel's. Double quotes group a value with spaces (`a="b c"`), as the kernel reads them.
pub fn boot_params(cmdline: &str) -> Vec<(String, Option<String>)> {
    let mut params = Vec::new();
    for word in split_quoted(cmdline) {
        if word == "--" {
            break;
        }
        match word.split_once('=') {
            Some((name, v)) => params.push((name.to_string(), Some(v.to_string()))),
            None => params.push((word, None)),
        }
    }
    params
}

/// Words split on white space outside double quotes, the quotes dropped.
fn split_quoted(line: &str) -> Vec<String> {
    let (mut words, mut word, mut quoted) = (Vec::new(), String::new(), false);
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// The value of the last `name=` among boot parameters (a later one overrides an earlier one); a bare `name`
/// without `=` counts as an empty value.
pub fn last_param<'a>(params: &'a [(String, Option<String>)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_deref().unwrap_or(""))
}

/// "yes" or "no".
pub fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}
