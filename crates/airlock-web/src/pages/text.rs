//! Hostile text as HTML: the model's rule (`airlock_model::hostile`) says
//! which characters are shown as escapes; each escape becomes a visible
//! mark (`<span class="esc" title="U+202E">\u{202e}</span>`), and maud
//! HTML-escapes every character, so no `<`, `&` or quote the agent wrote
//! can become markup.

use airlock_core::hostile::push_escaped;
use maud::{Markup, html};

/// Text that may span lines (a diff line, a brief, command output): line
/// breaks and tabs stay, everything the terminal rule escapes is marked.
pub fn text(s: &str) -> Markup {
    marked(s, true)
}

/// Text kept on one line (a path, a name, a reason in a list): line
/// breaks and tabs are escapes too.
pub fn line(s: &str) -> Markup {
    marked(s, false)
}

/// [`line`] cut to `max` characters (with `…`), for lists and titles.
pub fn short_line(s: &str, max: usize) -> Markup {
    if s.chars().count() <= max {
        return line(s);
    }
    let keep: String = s.chars().take(max.saturating_sub(1)).collect();
    html! { (line(&keep)) "…" }
}

fn marked(s: &str, keep_lines: bool) -> Markup {
    // The common case (nothing to escape) is one text node.
    if s.chars().all(|c| !needs_escape(c, keep_lines)) {
        return html! { (s) };
    }
    let mut plain = String::new();
    let mut parts: Vec<Part> = Vec::new();
    for c in s.chars() {
        if needs_escape(c, keep_lines) {
            if !plain.is_empty() {
                parts.push(Part::Plain(std::mem::take(&mut plain)));
            }
            let mut shown = String::new();
            push_escaped(&mut shown, c);
            parts.push(Part::Escape {
                shown,
                code: format!("U+{:04X}", c as u32),
            });
        } else {
            plain.push(c);
        }
    }
    if !plain.is_empty() {
        parts.push(Part::Plain(plain));
    }
    html! {
        @for p in &parts {
            @match p {
                Part::Plain(t) => (t),
                Part::Escape { shown, code } => span.esc title=(code) { (shown) },
            }
        }
    }
}

enum Part {
    Plain(String),
    Escape { shown: String, code: String },
}

/// Whether the hostile-text rule writes `c` as an escape.
pub fn needs_escape(c: char, keep_lines: bool) -> bool {
    if keep_lines && (c == '\n' || c == '\t') {
        return false;
    }
    let mut one = String::new();
    push_escaped(&mut one, c);
    one.chars().ne(std::iter::once(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_marked_and_markup_is_text() {
        let html = line("a\u{202e}<script>x</script>\x1b").into_string();
        assert_eq!(
            html,
            "a<span class=\"esc\" title=\"U+202E\">\\u{202e}</span>&lt;script&gt;x&lt;/script&gt;<span class=\"esc\" title=\"U+001B\">\\x1b</span>"
        );
        assert_eq!(text("a\n\tb").into_string(), "a\n\tb");
        assert!(line("a\nb").into_string().contains("title=\"U+000A\""));
        assert_eq!(short_line("abcdef", 4).into_string(), "abc…");
    }
}
