//! Names the model gives meaning to: the lanes, and what a name may be.

pub const LANES: &[&str] = &["draft", "sandbox", "governed", "staging", "production"];
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Why `name` cannot be a target branch: git's rules for a branch name
/// (`git check-ref-format --branch`), and more that airlock adds because the
/// name is put after `refs/heads/` in refspecs and leases: no leading `-`
/// (never an option), no `refs/` prefix (it would name `refs/heads/refs/…`),
/// at most 200 bytes. `None`: it may be.
pub fn branch_name_problem(name: &str) -> Option<&'static str> {
    let components_bad = name
        .split('/')
        .any(|c| c.is_empty() || c.starts_with('.') || c.ends_with(".lock") || c.ends_with('.'));
    if name.is_empty() {
        Some("it is empty")
    } else if name.len() > 200 {
        Some("it is longer than 200 bytes")
    } else if name.starts_with('-') {
        Some("it begins with `-`, which git would read as an option")
    } else if name.starts_with("refs/") {
        Some("it begins with `refs/`: write the branch's short name, e.g. `main`")
    } else if name
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || "~^:?*[\\".contains(c))
    {
        Some("it holds a space, a control character or one of ~ ^ : ? * [ \\")
    } else if name.contains("..") || name.contains("@{") || name == "@" || components_bad {
        Some(
            "it holds `..`, `@{`, an empty part, or a part beginning with `.` or ending in `.` or `.lock`",
        )
    } else {
        None
    }
}

#[cfg(test)]
mod branch_name_tests {
    use super::branch_name_problem;

    #[test]
    fn branch_names_follow_git_and_never_read_as_options() {
        for ok in ["main", "release/1.2", "team-a/feature_x", "v1.0"] {
            assert_eq!(branch_name_problem(ok), None, "{ok}");
        }
        let long = "x".repeat(201);
        for bad in [
            "",
            "-main",
            "--upload-pack=x",
            "refs/heads/main",
            "ma in",
            "a:b",
            "../main",
            "a..b",
            "a//b",
            "a/",
            "/a",
            ".hidden",
            "a.lock",
            "a@{1}",
            "@",
            "a\nb",
            &long,
        ] {
            assert!(branch_name_problem(bad).is_some(), "{bad:?}");
        }
    }
}
