//! Splitting lines into words the way iptables-restore and a shell do.

/// One logical line: physical lines joined at a trailing `\`.
pub(crate) struct LogicalLine {
    /// 0-based index of the first physical line.
    pub index: usize,
    pub text: String,
}

pub(crate) fn logical_lines(text: &str) -> Vec<LogicalLine> {
    let mut out = Vec::new();
    let mut cur: Option<LogicalLine> = None;
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let (body, cont) = match line.trim_end().strip_suffix('\\') {
            Some(b) => (b, true),
            None => (line, false),
        };
        let entry = cur.get_or_insert_with(|| LogicalLine {
            index: i,
            text: String::new(),
        });
        if !entry.text.is_empty() {
            entry.text.push(' ');
        }
        entry.text.push_str(body);
        if !cont {
            out.extend(cur.take());
        }
    }
    out.extend(cur.take());
    out
}

/// Splits a line into words: blanks separate, `"..."` (with `\"` and `\\`)
/// and `'...'` quote, an unquoted `#` at the start of a word starts a comment.
pub(crate) fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.peek() {
            None | Some('#') => break,
            _ => {}
        }
        let mut word = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            chars.next();
            match c {
                '"' => loop {
                    match chars.next() {
                        None => return Err("unterminated quoted string".into()),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e @ ('"' | '\\')) => word.push(e),
                            Some(e) => {
                                word.push('\\');
                                word.push(e);
                            }
                            None => return Err("unterminated quoted string".into()),
                        },
                        Some(x) => word.push(x),
                    }
                },
                '\'' => loop {
                    match chars.next() {
                        None => return Err("unterminated quoted string".into()),
                        Some('\'') => break,
                        Some(x) => word.push(x),
                    }
                },
                '\\' => match chars.next() {
                    Some(x) => word.push(x),
                    None => word.push('\\'),
                },
                x => word.push(x),
            }
        }
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        assert_eq!(
            split_words(r#"-A X -m comment --comment "a \"b\" c" -j ACCEPT # tail"#).unwrap(),
            vec![
                "-A",
                "X",
                "-m",
                "comment",
                "--comment",
                "a \"b\" c",
                "-j",
                "ACCEPT"
            ]
        );
        assert_eq!(split_words("a 'b c'd").unwrap(), vec!["a", "b cd"]);
        assert!(split_words("\"abc").is_err());
        assert!(split_words("  # only").unwrap().is_empty());
    }

    #[test]
    fn continuation() {
        let l = logical_lines("a \\\n  b\nc\r\n");
        assert_eq!(l.len(), 3);
        assert_eq!(l[0].index, 0);
        assert_eq!(l[0].text, "a    b");
        assert_eq!(l[1].index, 2);
        assert_eq!(l[1].text, "c");
    }
}
