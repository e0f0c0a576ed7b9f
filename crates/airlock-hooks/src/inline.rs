//! Programs given inline to interpreters and editors (`python3 -c`,
//! `perl -e`, `awk '...'`, `sed 's/x/y/e'`): the hook does not run or
//! fully parse their languages, so it looks for what lets such a program
//! start another program, open a connection or write a file outside the
//! shell's view. Finding one makes the command not understood (`ask`):
//! it is never a reason to allow.

/// Words that start programs or reach the network in the scripting
/// languages agents reach for (Python, Perl, Ruby, Node, PHP, Lua, Tcl).
const SPAWNS_OR_CONNECTS: &[&str] = &[
    "system",
    "exec",
    "spawn",
    "popen",
    "subprocess",
    "fork",
    "pty",
    "child_process",
    "shell",
    "passthru",
    "proc_open",
    "socket",
    "fsockopen",
    "http",
    "urllib",
    "urlopen",
    "requests",
    "fetch",
    "net::",
    "require('net')",
    "require(\"net\")",
    "require('tls')",
    "require(\"tls\")",
    "require('dgram')",
    "require(\"dgram\")",
    "lwp",
    "curl",
    "wget",
    "smtp",
    "ftp",
    "ssh",
    "io.popen",
    "os.execute",
    "qx",
    "%x",
    "`",
    "ctypes",
    "__import__",
    "__builtins__",
    "__dict__",
    "__class__",
    "__subclasses__",
    "globals(",
    "vars(",
    "importlib",
    "eval",
    "compile(",
    "getattr(",
    "marshal",
    "pickle",
    "base64",
    "codecs",
    "decode(",
    "fromhex",
    "chr(",
    "\\x",
    "download",
    "webbrowser",
    "telnet",
    "xmlrpc",
    "open_connection",
    "create_connection",
    "urlretrieve",
];

/// Words with which inline code writes, moves or removes files.
const WRITES: &[&str] = &[
    "'w", "\"w", "'a'", "\"a\"", "'x'", "\"x\"", "write", "rename", "remove", "unlink", "rmtree",
    "rmdir", "copy", "move", "mkdir", "chmod", "chown", "symlink", "link(", "truncate", "touch",
    "replace(", "dump(", "save", "append", ">",
];

/// The absolute (or `~`) paths written out in `code`, when `code` also
/// uses a word that writes files: the caller places them.
pub(crate) fn written_paths(code: &str) -> Vec<String> {
    let lower = code.to_ascii_lowercase();
    if !WRITES.iter().any(|w| lower.contains(w)) {
        return Vec::new();
    }
    let mut paths = Vec::new();
    let chars: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let starts = (chars[i] == '/' || (chars[i] == '~' && chars.get(i + 1) == Some(&'/')))
            && (i == 0
                || matches!(
                    chars[i - 1],
                    '\'' | '"' | '`' | ' ' | '(' | '>' | '<' | ',' | '=' | '['
                ));
        if !starts {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len()
            && (chars[i].is_ascii_alphanumeric()
                || matches!(chars[i], '/' | '.' | '_' | '-' | '~' | '+' | '@'))
        {
            i += 1;
        }
        let path: String = chars[start..i].iter().collect();
        if path.len() > 1 {
            paths.push(path);
        }
    }
    paths
}

/// What in `code` (a program for a scripting language) may start another
/// program or open a connection; `None` when nothing does.
pub(crate) fn spawns_or_connects(code: &str) -> Option<&'static str> {
    let lower = code.to_ascii_lowercase();
    SPAWNS_OR_CONNECTS
        .iter()
        .copied()
        .find(|word| lower.contains(word))
}

/// What in an awk program runs a command: `system(...)`, a pipe to or from
/// a command (`print | "cmd"`, `"cmd" | getline`), or a coprocess (`|&`).
pub(crate) fn awk_runs_commands(program: &str) -> Option<&'static str> {
    if program.contains("system") {
        return Some("system()");
    }
    if program.contains("|&") {
        return Some("a coprocess (|&)");
    }
    let bytes = program.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b != b'|' {
            continue;
        }
        let prev = i.checked_sub(1).map(|j| bytes[j]);
        let next = bytes.get(i + 1).copied();
        // `||` is logical or.
        if prev == Some(b'|') || next == Some(b'|') {
            continue;
        }
        return Some("a pipe to or from a command");
    }
    None
}

/// What in a sed script runs a command or writes a file: the `e` command
/// or the `e` flag of `s` (GNU sed runs the pattern space as a command),
/// the `w`/`W` commands or the `w` flag (writes a named file). The script
/// is read command by command: addresses, `s` and `y` with any delimiter
/// and escapes, text of `a`/`i`/`c` to the end of its line.
pub(crate) fn sed_runs_or_writes(script: &str) -> Option<&'static str> {
    let chars: Vec<char> = script.chars().collect();
    let mut i = 0;
    let n = chars.len();
    // Skips a delimited field starting after its opening delimiter; returns
    // the index after the closing one.
    let field = |mut j: usize, delim: char| -> usize {
        while j < n {
            match chars[j] {
                '\\' => j += 2,
                c if c == delim => return j + 1,
                '\n' if delim != '\n' => return j,
                _ => j += 1,
            }
        }
        n
    };
    while i < n {
        // Separators and whitespace between commands.
        while i < n && (chars[i].is_whitespace() || chars[i] == ';' || chars[i] == '}') {
            i += 1;
        }
        if i >= n {
            break;
        }
        // An address: a line number, `$`, `/re/`, `\cREc`, ranges, `!`.
        loop {
            if i < n && (chars[i].is_ascii_digit() || matches!(chars[i], '$' | ',' | '~' | '+')) {
                i += 1;
            } else if i < n && chars[i] == '/' {
                i = field(i + 1, '/');
            } else if i + 1 < n && chars[i] == '\\' {
                let delim = chars[i + 1];
                i = field(i + 2, delim);
            } else if i < n && (chars[i] == '!' || chars[i] == ' ' || chars[i] == 'I') {
                // `I` right after a regex address is its flag.
                if chars[i] == 'I' && !(i > 0 && chars[i - 1] == '/') {
                    break;
                }
                i += 1;
            } else {
                break;
            }
        }
        if i >= n {
            break;
        }
        let command = chars[i];
        i += 1;
        match command {
            'e' => return Some("the `e` command runs a shell command"),
            'w' | 'W' => return Some("the `w` command writes a file"),
            's' | 'y' => {
                if i >= n {
                    break;
                }
                let delim = chars[i];
                i = field(i + 1, delim);
                i = field(i, delim);
                if command == 's' {
                    while i < n && !matches!(chars[i], ';' | '\n' | '}') {
                        match chars[i] {
                            'e' => return Some("the `e` flag of `s` runs the result as a command"),
                            'w' => return Some("the `w` flag of `s` writes a file"),
                            _ => i += 1,
                        }
                    }
                }
            }
            // Text to the end of the line; a line ending in `\` goes on.
            'a' | 'i' | 'c' => loop {
                while i < n && chars[i] != '\n' {
                    i += 1;
                }
                if i < n && i > 0 && chars[i - 1] == '\\' {
                    i += 1;
                } else {
                    break;
                }
            },
            'r' | 'R' | ':' => {
                while i < n && chars[i] != '\n' {
                    i += 1;
                }
            }
            'b' | 't' | 'T' | 'l' | 'L' | 'q' | 'Q' => {
                while i < n && !matches!(chars[i], '\n' | ';' | '}') {
                    i += 1;
                }
            }
            '#' => {
                while i < n && chars[i] != '\n' {
                    i += 1;
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sed_scripts_that_run_or_write_are_found() {
        for script in [
            "1e git push",
            "s/x/git push/e",
            "s|a|b|ge",
            "w /etc/x",
            "/re/w /etc/x",
            "s/a/b/w /etc/x",
            "1d;e id",
            "$!{e id\n}",
        ] {
            assert!(sed_runs_or_writes(script).is_some(), "{script}");
        }
        for script in [
            "s/e/E/g",
            "s/a\\/w/b/",
            "/error/d",
            "1i\\\nwrite me",
            "a whatever e w",
            "y/ew/EW/",
            "s/x/y/;s/w/e/g",
            "s#e#w#",
            "/w/Id",
        ] {
            assert_eq!(sed_runs_or_writes(script), None, "{script}");
        }
    }

    #[test]
    fn awk_programs_that_run_commands_are_found() {
        assert!(awk_runs_commands("BEGIN{system(\"git push\")}").is_some());
        assert!(awk_runs_commands("{print | \"sh\"}").is_some());
        assert!(awk_runs_commands("BEGIN{\"id\" | getline x}").is_some());
        assert_eq!(awk_runs_commands("{ if (a || b) print $1 }"), None);
        assert_eq!(awk_runs_commands("{s += $2} END {print s}"), None);
    }

    #[test]
    fn paths_written_by_inline_code_are_listed() {
        assert_eq!(
            written_paths("open('/etc/x','w').write('x')"),
            vec!["/etc/x".to_string()]
        );
        assert_eq!(
            written_paths("open F, \">/etc/x\""),
            vec!["/etc/x".to_string()]
        );
        assert!(written_paths("print(sum([1, 2]))").is_empty());
        // A path read, with nothing that writes: not listed.
        assert!(written_paths("print(len('/etc/os-release'))").is_empty());
    }

    #[test]
    fn inline_programs_that_spawn_or_connect_are_found() {
        assert!(spawns_or_connects("import os; os.system('git push')").is_some());
        assert!(spawns_or_connects("require('child_process').execSync('x')").is_some());
        assert!(spawns_or_connects("print `git push`").is_some());
        assert!(spawns_or_connects("import urllib.request").is_some());
        assert_eq!(
            spawns_or_connects("import json, sys; print(json.load(sys.stdin)['name'])"),
            None
        );
        assert_eq!(spawns_or_connects("print(1 + 2)"), None);
    }
}
