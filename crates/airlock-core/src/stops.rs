//! Built-in stop conditions, computed from the repository (the run's tree
//! against its base), never from anything the agent claims.

use std::path::{Component, Path};

use airlock_secrets::{Allowlist, Gitleaks, Scanner, Suppression};

use crate::Airlock;
use crate::brief::Brief;
use crate::error::{Error, Result};
use crate::git::{self, Change, Git, LineCount};
use crate::globs::{self, Globs};
use crate::layout::SECRETS_ALLOW_FILE;
use crate::run::Run;
use crate::workflow::Workflow;

pub use airlock_model::check::StopResult;

/// How the secrets stop names a finding hidden by the agent's own marker
/// (read back by the review's risk flags).
pub const INLINE_MARKER_SUPPRESSION: &str = "the inline marker in the change";

pub fn evaluate(
    al: &Airlock,
    run: &Run,
    brief: &Brief,
    workflow: &Workflow,
    tree: &str,
) -> Result<Vec<StopResult>> {
    let git = al.layout.git();
    let changes = git::diff_tree(&git, &run.base, tree)?;
    let numstat = git::numstat(&git, &run.base, tree)?;
    let allow_text =
        std::fs::read_to_string(al.layout.root.join(SECRETS_ALLOW_FILE)).unwrap_or_default();
    let allow = Allowlist::parse(&allow_text, SECRETS_ALLOW_FILE)
        .map_err(|e| Error::Invalid(e.to_string()))?;
    // Like the allowlist, read from the main checkout: the worktree's copy is the agent's.
    let gitleaks = match std::fs::read_to_string(al.layout.root.join(GITLEAKS_FILE)) {
        Ok(text) => {
            Some(Gitleaks::parse(&text, GITLEAKS_FILE).map_err(|e| Error::Invalid(e.to_string()))?)
        }
        Err(_) => None,
    };
    let mut results = vec![
        scope(brief, &changes),
        protected(brief, workflow, &changes),
        if workflow.policy.secrets {
            secrets(&git, &run.base, tree, allow, gitleaks, &changes, &numstat)?
        } else {
            StopResult::new(
                "secrets",
                vec![],
                vec!["secret scanning is off in the workflow".into()],
            )
        },
        blast_radius(brief, workflow, &changes, &numstat),
        file_kinds(&git, tree, &changes, &numstat)?,
    ];
    if let Some(info) = &run.release {
        results.push(checklist(info, &changes));
    }
    Ok(results)
}

pub fn scope(brief: &Brief, changes: &[Change]) -> StopResult {
    let touch = Globs::new(&brief.touch);
    let findings = changes
        .iter()
        .filter(|c| !touch.is_match(&c.path))
        .map(|c| {
            format!(
                "{} is outside the brief's touch list ({})",
                c.path,
                verb(c.status)
            )
        })
        .collect();
    StopResult::new("scope", findings, vec![])
}

/// A protected path passes only when the brief names it explicitly: the
/// exact path or the exact protected glob, never a broader pattern.
pub fn protected(brief: &Brief, workflow: &Workflow, changes: &[Change]) -> StopResult {
    let protected = workflow.protected();
    let globs = Globs::new(&protected);
    let mut findings = Vec::new();
    let mut notes = Vec::new();
    for change in changes {
        let matched = globs.matching(&change.path);
        if matched.is_empty() {
            continue;
        }
        let explicit = brief.touch.iter().any(|t| {
            globs::normalize(t) == change.path
                || matched
                    .iter()
                    .any(|m| globs::normalize(m) == globs::normalize(t))
        });
        if explicit {
            notes.push(format!(
                "{} is protected ({}); the brief lists it explicitly: review it closely",
                change.path,
                matched.join(", ")
            ));
        } else {
            findings.push(format!(
                "{} is protected ({}); a brief must list it explicitly in `touch`",
                change.path,
                matched.join(", ")
            ));
        }
    }
    StopResult::new("protected", findings, notes)
}

fn secrets(
    git: &Git,
    base: &str,
    tree: &str,
    allow: Allowlist,
    gitleaks: Option<Gitleaks>,
    changes: &[Change],
    numstat: &[LineCount],
) -> Result<StopResult> {
    let mut config_notes = Vec::new();
    let scanner = match gitleaks {
        Some(g) => {
            let ids = g.rule_ids();
            if !ids.is_empty() {
                config_notes.push(format!(
                    "rules read from {GITLEAKS_FILE}: {}",
                    ids.join(", ")
                ));
            }
            if !g.use_builtin {
                config_notes.push(format!(
                    "built-in rules off: {GITLEAKS_FILE} defines rules without `[extend] useDefault = true`"
                ));
            }
            for d in &g.diagnostics {
                config_notes.push(format!("{GITLEAKS_FILE}: {d}"));
            }
            Scanner::with_gitleaks(allow, g)
        }
        None => Scanner::new(allow),
    };
    let mut reports = Vec::new();
    // Every file in the patch is scanned, whatever its (possibly quoted)
    // name, as the patch streams by: one file's lines are held at a time.
    for_each_added(git, base, tree, |path, lines| {
        let report = scanner.scan_report(path, lines.iter().map(|(n, l)| (*n, l.as_str())));
        reports.push(report);
    })?;
    // Git shows no lines for a file it calls binary (one NUL byte is enough): its new content is
    // read from the object store and scanned whole, less what the old content already held.
    let mut binary = Vec::new();
    for change in changes {
        let added = !is_null_id(&change.new_id) && !change.is_gitlink();
        let shown_as_binary = numstat
            .iter()
            .any(|n| n.path == change.path && n.lines.is_none());
        if !added || !shown_as_binary {
            continue;
        }
        let new = git.run(&["cat-file", "blob", &change.new_id])?;
        let old = if is_null_id(&change.old_id) || change.old_mode == "160000" {
            None
        } else {
            Some(git.run(&["cat-file", "blob", &change.old_id])?)
        };
        reports.push(scanner.scan_blob(&change.path, old.as_deref(), &new));
        binary.push(change.path.clone());
    }
    let mut findings = Vec::new();
    let mut notes = config_notes;
    if !binary.is_empty() {
        notes.push(format!(
            "binary files scanned whole (git shows no lines for them): {}",
            binary.join(", ")
        ));
    }
    for report in reports {
        for f in report.findings {
            findings.push(format!(
                "{}:{}:{}: {} ({}, fingerprint {})",
                f.path, f.line, f.column, f.rule, f.description, f.fingerprint
            ));
        }
        // The inline marker is written by the agent: a reviewer must see what it hid.
        for s in report.suppressed {
            let why = match s.reason {
                Suppression::InlineMarker => INLINE_MARKER_SUPPRESSION,
                Suppression::Allowlist => SECRETS_ALLOW_FILE,
                Suppression::GitleaksAllowlist => GITLEAKS_FILE,
            };
            notes.push(format!(
                "{}:{}: {} (fingerprint {}) allowed by {why}",
                s.finding.path, s.finding.line, s.finding.rule, s.finding.fingerprint
            ));
        }
    }
    if !findings.is_empty() {
        notes.push(format!(
            "a false positive can be allowed in {SECRETS_ALLOW_FILE} of the main checkout by its fingerprint, or with the inline marker `{}`",
            airlock_secrets::INLINE_MARKER
        ));
    }
    Ok(StopResult::new("secrets", findings, notes))
}

/// A repository's gitleaks configuration, whose rules and allowlists the secrets stop reads.
pub const GITLEAKS_FILE: &str = ".gitleaks.toml";

/// An all-zero object id: the side of a change where the file does not exist.
fn is_null_id(id: &str) -> bool {
    id.bytes().all(|b| b == b'0')
}

/// One file's added lines: (path, [(new line number, text)]).
type AddedFile = (String, Vec<(usize, String)>);

/// Reads a `-U0` patch line by line and hands back each file's added lines
/// once the next file starts (or the patch ends).
#[derive(Default)]
struct AddedLines {
    current: Option<AddedFile>,
    line_no: usize,
    in_hunk: bool,
}

impl AddedLines {
    /// Takes one line of the patch (without its newline); returns the
    /// previous file when this line starts another.
    fn line(&mut self, line: &str) -> Option<AddedFile> {
        if let Some(rest) = line.strip_prefix("diff --git ") {
            self.in_hunk = false;
            // "a/PATH b/PATH": the new path follows the last " b/".
            let path = rest.rsplit_once(" b/").map(|(_, p)| p).unwrap_or(rest);
            return self.current.replace((path.to_string(), Vec::new()));
        }
        if !self.in_hunk
            && let Some(rest) = line.strip_prefix("+++ ")
        {
            if let (Some(p), Some(current)) = (rest.strip_prefix("b/"), self.current.as_mut()) {
                current.0 = p.to_string();
            }
        } else if let Some(rest) = line.strip_prefix("@@ ") {
            self.in_hunk = true;
            self.line_no = rest
                .split_whitespace()
                .find_map(|part| part.strip_prefix('+'))
                .and_then(|p| p.split(',').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(1);
        } else if self.in_hunk
            && let Some(added) = line.strip_prefix('+')
        {
            if let Some(current) = self.current.as_mut() {
                current.1.push((self.line_no, added.to_string()));
            }
            self.line_no += 1;
        }
        None
    }

    fn finish(self) -> Option<AddedFile> {
        self.current
    }
}

/// Added lines per file from a whole `-U0` patch.
/// The release checklist as a stop condition.
pub fn checklist(info: &airlock_model::release::ReleaseInfo, changes: &[Change]) -> StopResult {
    let mut findings = Vec::new();
    let mut notes = Vec::new();
    for c in &info.checklist {
        let globs = Globs::new(std::slice::from_ref(&c.changed));
        match changes.iter().find(|ch| globs.is_match(&ch.path)) {
            Some(ch) => notes.push(format!("{}: {} {}", c.item, ch.status, ch.path)),
            None => findings.push(format!(
                "{}: the release changes nothing matching `{}`",
                c.item, c.changed
            )),
        }
    }
    notes.push(format!(
        "includes {} run(s): {}",
        info.includes.len(),
        info.includes
            .iter()
            .map(|i| i.run.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    StopResult {
        name: "release checklist".into(),
        passed: findings.is_empty(),
        findings,
        notes,
    }
}
#[cfg(test)]
fn added_lines(patch: &str) -> Vec<AddedFile> {
    let mut parser = AddedLines::default();
    let mut files: Vec<AddedFile> = patch.split('\n').filter_map(|l| parser.line(l)).collect();
    files.extend(parser.finish());
    files
}

/// Streams the `-U0` patch from `base` to `tree` out of git and calls
/// `each` with every file's added lines, so memory follows the largest
/// file of the change, not the whole patch.
fn for_each_added(
    git: &Git,
    base: &str,
    tree: &str,
    mut each: impl FnMut(&str, &[(usize, String)]),
) -> Result<()> {
    use std::io::{BufRead, BufReader, Read};
    let mut cmd = git.command([
        "diff-tree",
        "-r",
        "-p",
        "-U0",
        "--no-renames",
        "--no-ext-diff",
        "--no-textconv",
        "--no-color",
        "--src-prefix=a/",
        "--dst-prefix=b/",
        base,
        tree,
    ]);
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().map_err(Error::GitMissing)?;
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let errors = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = stderr.read_to_end(&mut text);
        text
    });
    let mut reader = BufReader::new(child.stdout.take().expect("stdout is piped"));
    let mut parser = AddedLines::default();
    let mut buf = Vec::new();
    let read = loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) => break Ok(()),
            Ok(_) => {
                if buf.last() == Some(&b'\n') {
                    buf.pop();
                }
                if let Some((path, lines)) = parser.line(&String::from_utf8_lossy(&buf)) {
                    each(&path, &lines);
                }
            }
            Err(e) => break Err(e),
        }
    };
    drop(reader);
    let status = child.wait();
    let stderr = errors.join().unwrap_or_default();
    let failed = |message: String| Error::Git {
        args: "diff-tree -r -p".into(),
        message,
    };
    read.map_err(|e| failed(e.to_string()))?;
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => {
            return Err(failed(format!(
                "{s}: {}",
                String::from_utf8_lossy(&stderr).trim()
            )));
        }
        Err(e) => return Err(failed(e.to_string())),
    }
    if let Some((path, lines)) = parser.finish() {
        each(&path, &lines);
    }
    Ok(())
}

pub fn blast_radius(
    brief: &Brief,
    workflow: &Workflow,
    changes: &[Change],
    numstat: &[LineCount],
) -> StopResult {
    let files = changes.len() as u64;
    let lines: u64 = numstat
        .iter()
        .filter_map(|c| c.lines.map(|(a, d)| a + d))
        .sum();
    let mut findings = Vec::new();
    let mut limit = |what: &str, value: u64, max: Option<u64>, source: &str| {
        if let Some(max) = max
            && value > max
        {
            findings.push(format!(
                "{value} {what} changed; {source} allows at most {max}"
            ));
        }
    };
    limit("files", files, brief.max_files, "the brief");
    limit("lines", lines, brief.max_lines, "the brief");
    limit(
        "files",
        files,
        Some(workflow.policy.max_files),
        "the workflow",
    );
    limit(
        "lines",
        lines,
        Some(workflow.policy.max_lines),
        "the workflow",
    );
    StopResult::new(
        "blast-radius",
        findings,
        vec![format!(
            "{files} file{}, {lines} line{} changed",
            if files == 1 { "" } else { "s" },
            if lines == 1 { "" } else { "s" }
        )],
    )
}

/// Binary files are noted; symlinks leaving the repository and nested
/// repositories (gitlinks) fail.
fn file_kinds(
    git: &Git,
    tree: &str,
    changes: &[Change],
    numstat: &[LineCount],
) -> Result<StopResult> {
    let mut findings = Vec::new();
    let mut notes = Vec::new();
    // Links are resolved through each other: `d -> .` and `out -> d/d/../..`
    // look harmless one at a time.
    let links = if changes.iter().any(|c| c.status != 'D' && c.is_symlink()) {
        tree_symlinks(git, tree)?
    } else {
        std::collections::HashMap::new()
    };
    for change in changes.iter().filter(|c| c.status != 'D') {
        if change.is_gitlink() {
            findings.push(format!(
                "{} is a nested git repository (gitlink); airlock promotes files, not repositories",
                change.path
            ));
        } else if change.is_symlink() {
            let target = git.run(&["cat-file", "blob", &change.new_id])?;
            let target = String::from_utf8_lossy(&target).into_owned();
            if escapes(&change.path, &target) || escapes_through(&change.path, &links) {
                findings.push(format!(
                    "{} is a symlink to `{target}`, outside the repository",
                    change.path
                ));
            } else {
                notes.push(format!("{} is a symlink to `{target}`", change.path));
            }
        }
    }
    for count in numstat.iter().filter(|n| n.lines.is_none()) {
        if changes
            .iter()
            .any(|c| c.path == count.path && c.status != 'D' && !c.is_gitlink())
        {
            notes.push(format!(
                "{} is a binary file; its content is not shown in the diff",
                count.path
            ));
        }
    }
    Ok(StopResult::new("file-kinds", findings, notes))
}

/// Whether a symlink at `link` pointing to `target` resolves outside the root.
pub fn escapes(link: &str, target: &str) -> bool {
    if target.starts_with('/') {
        return true;
    }
    let mut depth: i64 = Path::new(link).components().count() as i64 - 1;
    for component in Path::new(target).components() {
        match component {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            _ => return true,
        }
        if depth < 0 {
            return true;
        }
    }
    false
}

/// Every symbolic link in `tree`, path → target.
fn tree_symlinks(git: &Git, tree: &str) -> Result<std::collections::HashMap<String, String>> {
    let listing = git.run(&["ls-tree", "-r", "-z", "--full-tree", tree])?;
    let mut ids = Vec::new();
    for entry in listing.split(|b| *b == 0).filter(|e| !e.is_empty()) {
        let entry = String::from_utf8_lossy(entry);
        let Some((meta, path)) = entry.split_once('\t') else {
            continue;
        };
        let mut fields = meta.split(' ');
        if fields.next() == Some("120000") {
            fields.next();
            if let Some(id) = fields.next() {
                ids.push((path.to_string(), id.to_string()));
            }
        }
    }
    let mut links = std::collections::HashMap::new();
    for (path, id) in ids {
        let target = git.run(&["cat-file", "blob", &id])?;
        links.insert(path, String::from_utf8_lossy(&target).into_owned());
    }
    Ok(links)
}

/// Whether the link at `link` resolves outside the repository once the
/// other links of the tree are followed too. Too many hops (a loop) counts
/// as escaping: nothing can vouch for where it ends.
pub fn escapes_through(link: &str, links: &std::collections::HashMap<String, String>) -> bool {
    let Some(target) = links.get(link) else {
        return false;
    };
    let mut current: Vec<String> = link.split('/').map(str::to_string).collect();
    current.pop();
    let mut pending: std::collections::VecDeque<String> =
        target.split('/').map(str::to_string).collect();
    if target.starts_with('/') {
        return true;
    }
    let mut hops = 1;
    while let Some(part) = pending.pop_front() {
        match part.as_str() {
            "" | "." => {}
            ".." => {
                if current.pop().is_none() {
                    return true;
                }
            }
            name => {
                current.push(name.to_string());
                if let Some(next) = links.get(&current.join("/")) {
                    hops += 1;
                    if hops > 40 || next.starts_with('/') {
                        return true;
                    }
                    current.pop();
                    for p in next.split('/').rev() {
                        pending.push_front(p.to_string());
                    }
                }
            }
        }
    }
    false
}

fn verb(status: char) -> &'static str {
    match status {
        'A' => "added",
        'D' => "deleted",
        'T' => "type changed",
        _ => "modified",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlink_escape_is_lexical_and_strict() {
        assert!(escapes("a/link", "/etc/passwd"));
        assert!(escapes("link", "../x"));
        assert!(escapes("a/b/link", "../../../x"));
        assert!(!escapes("a/b/link", "../c"));
        assert!(!escapes("a/link", "./b/../c"));
        assert!(escapes("a/link", "b/../../../c"));
    }

    #[test]
    fn symlinks_are_resolved_through_each_other() {
        let links: std::collections::HashMap<String, String> = [
            ("src/d", "."),
            ("src/out", "d/d/d/../../.."),
            ("src/ok", "d/d/x"),
            ("a/loop", "loop2"),
            ("a/loop2", "loop"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        // Each looks harmless alone...
        assert!(!escapes("src/out", "d/d/d/../../.."));
        // ...but `d` is `.`, so the three `..` climb out of the repository.
        assert!(escapes_through("src/out", &links));
        assert!(!escapes_through("src/ok", &links));
        assert!(!escapes_through("src/d", &links));
        assert!(escapes_through("a/loop", &links));
    }

    #[test]
    fn each_file_of_a_patch_is_handed_back_once_the_next_begins_and_the_last_at_the_end() {
        let patch = "diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n@@ -0,0 +1 @@\n+first\ndiff --git a/b.txt b/b.txt\nnew file mode 100644\n--- /dev/null\n+++ b/b.txt\n@@ -0,0 +1,2 @@\n+x\n+++ y\n";
        let mut parser = AddedLines::default();
        let lines: Vec<&str> = patch.split('\n').collect();
        let handed: Vec<(usize, AddedFile)> = lines
            .iter()
            .enumerate()
            .filter_map(|(i, l)| parser.line(l).map(|f| (i, f)))
            .collect();
        assert_eq!(
            handed,
            vec![(5, ("a.txt".to_string(), vec![(1, "first".into())]))]
        );
        assert_eq!(
            parser.finish(),
            Some((
                "b.txt".to_string(),
                vec![(1, "x".into()), (2, "++ y".into())]
            ))
        );
    }

    #[test]
    fn added_lines_follow_hunk_numbers() {
        let patch =
            "diff --git a/x.txt b/x.txt\n--- a/x.txt\n+++ b/x.txt\n@@ -1,0 +3,2 @@\n+one\n+two\n";
        let files = added_lines(patch);
        assert_eq!(
            files,
            vec![(
                "x.txt".to_string(),
                vec![(3, "one".into()), (4, "two".into())]
            )]
        );
    }
}
