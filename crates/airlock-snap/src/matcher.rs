//! Golden wildcards: `[..]` matches any text within a line; a line that is
//! exactly `...` matches any number of lines (zero included).
//!
//! Both are "star" wildcards over literal pieces, so the earliest placement of
//! each piece is always the best one: later pieces only get more room. The
//! matcher therefore never backtracks. A line with `[..]` costs linear time
//! in the line; between two `...` lines, a block of `k` golden lines is
//! searched for at each position of the output once, so the worst case is
//! `O(output lines × k)` line comparisons, never exponential.

pub const LINE_WILDCARD: &str = "[..]";
pub const LINES_WILDCARD: &str = "...";

/// Whether a golden text uses wildcards at all.
pub fn has_wildcards(golden: &str) -> bool {
    golden.contains(LINE_WILDCARD) || golden.split('\n').any(|l| l == LINES_WILDCARD)
}

/// Whether `actual` matches `golden` with its wildcards.
pub fn text_matches(golden: &str, actual: &str) -> bool {
    if golden == actual {
        return true;
    }
    if !has_wildcards(golden) {
        return false;
    }
    let g: Vec<&str> = golden.split('\n').collect();
    let a: Vec<&str> = actual.split('\n').collect();
    lines_match(&g, &a)
}

/// One golden line against one output line.
pub fn line_matches(golden: &str, actual: &str) -> bool {
    if golden == LINES_WILDCARD {
        return true;
    }
    if !golden.contains(LINE_WILDCARD) {
        return golden == actual;
    }
    let mut pieces = golden.split(LINE_WILDCARD);
    let first = pieces.next().unwrap_or("");
    let Some(mut rest) = actual.strip_prefix(first) else {
        return false;
    };
    let pieces: Vec<&str> = pieces.collect();
    let (last, middle) = pieces.split_last().expect("golden contains the wildcard");
    for piece in middle {
        match rest.find(piece) {
            Some(i) => rest = &rest[i + piece.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

fn block_at(block: &[&str], actual: &[&str], at: usize) -> bool {
    block
        .iter()
        .zip(&actual[at..at + block.len()])
        .all(|(g, a)| line_matches(g, a))
}

fn lines_match(golden: &[&str], actual: &[&str]) -> bool {
    let blocks: Vec<&[&str]> = golden.split(|l| *l == LINES_WILDCARD).collect();
    if blocks.len() == 1 {
        return golden.len() == actual.len() && block_at(golden, actual, 0);
    }
    let (first, rest) = blocks
        .split_first()
        .expect("split yields one block at least");
    let (last, middle) = rest.split_last().expect("two blocks at least");
    if first.len() + last.len() > actual.len()
        || !block_at(first, actual, 0)
        || !block_at(last, actual, actual.len() - last.len())
    {
        return false;
    }
    let mut pos = first.len();
    let end = actual.len() - last.len();
    for block in middle {
        if block.is_empty() {
            continue;
        }
        let mut found = None;
        let mut at = pos;
        while at + block.len() <= end {
            if block_at(block, actual, at) {
                found = Some(at);
                break;
            }
            at += 1;
        }
        match found {
            Some(at) => pos = at + block.len(),
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_wildcards() {
        assert!(line_matches("took [..] ms", "took 12 ms"));
        assert!(line_matches("took [..] ms", "took  ms"));
        assert!(line_matches("[..]", ""));
        assert!(line_matches("a[..]b[..]c", "a-b-b-c"));
        assert!(!line_matches("a[..]b[..]c", "a-c-b"));
        // The last piece must not overlap the first.
        assert!(!line_matches("ab[..]bc", "abc"));
        assert!(line_matches("ab[..]bc", "abbc"));
        assert!(!line_matches("x", "x y"));
    }

    #[test]
    fn multi_line_wildcards() {
        assert!(text_matches("head\n...\ntail\n", "head\ntail\n"));
        assert!(text_matches("head\n...\ntail\n", "head\n1\n2\ntail\n"));
        assert!(text_matches("...\n", "anything\nat all\n"));
        assert!(text_matches("...", ""));
        assert!(text_matches(
            "a\n...\nb [..]\n...\nc\n",
            "a\nx\nb 1\ny\nb 2\nc\n"
        ));
        assert!(!text_matches("head\n...\ntail\n", "head\n1\n"));
        assert!(!text_matches("a\n...\nb\n...\nb\n", "a\nb\n"));
        assert!(text_matches("a\n...\nb\n...\nb\n", "a\nb\nb\n"));
        assert!(!text_matches("exact\n", "exact"));
    }

    #[test]
    fn hostile_goldens_finish_quickly() {
        // Many wildcards on one line against a long line that almost matches.
        let golden = format!("{}b", "a[..]".repeat(2000));
        let actual = "a".repeat(100_000);
        assert!(!line_matches(&golden, &actual));
        // Many `...` blocks that each almost match, against many lines.
        let golden = format!("{}z\n", "...\na\na\na\nb\n".repeat(500));
        let actual = "a\n".repeat(50_000);
        assert!(!text_matches(&golden, &actual));
        let golden = "...\n".repeat(10_000) + "x";
        assert!(text_matches(&golden, &("y\n".repeat(10_000) + "x")));
        assert!(!text_matches(&golden, &"y\n".repeat(10_000)));
    }
}
