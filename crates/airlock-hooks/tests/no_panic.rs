//! Hostile input never panics the analysis (a panicking hook exits 101,
//! which Claude Code treats as a non-blocking error: the call would run).

use std::path::Path;

use airlock_hooks::{Decision, Policy};

const ALPHABET: &[&str] = &[
    "a", "git", " ", "push", "'", "\"", "\\", "$", "(", ")", "{", "}", "[", "]", "`", "|", "&",
    ";", "<", ">", "<<", "EOF", "\n", "=", "~", "*", "?", "!", "#", "-c", "sh", "$((", "))", "<(",
    ">(", "${", ":-", "IFS", "/", "..", "\t", "é", "\u{0}", "$'", "\\x67", ",", "{a,b}", "case",
    "in", "esac", "do", "done", "for", "if", "then", "fi", "function", "coproc", "[[", "]]",
];

#[test]
fn generated_shell_like_input_never_panics() {
    let policy = Policy::new("/w/run", &["src/**"]).unwrap();
    // A fixed linear congruential sequence: the same cases every run.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize
    };
    let mut decided = 0;
    for _ in 0..4000 {
        let len = next() % 24;
        let command: String = (0..len)
            .map(|_| ALPHABET[next() % ALPHABET.len()])
            .collect();
        let decision = policy.decide_command(&command, Path::new("/w/run"));
        if decision != Decision::Allow {
            decided += 1;
        }
    }
    assert!(decided > 0);
}
