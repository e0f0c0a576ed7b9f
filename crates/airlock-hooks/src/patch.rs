//! The paths a Codex `apply_patch` edit touches.
//!
//! Codex sends the patch text as `tool_input.command`. Its envelope is
//! line-based: `*** Begin Patch`, then `*** Add File: P`, `*** Delete File: P`,
//! `*** Update File: P` (optionally followed by `*** Move to: Q`), and
//! `*** End Patch`.

/// The paths the patch creates, changes, deletes or moves to; `None` when
/// the text is not a patch in that envelope.
pub(crate) fn touched_paths(patch: &str) -> Option<Vec<String>> {
    let mut lines = patch
        .lines()
        .map(str::trim_end)
        .skip_while(|l| l.trim().is_empty());
    // Codex sends the patch body itself, not an `apply_patch <<'EOF'` wrapper.
    if lines.next()?.trim() != "*** Begin Patch" {
        return None;
    }
    let mut paths = Vec::new();
    let mut ended = false;
    for line in lines {
        if line.trim() == "*** End Patch" {
            ended = true;
            break;
        }
        for marker in [
            "*** Add File: ",
            "*** Delete File: ",
            "*** Update File: ",
            "*** Move to: ",
        ] {
            // Indented headers too: a reader more lenient than this one
            // must not find a path this one missed.
            if let Some(path) = line.trim_start().strip_prefix(marker) {
                paths.push(path.trim().to_string());
            }
        }
    }
    (ended && !paths.is_empty()).then_some(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_header_kind() {
        let patch = "*** Begin Patch\n*** Add File: a.txt\n+hi\n*** Update File: src/b.rs\n*** Move to: src/c.rs\n@@\n-x\n+y\n*** Delete File: d\n*** End Patch\n";
        assert_eq!(
            touched_paths(patch).unwrap(),
            vec!["a.txt", "src/b.rs", "src/c.rs", "d"]
        );
    }

    #[test]
    fn indented_headers_are_read() {
        let patch = "*** Begin Patch\n*** Add File: ok.txt\n+x\n  *** Add File: /etc/cron.d/x\n+y\n*** End Patch\n";
        assert_eq!(
            touched_paths(patch).unwrap(),
            vec!["ok.txt", "/etc/cron.d/x"]
        );
    }

    #[test]
    fn text_outside_the_envelope_is_not_a_patch() {
        assert_eq!(touched_paths("*** Add File: a\n"), None);
        assert_eq!(touched_paths("*** Begin Patch\n*** Add File: a\n"), None);
        assert_eq!(touched_paths("*** Begin Patch\n*** End Patch\n"), None);
        assert_eq!(
            touched_paths(
                "apply_patch <<'EOF'\n*** Begin Patch\n*** Add File: a\n*** End Patch\nEOF\n"
            ),
            None
        );
    }

    #[test]
    fn leading_blank_lines_are_skipped() {
        assert_eq!(
            touched_paths("\n\n*** Begin Patch\n*** Delete File: a\n*** End Patch"),
            Some(vec!["a".to_string()])
        );
    }
}
