//! Config errors (`file:line: field: message`), byte-offset to line mapping and
//! "did you mean" suggestions for misspelt keys and names.

use std::fmt::Write as _;
use std::ops::Range;

/// One problem found in a config file. Displays as `{file}:{line}: {field}: {message}`.
///
/// `line` is 1-based. `field` is a path such as `route[2].via` or
/// `interface[1].address[0]` (indices are 0-based, in file order); TOML syntax
/// errors use the field `toml`, unreadable files the field `file`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {field}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub field: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(
        file: impl Into<String>,
        line: usize,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.into(),
            line,
            field: field.into(),
            message: shorten(message.into()),
        }
    }
}

/// The longest message an error keeps: a value quoted in it (a 20 MB
/// string in the config) is cut, never echoed whole.
const MAX_MESSAGE: usize = 512;

fn shorten(mut m: String) -> String {
    if m.len() <= MAX_MESSAGE {
        return m;
    }
    let mut cut = MAX_MESSAGE;
    while !m.is_char_boundary(cut) {
        cut -= 1;
    }
    let more = m.len() - cut;
    m.truncate(cut);
    m.push_str(&format!("... ({more} more bytes)"));
    m
}

/// Renders errors one per line, the way `xgate check` prints them.
pub fn render_errors(errors: &[ConfigError]) -> String {
    let mut out = String::new();
    for e in errors {
        let _ = writeln!(out, "{e}");
    }
    out
}

/// Maps byte offsets of a text to 1-based line numbers.
#[derive(Debug, Clone)]
pub(crate) struct LineIndex {
    /// Byte offset at which each line starts; `starts[0] == 0`.
    starts: Vec<usize>,
}

impl LineIndex {
    pub(crate) fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self { starts }
    }

    /// The 1-based line holding byte `offset` (offsets past the end map to the last line).
    pub(crate) fn line(&self, offset: usize) -> usize {
        // Number of line starts <= offset; always >= 1 because starts[0] == 0.
        self.starts.partition_point(|&s| s <= offset).max(1)
    }

    pub(crate) fn line_of_span(&self, span: &Range<usize>) -> usize {
        self.line(span.start)
    }
}

/// Levenshtein distance, for suggestions only (inputs are short).
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The candidate closest to `word`, if it is close enough to be a likely typo.
pub(crate) fn did_you_mean<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    let limit = (word.chars().count() / 3).clamp(1, 3);
    candidates
        .into_iter()
        .map(|c| (distance(word, c), c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_format() {
        let e = ConfigError::new("rules.toml", 14, "interface[1].address[0]", "bad");
        assert_eq!(e.to_string(), "rules.toml:14: interface[1].address[0]: bad");
        assert_eq!(render_errors(&[e.clone(), e]).lines().count(), 2);
    }

    #[test]
    fn line_index() {
        let idx = LineIndex::new("a\nbc\n\nd");
        assert_eq!(idx.line(0), 1);
        assert_eq!(idx.line(1), 1); // the '\n' belongs to line 1
        assert_eq!(idx.line(2), 2);
        assert_eq!(idx.line(5), 3);
        assert_eq!(idx.line(6), 4);
        assert_eq!(idx.line(1000), 4);
        assert_eq!(LineIndex::new("").line(0), 1);
    }

    #[test]
    fn suggestions() {
        let keys = ["name", "device", "address", "mtu"];
        assert_eq!(did_you_mean("adress", keys), Some("address"));
        assert_eq!(did_you_mean("devise", keys), Some("device"));
        assert_eq!(did_you_mean("zzzzzz", keys), None);
        assert_eq!(distance("", "abc"), 3);
    }
}
