//! A patch as git wrote it (`diff-tree -p`), cut into files and laid out
//! line by line with a class per kind of line. Every line is hostile text.

use maud::{Markup, html};

use super::highlight::{self, Lang};
use super::text;

/// One file's part of a patch: its header lines and its hunks' lines.
pub struct FilePatch<'a> {
    pub header: Vec<&'a str>,
    pub lines: Vec<&'a str>,
}

/// The patch cut at each `diff --git ` line (a content line always starts
/// with ` `, `+`, `-` or `\`, and git quotes a path with a line break, so
/// only git's own header starts so).
pub fn split(patch: &str) -> Vec<FilePatch<'_>> {
    let mut files: Vec<FilePatch<'_>> = Vec::new();
    // `split('\n')`, not `lines()`: a CR the agent put at a line's end is
    // shown, not dropped.
    let body = patch.strip_suffix('\n').unwrap_or(patch);
    for line in body.split('\n').filter(|_| !patch.is_empty()) {
        if line.starts_with("diff --git ") || files.is_empty() {
            files.push(FilePatch {
                header: vec![line],
                lines: Vec::new(),
            });
            continue;
        }
        let file = files.last_mut().expect("one file pushed above");
        if file.lines.is_empty() && !line.starts_with("@@") {
            file.header.push(line);
        } else {
            file.lines.push(line);
        }
    }
    files
}

/// The class of a diff line: `add`, `del`, `hunk` or `ctx`.
pub fn kind(line: &str) -> &'static str {
    match line.as_bytes().first() {
        Some(b'+') => "add",
        Some(b'-') => "del",
        Some(b'@') => "hunk",
        Some(b'\\') => "note",
        _ => "ctx",
    }
}

/// A file's lines, each in a span of its kind (one `pre`); the code after
/// the `+`/`-`/` ` coloured when the file's language is known. Each span is
/// a block (its background spans the width), so no newline is written
/// between them: a newline there would be a second, empty line in the
/// browser; copying still gives one line per diff line (a block ends one).
pub fn render(file: &FilePatch<'_>, lang: Option<Lang>) -> Markup {
    html! {
        pre.diff {
            @for h in &file.header { span.l.meta { (text::line(h)) } }
            @for l in &file.lines {
                @let kind = kind(l);
                span class={ "l " (kind) } {
                    @match (lang, kind) {
                        (Some(lang), "add" | "del" | "ctx") if matches!(l.as_bytes().first(), Some(b' ' | b'+' | b'-')) => {
                            (&l[..1]) (highlight::line(lang, &l[1..]))
                        }
                        _ => (text::text(l)),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_cuts_at_each_file_and_keeps_headers_apart() {
        let patch = "diff --git a/x b/x\nindex 1..2 100644\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+diff --git a/y b/y\ndiff --git a/z b/z\nnew file mode 100644\n";
        let files = split(patch);
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].header.len(), 4);
        assert_eq!(files[0].lines, ["@@ -1 +1 @@", "-a", "+diff --git a/y b/y"]);
        assert_eq!(
            files[1].header,
            ["diff --git a/z b/z", "new file mode 100644"]
        );
        assert_eq!(kind("+x"), "add");
        assert_eq!(kind(" x"), "ctx");
        assert_eq!(
            split("diff --git a/x b/x\n@@ -1 +1 @@\n+a\r\n")[0].lines[1],
            "+a\r"
        );
        assert!(split("").is_empty());
        // Coloured or not, a line's text is all there, escaped.
        let files = split("diff --git a/x.rs b/x.rs\n@@ -1 +1 @@\n+let a = \"<b>\";\n\u{e9}x\n");
        let html = render(&files[0], crate::pages::highlight::lang_for("x.rs")).into_string();
        assert!(html.contains("+<span class=\"hl-k\">let</span> a = <span class=\"hl-s\">&quot;&lt;b&gt;&quot;</span>"), "{html}");
        assert!(
            html.contains("<span class=\"l ctx\">\u{e9}x</span>"),
            "{html}"
        );
    }
}
