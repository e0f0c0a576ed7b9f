//! Test counts of a gate, read from what the gate left: a JUnit XML report
//! when the workflow names one, otherwise the summary lines of cargo test,
//! pytest, jest, vitest or go test in its output. Everything read here is
//! the agent's: it is parsed defensively and bounded, and a report that
//! does not parse gives no counts rather than an error.

use serde::{Deserialize, Serialize};

/// Bytes of a JUnit report read at most; a larger one gives no counts.
pub const MAX_JUNIT_BYTES: u64 = 16 << 20;
/// Bytes read from the end of each output stream for summary lines.
pub const MAX_OUTPUT_BYTES: u64 = 4 << 20;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct TestCounts {
    pub passed: u64,
    pub failed: u64,
    #[serde(default)]
    pub skipped: u64,
    /// Where the counts come from: `junit`, `cargo test`, `pytest`, `jest`,
    /// `vitest` or `go test`.
    pub source: String,
}

impl std::fmt::Display for TestCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} passed, {} failed", self.passed, self.failed)?;
        if self.skipped > 0 {
            write!(f, ", {} skipped", self.skipped)?;
        }
        Ok(())
    }
}

/// Counts `<testcase>` elements: one with a `<failure>` or `<error>` child
/// failed, one with `<skipped>` was skipped, any other passed. None when
/// the text is not XML (DTDs are refused) or holds no test case.
pub fn from_junit(bytes: &[u8]) -> Option<TestCounts> {
    let text = std::str::from_utf8(bytes).ok()?;
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: 1_000_000,
        ..roxmltree::ParsingOptions::default()
    };
    let doc = roxmltree::Document::parse_with_options(text, options).ok()?;
    let mut counts = TestCounts {
        source: "junit".into(),
        ..TestCounts::default()
    };
    let mut any = false;
    for case in doc
        .descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == "testcase")
    {
        any = true;
        let has = |tag: &str| {
            case.children()
                .any(|c| c.is_element() && c.tag_name().name() == tag)
        };
        if has("failure") || has("error") {
            counts.failed += 1;
        } else if has("skipped") {
            counts.skipped += 1;
        } else {
            counts.passed += 1;
        }
    }
    any.then_some(counts)
}

/// The counts in a test runner's summary lines, trying each runner's
/// format in turn; the first that finds its summary wins.
pub fn from_output(text: &str) -> Option<TestCounts> {
    let text = strip_ansi(text);
    cargo_test(&text)
        .or_else(|| pytest(&text))
        .or_else(|| jest(&text))
        .or_else(|| vitest(&text))
        .or_else(|| go_test(&text))
}

/// `test result: ok. 48 passed; 0 failed; 1 ignored; …`, one per test
/// binary: summed.
fn cargo_test(text: &str) -> Option<TestCounts> {
    let mut counts = TestCounts {
        source: "cargo test".into(),
        ..TestCounts::default()
    };
    let mut any = false;
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            continue;
        };
        let Some((_, tally)) = rest.split_once(". ") else {
            continue;
        };
        let pairs = number_word_pairs(tally, &[';']);
        let Some(passed) = find(&pairs, &["passed"]) else {
            continue;
        };
        any = true;
        counts.passed += passed;
        counts.failed += find(&pairs, &["failed"]).unwrap_or(0);
        counts.skipped += find(&pairs, &["ignored"]).unwrap_or(0);
    }
    any.then_some(counts)
}

/// The last `=== 48 passed, 2 failed, 1 skipped in 3.20s ===` line (`-q`
/// drops the `=`). Errors count as failures, xfailed as skipped, xpassed
/// as passed.
fn pytest(text: &str) -> Option<TestCounts> {
    text.lines().rev().find_map(|line| {
        let line = line.trim().trim_matches('=').trim();
        let (tally, time) = line.rsplit_once(" in ")?;
        let time = time.split_whitespace().next()?;
        time.strip_suffix('s')?.parse::<f64>().ok()?;
        let pairs = number_word_pairs(tally, &[',']);
        if pairs.is_empty() || pairs.len() != tally.split(',').count() {
            return None;
        }
        let known = [
            "passed",
            "failed",
            "skipped",
            "error",
            "errors",
            "xfailed",
            "xpassed",
            "deselected",
            "warning",
            "warnings",
            "rerun",
        ];
        if !pairs.iter().all(|(_, w)| known.contains(&w.as_str())) {
            return None;
        }
        let sum = |words: &[&str]| {
            pairs
                .iter()
                .filter(|(_, w)| words.contains(&w.as_str()))
                .map(|(n, _)| n)
                .sum::<u64>()
        };
        let counts = TestCounts {
            passed: sum(&["passed", "xpassed"]),
            failed: sum(&["failed", "error", "errors"]),
            skipped: sum(&["skipped", "xfailed"]),
            source: "pytest".into(),
        };
        (counts.passed + counts.failed + counts.skipped > 0).then_some(counts)
    })
}

/// `Tests:       1 failed, 1 skipped, 47 passed, 49 total`.
fn jest(text: &str) -> Option<TestCounts> {
    text.lines().rev().find_map(|line| {
        let tally = line.trim().strip_prefix("Tests:")?;
        let pairs = number_word_pairs(tally, &[',']);
        find(&pairs, &["total"])?;
        Some(TestCounts {
            passed: find(&pairs, &["passed"]).unwrap_or(0),
            failed: find(&pairs, &["failed"]).unwrap_or(0),
            skipped: find(&pairs, &["skipped", "todo"]).unwrap_or(0),
            source: "jest".into(),
        })
    })
}

/// `      Tests  1 failed | 47 passed (48)`.
fn vitest(text: &str) -> Option<TestCounts> {
    text.lines().rev().find_map(|line| {
        let rest = line.trim().strip_prefix("Tests ")?;
        let (tally, total) = rest.trim().rsplit_once(" (")?;
        total.strip_suffix(')')?.parse::<u64>().ok()?;
        let pairs = number_word_pairs(tally, &['|']);
        if pairs.is_empty() {
            return None;
        }
        Some(TestCounts {
            passed: find(&pairs, &["passed"]).unwrap_or(0),
            failed: find(&pairs, &["failed"]).unwrap_or(0),
            skipped: find(&pairs, &["skipped", "todo"]).unwrap_or(0),
            source: "vitest".into(),
        })
    })
}

/// `go test -v`: the top-level `--- PASS:`, `--- FAIL:` and `--- SKIP:`
/// lines (subtests are indented and not counted). Without `-v` (no
/// `=== RUN` line) go prints only failures, so there are no counts.
fn go_test(text: &str) -> Option<TestCounts> {
    if !text.lines().any(|l| l.starts_with("=== RUN")) {
        return None;
    }
    let mut counts = TestCounts {
        source: "go test".into(),
        ..TestCounts::default()
    };
    for line in text.lines() {
        if line.starts_with("--- PASS:") {
            counts.passed += 1;
        } else if line.starts_with("--- FAIL:") {
            counts.failed += 1;
        } else if line.starts_with("--- SKIP:") {
            counts.skipped += 1;
        }
    }
    (counts.passed + counts.failed + counts.skipped > 0).then_some(counts)
}

/// `48 passed; 0 failed` split at `separators` into (number, word) pairs;
/// parts that are not a number then a word are left out.
fn number_word_pairs(text: &str, separators: &[char]) -> Vec<(u64, String)> {
    text.split(separators)
        .filter_map(|part| {
            let mut words = part.split_whitespace();
            let n = words.next()?.parse::<u64>().ok()?;
            let w = words.next()?;
            Some((n, w.to_string()))
        })
        .collect()
}

fn find(pairs: &[(u64, String)], words: &[&str]) -> Option<u64> {
    let found: Vec<u64> = pairs
        .iter()
        .filter(|(_, w)| words.contains(&w.as_str()))
        .map(|(n, _)| *n)
        .collect();
    (!found.is_empty()).then(|| found.iter().sum())
}

/// Colour sequences (`ESC [ … letter`) removed: runners colour their
/// summaries when they think they are on a terminal.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(passed: u64, failed: u64, skipped: u64, source: &str) -> Option<TestCounts> {
        Some(TestCounts {
            passed,
            failed,
            skipped,
            source: source.into(),
        })
    }

    /// Printed by `cargo test` (1.9x) on a crate with a failing unit test
    /// and one integration test binary.
    const CARGO_FAILED: &str = "
running 4 tests
test tests::a ... ok
test tests::b ... ok
test tests::d ... ignored
test tests::c ... FAILED

failures:

---- tests::c stdout ----

thread 'tests::c' (9902) panicked at src/lib.rs:5:22:
assertion `left == right` failed

failures:
    tests::c

test result: FAILED. 2 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.30s
";

    const CARGO_OK: &str = "
test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.00s

     Running tests/it.rs (target/debug/deps/it-0b1c)
test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s

   Doc-tests sample
test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
";

    #[test]
    fn cargo_test_summaries_are_summed() {
        assert_eq!(from_output(CARGO_FAILED), counts(2, 1, 1, "cargo test"));
        assert_eq!(from_output(CARGO_OK), counts(4, 0, 1, "cargo test"));
        assert_eq!(
            from_output(CARGO_OK).unwrap().to_string(),
            "4 passed, 0 failed, 1 skipped"
        );
    }

    #[test]
    fn pytest_summary_lines() {
        let out = "tests/test_a.py ..F.s                                  [100%]\n\
            =================================== FAILURES ===================================\n\
            ____________________________________ test_c ____________________________________\n\
            =========================== short test summary info ============================\n\
            FAILED tests/test_a.py::test_c - assert 1 == 2\n\
            ==================== 1 failed, 3 passed, 1 skipped in 0.12s ====================\n";
        assert_eq!(from_output(out), counts(3, 1, 1, "pytest"));
        assert_eq!(
            from_output("48 passed, 2 warnings in 3.20s\n"),
            counts(48, 0, 0, "pytest")
        );
        assert_eq!(
            from_output("====== 2 passed, 1 error, 1 xfailed in 1.05s ======"),
            counts(2, 1, 1, "pytest")
        );
        // A sentence that merely looks like one is not a summary.
        assert_eq!(from_output("waited 3 minutes in 2.0s"), None);
    }

    #[test]
    fn jest_and_vitest_summary_lines() {
        let jest_out = "Test Suites: 1 failed, 3 passed, 4 total\n\
            Tests:       1 failed, 1 skipped, 47 passed, 49 total\n\
            Snapshots:   0 total\nTime:        2.31 s\nRan all test suites.\n";
        assert_eq!(from_output(jest_out), counts(47, 1, 1, "jest"));
        let vitest_out = " Test Files  1 failed | 2 passed (3)\n      \
            Tests  1 failed | 47 passed (48)\n   Start at  10:00:00\n   Duration  1.20s\n";
        assert_eq!(from_output(vitest_out), counts(47, 1, 0, "vitest"));
        assert_eq!(
            from_output(
                "\x1b[2m      Tests \x1b[22m \x1b[1m\x1b[32m48 passed\x1b[39m\x1b[22m\x1b[90m (48)\x1b[39m\n"
            ),
            counts(48, 0, 0, "vitest")
        );
    }

    #[test]
    fn go_test_counts_top_level_tests_of_a_verbose_run() {
        let out = "=== RUN   TestAdd\n--- PASS: TestAdd (0.00s)\n=== RUN   TestSub\n\
            === RUN   TestSub/neg\n    --- FAIL: TestSub/neg (0.00s)\n--- FAIL: TestSub (0.00s)\n\
            === RUN   TestSkip\n--- SKIP: TestSkip (0.00s)\nFAIL\nFAIL\texample.com/m\t0.002s\n";
        assert_eq!(from_output(out), counts(1, 1, 1, "go test"));
        // Without -v go prints only the failures: no counts rather than wrong ones.
        assert_eq!(
            from_output("--- FAIL: TestSub (0.00s)\nFAIL\nFAIL\texample.com/m\t0.002s\n"),
            None
        );
        assert_eq!(from_output("ok  \texample.com/m\t0.002s\n"), None);
    }

    #[test]
    fn junit_reports_are_counted_by_test_case() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="999" failures="0">
  <testsuite name="unit" tests="4">
    <testcase name="a" classname="t"/>
    <testcase name="b" classname="t"><failure message="no">boom</failure></testcase>
    <testcase name="c" classname="t"><error message="err"/></testcase>
    <testcase name="d" classname="t"><skipped/></testcase>
    <testcase name="e" classname="t"><system-out>ok</system-out></testcase>
  </testsuite>
</testsuites>"#;
        // The claimed totals are ignored; the cases are counted.
        assert_eq!(from_junit(xml), counts(2, 2, 1, "junit"));
        assert_eq!(from_junit(b"<testsuites/>"), None);
        assert_eq!(from_junit(b"not xml <"), None);
        assert_eq!(from_junit(&[0xff, 0xfe, 0x00]), None);
        // Entity expansion (billion laughs) needs a DTD, which is refused.
        let laughs =
            br#"<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]>
<testsuite><testcase name="&b;"/></testsuite>"#;
        assert_eq!(from_junit(laughs), None);
    }
}
