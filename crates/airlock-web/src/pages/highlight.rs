//! Syntax colouring for diff lines, on the server: a small tokenizer
//! (comments, strings, numbers, keywords) per family of languages, by file
//! extension. `syntect` (default-fancy) took 1.4 s for a 5,000-line diff
//! here, seven times the page's budget (BENCHMARKS.md, Web); this takes a
//! few milliseconds. Each line is coloured alone: a block comment or a
//! string that spans lines is coloured on its first line only.
//! Every token is hostile text and goes through [`text::text`].

use maud::{Markup, html};

use super::text;

/// What the tokenizer knows of a language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lang {
    keywords: &'static [&'static str],
    /// `//` starts a comment.
    slash: bool,
    /// `#` starts a comment.
    hash: bool,
    /// `'` quotes a string (not in Rust, where it marks lifetimes too).
    single_quote: bool,
}

const RUST: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "self", "Self", "static", "struct", "super", "trait", "true", "type",
    "unsafe", "use", "where", "while",
];
const C_LIKE: &[&str] = &[
    "break",
    "case",
    "char",
    "class",
    "const",
    "continue",
    "default",
    "do",
    "double",
    "else",
    "enum",
    "extern",
    "false",
    "float",
    "for",
    "func",
    "go",
    "if",
    "import",
    "int",
    "interface",
    "long",
    "new",
    "nil",
    "null",
    "package",
    "private",
    "protected",
    "public",
    "return",
    "short",
    "static",
    "struct",
    "switch",
    "this",
    "true",
    "typedef",
    "unsigned",
    "var",
    "void",
    "while",
    "function",
    "let",
    "export",
    "from",
    "async",
    "await",
    "typeof",
    "instanceof",
    "undefined",
    "defer",
    "range",
    "type",
    "map",
    "chan",
    "select",
    "throw",
    "try",
    "catch",
    "finally",
];
const PYTHON: &[&str] = &[
    "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del", "elif",
    "else", "except", "False", "finally", "for", "from", "global", "if", "import", "in", "is",
    "lambda", "None", "nonlocal", "not", "or", "pass", "raise", "return", "True", "try", "while",
    "with", "yield",
];
const SHELL: &[&str] = &[
    "case", "do", "done", "elif", "else", "esac", "export", "fi", "for", "function", "if", "in",
    "local", "return", "then", "until", "while",
];
const DATA: &[&str] = &["true", "false", "null"];

/// The language of `path` by its extension, if we colour it.
pub fn lang_for(path: &str) -> Option<Lang> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    let lang = |keywords, slash, hash, single_quote| Lang {
        keywords,
        slash,
        hash,
        single_quote,
    };
    Some(match ext {
        "rs" => lang(RUST, true, false, false),
        "c" | "h" | "cc" | "cpp" | "hpp" | "go" | "java" | "js" | "mjs" | "ts" | "tsx" | "jsx"
        | "kt" | "swift" | "cs" | "scala" => lang(C_LIKE, true, false, true),
        "py" => lang(PYTHON, false, true, true),
        "sh" | "bash" | "zsh" => lang(SHELL, false, true, true),
        "toml" | "yaml" | "yml" | "json" => lang(DATA, false, ext != "json", true),
        _ if name == "Makefile" || name == "Dockerfile" => lang(SHELL, false, true, true),
        _ => return None,
    })
}

/// One line of code, coloured: `span.hl-k` keywords, `span.hl-s` strings,
/// `span.hl-c` comments, `span.hl-n` numbers; the rest as text.
pub fn line(lang: Lang, code: &str) -> Markup {
    let mut parts: Vec<(&'static str, &str)> = Vec::new();
    let bytes = code.as_bytes();
    let mut plain_from = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let token: Option<(&'static str, usize)> =
            if (lang.slash && code[i..].starts_with("//")) || (lang.hash && b == b'#') {
                Some(("hl-c", bytes.len()))
            } else if b == b'"' || (b == b'\'' && lang.single_quote) {
                Some(("hl-s", string_end(bytes, i)))
            } else if b.is_ascii_digit() && (i == 0 || !is_word(bytes[i - 1])) {
                let mut end = i + 1;
                while end < bytes.len() && (is_word(bytes[end]) || bytes[end] == b'.') {
                    end += 1;
                }
                Some(("hl-n", end))
            } else if is_word(b) && (i == 0 || !is_word(bytes[i - 1])) {
                let mut end = i + 1;
                while end < bytes.len() && is_word(bytes[end]) {
                    end += 1;
                }
                if lang.keywords.contains(&&code[i..end]) {
                    Some(("hl-k", end))
                } else {
                    i = end;
                    continue;
                }
            } else {
                None
            };
        match token {
            Some((class, end)) => {
                flush(&mut parts, code, plain_from, i);
                parts.push((class, &code[i..end]));
                i = end;
                plain_from = end;
            }
            // Past one character (UTF-8: to the next boundary).
            None => {
                i += 1;
                while i < bytes.len() && !code.is_char_boundary(i) {
                    i += 1;
                }
            }
        }
    }
    flush(&mut parts, code, plain_from, bytes.len());
    html! {
        @for (class, t) in &parts {
            @if class.is_empty() { (text::text(t)) }
            @else { span class=(class) { (text::text(t)) } }
        }
    }
}

/// Text between tokens, as itself.
fn flush<'a>(parts: &mut Vec<(&'static str, &'a str)>, code: &'a str, from: usize, to: usize) {
    if to > from {
        parts.push(("", &code[from..to]));
    }
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The end of the string opened at `start` (after its closing quote, or
/// the line's end); a backslash escapes the next byte.
fn string_end(bytes: &[u8], start: usize) -> usize {
    let quote = bytes[start];
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b if b == quote => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rust() -> Lang {
        lang_for("src/main.rs").unwrap()
    }

    #[test]
    fn keywords_strings_numbers_and_comments_get_their_class() {
        let html = line(rust(), "let x = \"a // b\"; // note 42").into_string();
        assert_eq!(
            html,
            "<span class=\"hl-k\">let</span> x = <span class=\"hl-s\">&quot;a // b&quot;</span>; <span class=\"hl-c\">// note 42</span>"
        );
        assert_eq!(
            line(rust(), "f(12, x1)").into_string(),
            "f(<span class=\"hl-n\">12</span>, x1)"
        );
        let py = lang_for("a/b.py").unwrap();
        assert_eq!(
            line(py, "def f(): # 'x'").into_string(),
            "<span class=\"hl-k\">def</span> f(): <span class=\"hl-c\"># 'x'</span>"
        );
        assert!(lang_for("README").is_none());
        assert!(lang_for("x.md").is_none());
    }

    #[test]
    fn hostile_text_inside_a_token_is_still_escaped_and_marked() {
        let html = line(
            rust(),
            "let s = \"</span><script>x</script>\u{202e}\"; // \u{2066}<b>",
        )
        .into_string();
        assert!(
            !html.contains("<script>") && !html.contains("<b>"),
            "{html}"
        );
        assert!(html.contains("&lt;/span&gt;&lt;script&gt;"), "{html}");
        assert!(
            html.contains("<span class=\"esc\" title=\"U+202E\">"),
            "{html}"
        );
        assert!(
            html.contains("<span class=\"esc\" title=\"U+2066\">"),
            "{html}"
        );
        // Unclosed strings, a lone backslash and multibyte text end cleanly.
        for odd in ["\"abc\\", "'", "é1 \"ü", "\\"] {
            let _ = line(lang_for("x.js").unwrap(), odd).into_string();
        }
    }
}
