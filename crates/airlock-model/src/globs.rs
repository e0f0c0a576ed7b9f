//! Path globs as briefs and workflows write them.
//!
//! `*` stays within one path component, `**` crosses them, and an entry that
//! ends in `/` means everything below that directory.

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

pub fn normalize(pattern: &str) -> String {
    let p = pattern.trim_start_matches("./");
    if let Some(dir) = p.strip_suffix('/') {
        format!("{dir}/**")
    } else {
        p.to_string()
    }
}

pub fn compile(pattern: &str) -> Result<Glob, String> {
    if pattern.trim().is_empty() {
        return Err("an empty glob matches nothing".into());
    }
    if pattern.starts_with('/') {
        return Err("globs are relative to the repository root; drop the leading `/`".into());
    }
    if pattern.split('/').any(|c| c == "..") {
        return Err("`..` cannot appear in a glob: paths never leave the repository".into());
    }
    GlobBuilder::new(&normalize(pattern))
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|e| e.kind().to_string())
}

/// A compiled list of globs that remembers which entry matched.
#[derive(Debug, Clone)]
pub struct Globs {
    patterns: Vec<String>,
    set: GlobSet,
}

impl Globs {
    /// Compiles patterns that were validated already (invalid ones are skipped).
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Globs {
        let mut builder = GlobSetBuilder::new();
        let mut kept = Vec::new();
        for p in patterns {
            if let Ok(glob) = compile(p.as_ref()) {
                builder.add(glob);
                kept.push(p.as_ref().to_string());
            }
        }
        Globs {
            patterns: kept,
            set: builder.build().unwrap_or_else(|_| GlobSet::empty()),
        }
    }

    pub fn is_match(&self, path: &str) -> bool {
        self.set.is_match(path)
    }

    /// The patterns that match `path`.
    pub fn matching(&self, path: &str) -> Vec<&str> {
        self.set
            .matches(path)
            .into_iter()
            .map(|i| self.patterns[i].as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_stays_in_one_directory_and_double_star_crosses() {
        let g = Globs::new(&["src/*.rs", "docs/"]);
        assert!(g.is_match("src/lib.rs"));
        assert!(!g.is_match("src/a/lib.rs"));
        assert!(g.is_match("docs/a/b.md"));
        assert!(!g.is_match("docsx/a.md"));
    }

    #[test]
    fn refuses_escaping_and_absolute_globs() {
        assert!(compile("../x").is_err());
        assert!(compile("/etc/passwd").is_err());
        assert!(compile("a/[").is_err());
    }
}
