//! Shell command analysis over brush-parser's syntax tree.
//!
//! Every simple command anywhere in the tree is judged: in pipelines and
//! lists, subshells, command and process substitutions, here-documents,
//! function bodies, loops, and inside wrappers that run another command
//! (`sh -c`, `env`, `sudo`, `xargs`, `find -exec`, ...). Words are evaluated
//! as the shell would before the command runs: quotes and escapes removed,
//! substitutions analysed and marked as computed. What cannot be known
//! before run time is "not understood", never guessed.

use std::path::{Path, PathBuf};

use brush_parser::ast;
use brush_parser::word::{self, TildeExpr, WordPiece, WordPieceWithSource};
use brush_parser::{Parser, ParserOptions};

use crate::policy::{Decision, Denial, EGRESS, PROPOSE, Policy, REVIEWER_ONLY, Rule, normalize};

/// Nested shells (`sh -c "sh -c ..."`) deeper than this are not followed.
const MAX_DEPTH: usize = 8;
/// A command longer than this is not analysed.
pub const MAX_COMMAND_BYTES: usize = 64 * 1024;

pub(crate) fn analyze(policy: &Policy, command: &str, cwd: &Path) -> Decision {
    // A panicking hook exits 101, which Claude Code reads as "go ahead": a
    // parser bug must come out as "not understood" instead.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        analyze_unguarded(policy, command, cwd)
    }))
    .unwrap_or_else(|_| Decision::Ask {
        reason: "the shell parser failed on this command".into(),
    })
}

fn analyze_unguarded(policy: &Policy, command: &str, cwd: &Path) -> Decision {
    let mut analyzer = Analyzer {
        policy,
        cwd: Cwd::At(normalize(cwd)),
        stdin: Stdin::None,
        depth: 0,
        git_dir: None,
        written: Vec::new(),
        denials: Vec::new(),
        unknowns: Vec::new(),
    };
    analyzer.script(command);
    if let Some(denial) = analyzer.denials.into_iter().next() {
        Decision::Deny(denial)
    } else if let Some(reason) = analyzer.unknowns.into_iter().next() {
        Decision::Ask { reason }
    } else {
        Decision::Allow
    }
}

/// One evaluated word.
#[derive(Debug, Clone, Default)]
struct Arg {
    /// The literal text, with the computed parts left out.
    text: String,
    /// Some part is only known at run time (`$X`, `$(cmd)`, ...).
    computed: bool,
    /// Unquoted glob characters: the shell may replace it with file names.
    glob: bool,
    /// Starts with `~` (a home directory).
    home: bool,
}

impl Arg {
    fn computed(text: &str) -> Arg {
        Arg {
            text: text.to_string(),
            computed: true,
            ..Arg::default()
        }
    }

    fn literal(text: &str) -> Arg {
        Arg {
            text: text.to_string(),
            ..Arg::default()
        }
    }

    /// Known exactly, as a word (not a pattern).
    fn exact(&self) -> Option<&str> {
        (!self.computed && !self.glob).then_some(self.text.as_str())
    }
}

#[derive(Debug, Clone)]
enum Cwd {
    At(PathBuf),
    /// The home directory: outside every worktree.
    Home,
    Unknown,
}

/// Where a command's standard input comes from, for shells that read it.
#[derive(Debug, Clone)]
enum Stdin {
    /// Nothing in particular (the agent's tool gives none).
    None,
    /// Text known now (a literal here-document or here-string).
    Text(String),
    /// A pipe, a file or computed text.
    Opaque(&'static str),
}

enum Location {
    Inside,
    Outside(PathBuf),
    Unknown(String),
}

struct Analyzer<'a> {
    policy: &'a Policy,
    cwd: Cwd,
    stdin: Stdin,
    depth: usize,
    /// The repository `GIT_DIR`/`GIT_WORK_TREE` point git at, if set.
    git_dir: Option<Arg>,
    /// Files this command writes (inside the worktree), so that running one
    /// of them later in the same command is seen as running what was written.
    written: Vec<PathBuf>,
    denials: Vec<Denial>,
    unknowns: Vec<String>,
}

fn options() -> ParserOptions {
    ParserOptions::default()
}

impl Analyzer<'_> {
    fn deny(&mut self, rule: Rule, reason: String, instead: &str) {
        self.denials.push(Denial {
            rule,
            reason,
            instead: instead.to_string(),
        });
    }

    fn unknown(&mut self, reason: String) {
        self.unknowns.push(reason);
    }

    /// Parses and walks a whole script (the command, or a string a nested
    /// shell runs).
    fn script(&mut self, text: &str) {
        if text.len() > MAX_COMMAND_BYTES {
            self.unknown(format!(
                "the command is {} bytes long, more than the {MAX_COMMAND_BYTES} airlock reads",
                text.len()
            ));
            return;
        }
        if self.depth > MAX_DEPTH {
            self.unknown(format!("shells are nested more than {MAX_DEPTH} deep"));
            return;
        }
        let mut parser = Parser::new(std::io::Cursor::new(text.as_bytes()), &options());
        match parser.parse_program() {
            Ok(program) => {
                for list in &program.complete_commands {
                    self.compound_list(list);
                }
            }
            Err(e) => self.unknown(format!("the command does not parse as shell ({e})")),
        }
    }

    /// A script run by another process (`sh -c`, `$(...)`, `eval`): its
    /// `cd` does not change ours.
    fn nested(&mut self, text: &str) {
        let saved = self.cwd.clone();
        self.depth += 1;
        self.script(text);
        self.depth -= 1;
        self.cwd = saved;
    }

    fn compound_list(&mut self, list: &ast::CompoundList) {
        for item in &list.0 {
            self.and_or(&item.0);
        }
    }

    fn and_or(&mut self, list: &ast::AndOrList) {
        self.pipeline(&list.first);
        for next in &list.additional {
            match next {
                ast::AndOr::And(p) | ast::AndOr::Or(p) => self.pipeline(p),
            }
        }
    }

    fn pipeline(&mut self, pipeline: &ast::Pipeline) {
        if pipeline.seq.len() == 1 {
            self.command(&pipeline.seq[0]);
            return;
        }
        // Each part of a pipeline runs in its own subshell.
        let saved_stdin = self.stdin.clone();
        for (i, command) in pipeline.seq.iter().enumerate() {
            let saved_cwd = self.cwd.clone();
            if i > 0 {
                self.stdin = Stdin::Opaque("a pipe");
            }
            self.command(command);
            self.cwd = saved_cwd;
        }
        self.stdin = saved_stdin;
    }

    fn command(&mut self, command: &ast::Command) {
        match command {
            ast::Command::Simple(simple) => self.simple(simple),
            ast::Command::Compound(compound, redirects) => {
                let saved = self.stdin.clone();
                if let Some(redirects) = redirects {
                    for r in &redirects.0 {
                        self.redirect(r);
                    }
                }
                self.compound(compound);
                self.stdin = saved;
            }
            ast::Command::Function(function) => {
                self.word(&function.fname.value);
                // The body is judged as if it ran: it may, any time later.
                let saved = self.cwd.clone();
                self.compound(&function.body.0);
                if let Some(redirects) = &function.body.1 {
                    for r in &redirects.0 {
                        self.redirect(r);
                    }
                }
                self.cwd = saved;
            }
            ast::Command::ExtendedTest(test, redirects) => {
                if let Some(redirects) = redirects {
                    for r in &redirects.0 {
                        self.redirect(r);
                    }
                }
                self.extended_test(&test.expr);
            }
        }
    }

    fn compound(&mut self, compound: &ast::CompoundCommand) {
        use ast::CompoundCommand as C;
        match compound {
            C::Arithmetic(a) => self.arithmetic(&a.expr.value),
            C::ArithmeticForClause(a) => {
                for e in [&a.initializer, &a.condition, &a.updater]
                    .into_iter()
                    .flatten()
                {
                    self.arithmetic(&e.value);
                }
                self.compound_list(&a.body.list);
            }
            C::BraceGroup(b) => self.compound_list(&b.list),
            C::Subshell(s) => {
                let saved = self.cwd.clone();
                self.compound_list(&s.list);
                self.cwd = saved;
            }
            C::ForClause(f) => {
                if let Some(values) = &f.values {
                    for w in values {
                        self.word(&w.value);
                    }
                }
                self.compound_list(&f.body.list);
            }
            C::CaseClause(c) => {
                self.word(&c.value.value);
                for item in &c.cases {
                    for p in &item.patterns {
                        self.word(&p.value);
                    }
                    if let Some(cmd) = &item.cmd {
                        self.compound_list(cmd);
                    }
                }
            }
            C::IfClause(i) => {
                self.compound_list(&i.condition);
                self.compound_list(&i.then);
                for e in i.elses.iter().flatten() {
                    if let Some(c) = &e.condition {
                        self.compound_list(c);
                    }
                    self.compound_list(&e.body);
                }
            }
            C::WhileClause(w) | C::UntilClause(w) => {
                self.compound_list(&w.0);
                self.compound_list(&w.1.list);
            }
            C::Coprocess(c) => self.command(&c.body),
        }
    }

    fn extended_test(&mut self, expr: &ast::ExtendedTestExpr) {
        use ast::ExtendedTestExpr as E;
        match expr {
            E::And(a, b) | E::Or(a, b) => {
                self.extended_test(a);
                self.extended_test(b);
            }
            E::Not(a) | E::Parenthesized(a) => self.extended_test(a),
            E::UnaryTest(_, w) => {
                self.word(&w.value);
            }
            E::BinaryTest(_, a, b) => {
                self.word(&a.value);
                self.word(&b.value);
            }
        }
    }

    fn arithmetic(&mut self, text: &str) {
        if text.contains("$(") || text.contains('`') {
            self.unknown("a command substitution inside arithmetic".into());
        }
    }

    fn simple(&mut self, simple: &ast::SimpleCommand) {
        let saved_stdin = self.stdin.clone();
        let mut argv: Vec<Arg> = Vec::new();
        let mut assignments: Vec<(String, Arg)> = Vec::new();
        let items = simple
            .prefix
            .iter()
            .flat_map(|p| p.0.iter())
            .map(Some)
            .chain(std::iter::once(None))
            .chain(simple.suffix.iter().flat_map(|s| s.0.iter()).map(Some));
        for item in items {
            match item {
                None => {
                    if let Some(name) = &simple.word_or_name {
                        argv.push(self.word(&name.value));
                    }
                }
                Some(ast::CommandPrefixOrSuffixItem::Word(w)) => argv.push(self.word(&w.value)),
                Some(ast::CommandPrefixOrSuffixItem::IoRedirect(r)) => self.redirect(r),
                // After the name, `x=y` is an argument (`alias g=...`, `dd of=...`).
                Some(ast::CommandPrefixOrSuffixItem::AssignmentWord(_, w)) if !argv.is_empty() => {
                    argv.push(self.word(&w.value));
                }
                Some(ast::CommandPrefixOrSuffixItem::AssignmentWord(a, _)) => {
                    assignments.push(self.assignment(a));
                }
                Some(ast::CommandPrefixOrSuffixItem::ProcessSubstitution(kind, sub)) => {
                    self.process_substitution(kind, sub);
                    argv.push(Arg::computed("/dev/fd/N"));
                }
            }
        }
        // Before a command they last for it; alone they last for the shell.
        let saved_git_dir = self.git_dir.clone();
        for (name, value) in &assignments {
            self.poisoned_variable(name, value);
            self.note_git_variable(name, value);
        }
        if !argv.is_empty() {
            if argv[0].exact() == Some("export") {
                for a in &argv[1..] {
                    if let Some((name, value)) = a.text.split_once('=') {
                        let value = Arg {
                            text: value.to_string(),
                            ..a.clone()
                        };
                        self.poisoned_variable(name, &value);
                        self.note_git_variable(name, &value);
                    }
                }
            } else {
                self.run(&argv);
                self.git_dir = saved_git_dir;
            }
        }
        self.stdin = saved_stdin;
    }

    /// `<(cmd)` and `>(cmd)`: a subshell; `>(cmd)` reads what is written to it.
    fn process_substitution(
        &mut self,
        kind: &ast::ProcessSubstitutionKind,
        sub: &ast::SubshellCommand,
    ) {
        let saved_cwd = self.cwd.clone();
        let saved_stdin = self.stdin.clone();
        self.stdin = match kind {
            ast::ProcessSubstitutionKind::Write => Stdin::Opaque("a process substitution"),
            ast::ProcessSubstitutionKind::Read => Stdin::None,
        };
        self.compound_list(&sub.list);
        self.cwd = saved_cwd;
        self.stdin = saved_stdin;
    }

    /// Returns the variable's name; the value's substitutions are analysed.
    fn assignment(&mut self, assignment: &ast::Assignment) -> (String, Arg) {
        let mut value = Arg::computed("(array)");
        match &assignment.value {
            ast::AssignmentValue::Scalar(w) => {
                value = self.word(&w.value);
            }
            ast::AssignmentValue::Array(items) => {
                for (key, value) in items {
                    if let Some(key) = key {
                        self.word(&key.value);
                    }
                    self.word(&value.value);
                }
            }
        }
        let name = match &assignment.name {
            ast::AssignmentName::VariableName(n) => n.clone(),
            // `a[$(cmd)]=1`: the shell expands the subscript, running cmd.
            ast::AssignmentName::ArrayElementName(n, subscript) => {
                self.word(subscript);
                n.clone()
            }
        };
        (name, value)
    }

    /// `GIT_DIR` and `GIT_WORK_TREE` move the repository git writes.
    fn note_git_variable(&mut self, name: &str, value: &Arg) {
        if name == "GIT_DIR" || name == "GIT_WORK_TREE" {
            self.git_dir = Some(value.clone());
        }
    }

    /// Variables that change which program a name runs, or run code.
    fn poisoned_variable(&mut self, name: &str, value: &Arg) {
        const POISON: &[&str] = &[
            "PATH",
            "LD_PRELOAD",
            "LD_LIBRARY_PATH",
            "BASH_ENV",
            "ENV",
            "PROMPT_COMMAND",
            "SHELLOPTS",
            "BASHOPTS",
            "GIT_EXEC_PATH",
            "GIT_CONFIG_PARAMETERS",
            "CDPATH",
            "BASH_ALIASES",
            "BASH_CMDS",
            "PS0",
            "PS1",
            "PS2",
            "PS4",
            "BASH_LOADABLES_PATH",
        ];
        // Programs git, ssh, man and pagers run on their own: a command
        // the hook never sees.
        const RUNS_A_PROGRAM: &[&str] = &[
            "GIT_SSH",
            "GIT_SSH_COMMAND",
            "GIT_PROXY_COMMAND",
            "GIT_EXTERNAL_DIFF",
            "GIT_PAGER",
            "GIT_EDITOR",
            "GIT_SEQUENCE_EDITOR",
            "GIT_ASKPASS",
            "SSH_ASKPASS",
            "GIT_CONFIG",
            "GIT_CONFIG_GLOBAL",
            "GIT_CONFIG_SYSTEM",
            "GIT_CONFIG_COUNT",
            "GIT_TEMPLATE_DIR",
            "PAGER",
            "MANPAGER",
            "EDITOR",
            "VISUAL",
            "LESSOPEN",
            "LESSCLOSE",
            "BROWSER",
            "NODE_OPTIONS",
            "PERL5OPT",
            "RUBYOPT",
        ];
        if POISON.contains(&name) {
            self.unknown(format!(
                "setting {name} changes which program a command name runs"
            ));
        } else if (RUNS_A_PROGRAM.contains(&name)
            || name.starts_with("GIT_CONFIG_KEY_")
            || name.starts_with("GIT_CONFIG_VALUE_"))
            && !value.exact().is_some_and(|v| {
                // What people set them to: programs that only show text.
                matches!(
                    v,
                    "" | "cat"
                        | "less"
                        | "less -R"
                        | "less -FRX"
                        | "more"
                        | "true"
                        | ":"
                        | "vi"
                        | "vim"
                        | "nano"
                        | "/bin/cat"
                        | "/usr/bin/cat"
                        | "/usr/bin/less"
                )
            })
        {
            self.unknown(format!(
                "setting {name} gives a program a command to run, which the hook does not see"
            ));
        }
    }

    fn redirect(&mut self, redirect: &ast::IoRedirect) {
        use ast::IoFileRedirectKind as K;
        use ast::IoFileRedirectTarget as T;
        match redirect {
            ast::IoRedirect::File(_, kind, target) => match (kind, target) {
                (_, T::ProcessSubstitution(sub_kind, sub)) => {
                    self.process_substitution(sub_kind, sub);
                    if matches!(kind, K::Read | K::ReadAndWrite) {
                        self.stdin = Stdin::Opaque("a process substitution");
                    }
                }
                (_, T::Fd(_)) => {}
                (K::Read, T::Filename(w)) => {
                    let arg = self.word(&w.value);
                    self.network_device(&arg);
                    self.stdin = Stdin::Opaque("a file");
                }
                (K::DuplicateInput, T::Filename(w) | T::Duplicate(w)) => {
                    self.word(&w.value);
                }
                (K::DuplicateOutput, T::Filename(w) | T::Duplicate(w)) => {
                    let arg = self.word(&w.value);
                    let fd_like = arg.exact().is_some_and(|t| {
                        t == "-" || t.trim_end_matches('-').chars().all(|c| c.is_ascii_digit())
                    });
                    if !fd_like {
                        self.write_target(&arg, "a redirection writes");
                    }
                }
                (K::Read, T::Duplicate(w)) => {
                    self.word(&w.value);
                }
                (
                    K::Write | K::Append | K::Clobber | K::ReadAndWrite,
                    T::Filename(w) | T::Duplicate(w),
                ) => {
                    let arg = self.word(&w.value);
                    if !self.network_device(&arg) {
                        self.write_target(&arg, "a redirection writes");
                    }
                }
            },
            ast::IoRedirect::HereDocument(_, doc) => {
                if doc.requires_expansion {
                    match word::parse_heredoc(&doc.doc.value, &options()) {
                        Ok(pieces) => {
                            let mut arg = Arg::default();
                            self.pieces(&pieces, &doc.doc.value, &mut arg);
                            self.stdin = if arg.computed {
                                Stdin::Opaque("a here-document with substitutions")
                            } else {
                                Stdin::Text(arg.text)
                            };
                        }
                        Err(_) => {
                            self.unknown("a here-document that cannot be read".into());
                            self.stdin = Stdin::Opaque("a here-document");
                        }
                    }
                } else {
                    self.stdin = Stdin::Text(doc.doc.value.clone());
                }
            }
            ast::IoRedirect::HereString(_, w) => {
                let arg = self.word(&w.value);
                self.stdin = if arg.computed {
                    Stdin::Opaque("a computed here-string")
                } else {
                    Stdin::Text(arg.text)
                };
            }
            ast::IoRedirect::OutputAndError(w, _) => {
                let arg = self.word(&w.value);
                self.write_target(&arg, "a redirection writes");
            }
        }
    }

    /// bash opens a connection for a redirection of `/dev/tcp/HOST/PORT`
    /// or `/dev/udp/HOST/PORT`, in either direction. True if it was one.
    fn network_device(&mut self, arg: &Arg) -> bool {
        let path = normalize(Path::new(&arg.text));
        if path.starts_with("/dev/tcp") || path.starts_with("/dev/udp") {
            self.deny(
                Rule::Network,
                format!("a redirection of `{}` opens a network connection", arg.text),
                EGRESS,
            );
            return true;
        }
        false
    }

    /// Evaluates a word as the shell would before running the command.
    fn word(&mut self, raw: &str) -> Arg {
        let mut arg = Arg::default();
        match word::parse(raw, &options()) {
            Ok(pieces) => self.pieces(&pieces, raw, &mut arg),
            Err(_) => {
                self.unknown(format!("the word `{raw}` cannot be read"));
                arg.computed = true;
            }
        }
        if brace_expansion(raw) {
            arg.computed = true;
        }
        // `${x@P}` expands x as a prompt, running the substitutions in it.
        if raw.contains("@P}") {
            self.unknown(format!(
                "`{raw}` expands a variable as a prompt, which runs the commands in it"
            ));
        }
        arg
    }

    fn pieces(&mut self, pieces: &[WordPieceWithSource], raw: &str, arg: &mut Arg) {
        for piece in pieces {
            match &piece.piece {
                WordPiece::Text(t) => {
                    if t.contains(['*', '?', '[']) {
                        arg.glob = true;
                    }
                    arg.text.push_str(t);
                }
                WordPiece::SingleQuotedText(t) => arg.text.push_str(t),
                WordPiece::AnsiCQuotedText(t) => {
                    // `$'\x67it'`: escapes are decoded at run time.
                    if t.contains('\\') {
                        arg.computed = true;
                    }
                    arg.text.push_str(t);
                }
                WordPiece::DoubleQuotedSequence(inner)
                | WordPiece::GettextDoubleQuotedSequence(inner) => {
                    let glob = arg.glob;
                    self.pieces(inner, raw, arg);
                    // Globs do not expand inside double quotes.
                    arg.glob = glob;
                }
                WordPiece::TildeExpansion(tilde) => match tilde {
                    TildeExpr::Home | TildeExpr::UserHome(_) => {
                        arg.home = true;
                        arg.text.push('~');
                    }
                    _ => arg.computed = true,
                },
                WordPiece::ParameterExpansion(_) => {
                    arg.computed = true;
                    let source = raw.get(piece.start_index..piece.end_index).unwrap_or(raw);
                    if source.contains("$(") || source.contains('`') {
                        self.unknown(format!(
                            "a command substitution inside the parameter expansion `{source}`"
                        ));
                    }
                }
                WordPiece::CommandSubstitution(script)
                | WordPiece::BackquotedCommandSubstitution(script) => {
                    arg.computed = true;
                    let saved = self.stdin.clone();
                    self.stdin = Stdin::None;
                    self.nested(script);
                    self.stdin = saved;
                }
                WordPiece::EscapeSequence(s) => {
                    let mut chars = s.chars();
                    if chars.next() == Some('\\') {
                        let rest: String = chars.collect();
                        if rest != "\n" {
                            arg.text.push_str(&rest);
                        }
                    } else {
                        arg.text.push_str(s);
                    }
                }
                WordPiece::ArithmeticExpression(e) => {
                    arg.computed = true;
                    self.arithmetic(&e.value);
                }
            }
        }
    }

    /// Where a path argument points.
    fn locate(&self, arg: &Arg) -> Location {
        if arg.computed {
            return Location::Unknown(format!("`{}` is computed at run time", arg.text));
        }
        if arg.home {
            return Location::Outside(PathBuf::from(&arg.text));
        }
        if arg.glob
            && Path::new(&arg.text).components().any(|c| {
                let c = c.as_os_str().to_string_lossy();
                c.starts_with('.') && c.contains(['*', '?', '['])
            })
        {
            return Location::Unknown(format!("the pattern `{}` can match `..`", arg.text));
        }
        let path = Path::new(&arg.text);
        let full = if path.is_absolute() {
            normalize(path)
        } else {
            match &self.cwd {
                Cwd::At(dir) => normalize(&dir.join(path)),
                Cwd::Home => return Location::Outside(Path::new("~").join(path)),
                Cwd::Unknown => {
                    return Location::Unknown(format!(
                        "`{}` is relative to a directory only known at run time",
                        arg.text
                    ));
                }
            }
        };
        if self.policy.inside(&full) {
            Location::Inside
        } else {
            Location::Outside(full)
        }
    }

    /// A command string a builtin runs (`mapfile -C`, `compgen -C`).
    fn callback(&mut self, base: &str, callback: &Arg) {
        match callback.exact() {
            Some(text) => self.nested(text),
            None => self.unknown(format!("`{base} -C` runs a computed command")),
        }
    }

    /// A file this command wrote that `program` reads and may run commands
    /// from (a Makefile, `package.json`'s scripts, cargo's `build.rs` and
    /// `.cargo/config.toml`, a repository's hooks and attributes).
    fn reads_written_configuration(&self, program: &str) -> Option<String> {
        let names: &[&str] = match program {
            "make" | "gmake" => &["Makefile", "makefile", "GNUmakefile"],
            "npm" | "pnpm" | "yarn" | "bun" | "npx" => {
                &["package.json", ".npmrc", ".yarnrc", ".yarnrc.yml"]
            }
            "cargo" => &[
                "build.rs",
                "config.toml",
                "config",
                "Cargo.toml",
                "rust-toolchain",
                "rust-toolchain.toml",
            ],
            "git" => &[".gitattributes", ".gitmodules", "config"],
            "pip" | "pip3" | "uv" | "poetry" => &["setup.py", "pyproject.toml", "setup.cfg"],
            "pytest" | "tox" | "nox" => &["conftest.py", "tox.ini", "noxfile.py", "pytest.ini"],
            _ => return None,
        };
        self.written
            .iter()
            .find(|path| {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                names.contains(&name.as_str())
                    || (program == "git" && path.components().any(|c| c.as_os_str() == ".git"))
                    || (program == "make" && name.ends_with(".mk"))
            })
            .map(|p| p.to_string_lossy().into_owned())
    }

    /// `arg` as an absolute, normalized path, when it can be placed.
    fn absolute(&self, arg: &Arg) -> Option<PathBuf> {
        let text = arg.exact()?;
        let path = Path::new(text);
        if path.is_absolute() {
            return Some(normalize(path));
        }
        match &self.cwd {
            Cwd::At(dir) => Some(normalize(&dir.join(path))),
            _ => None,
        }
    }

    /// A write of `arg`: allowed in the worktree and in the scratch
    /// directories (see [`is_scratch`]), denied elsewhere.
    fn write_target(&mut self, arg: &Arg, what: &str) {
        self.write_target_in(arg, what, true);
    }

    /// [`Self::write_target`]; `scratch_ok` false denies the scratch
    /// directories too.
    fn write_target_in(&mut self, arg: &Arg, what: &str, scratch_ok: bool) {
        if let Some(text) = arg.exact()
            && is_harmless_device(text)
        {
            return;
        }
        match self.locate(arg) {
            Location::Inside => {
                let path = self.absolute(arg);
                let shown = path.clone().unwrap_or_else(|| PathBuf::from(&arg.text));
                if let Some(denial) = self.policy.read_only_denial(&shown, what) {
                    self.denials.push(denial);
                }
                if let Some(path) = path {
                    self.written.push(path);
                }
            }
            Location::Outside(path) if scratch_ok && is_scratch(&path) => self.written.push(path),
            Location::Outside(path) => {
                let denial = self.policy.outside_denial(&path, what);
                self.denials.push(denial);
            }
            Location::Unknown(why) => {
                self.unknown(format!("{what} a path airlock cannot place: {why}"))
            }
        }
    }

    /// Runs one command line (after expansion): the command name decides.
    fn run(&mut self, argv: &[Arg]) {
        let Some(first) = argv.first() else { return };
        let Some(name) = first.exact() else {
            self.unknown(format!(
                "the command name `{}` is computed at run time",
                first.text
            ));
            return;
        };
        // A function of the same name is not trusted to shadow the
        // program: its definition may sit in a branch that never runs.
        let base = name.rsplit('/').next().unwrap_or(name).to_string();
        let args = &argv[1..];
        // A program this command wrote (`echo 'git push' > x; chmod +x x; ./x`).
        if name.contains('/')
            && let Some(path) = self.absolute(first)
            && self.written.contains(&path)
        {
            return self.unknown(format!(
                "`{name}` runs a file written earlier in the same command, which the hook cannot read"
            ));
        }
        // `git-push` (and git's own `libexec/git-core/git-push`) is `git push`.
        if let Some(sub) = base.strip_prefix("git-")
            && !sub.is_empty()
        {
            let mut git_args = vec![Arg::literal(sub)];
            git_args.extend_from_slice(args);
            return self.git(&git_args);
        }
        if let Some(file) = self.reads_written_configuration(&base) {
            return self.unknown(format!(
                "`{base}` reads `{file}`, written earlier in the same command, and runs what it says"
            ));
        }
        match base.as_str() {
            // Builtins that evaluate a name's subscript or an arithmetic
            // expression given as text: `$(cmd)` inside runs cmd.
            "printf" | "test" | "[" | "unset" | "let" | "declare" | "typeset" | "local"
            | "readonly" | "read" | "mapfile" | "readarray" | "export"
                if args.iter().any(|a| {
                    let t = a.text.as_str();
                    let substitution =
                        |t: &str| t.contains("$(") || t.contains('`') || t.contains("${");
                    match base.as_str() {
                        "let" => substitution(t),
                        _ => {
                            t.split_once('[').is_some_and(|(_, sub)| substitution(sub))
                                || (t.starts_with("-n")
                                    && args.iter().any(|b| substitution(&b.text)))
                        }
                    }
                }) =>
            {
                self.unknown(format!(
                    "`{base}` evaluates text containing a substitution (as a subscript or arithmetic), which runs it"
                ));
                if matches!(base.as_str(), "mapfile" | "readarray")
                    && let Some(callback) = option_value(args, &["-C"])
                {
                    self.callback(&base, &callback);
                }
            }
            "mapfile" | "readarray" | "compgen" | "complete"
                if option_value(args, &["-C"]).is_some() =>
            {
                if let Some(callback) = option_value(args, &["-C"]) {
                    self.callback(&base, &callback);
                }
            }
            "fc" => self
                .unknown("`fc` runs commands from the history, which the hook cannot see".into()),
            "eval" => {
                let text = joined(args);
                self.unknown("`eval` runs a string as a command".into());
                if let Some(text) = text {
                    self.nested(&text);
                }
            }
            "source" | "." => self.unknown(format!(
                "`{base}` runs the commands of a file, which the hook cannot read"
            )),
            "alias" if args.iter().any(|a| a.text.contains('=')) => {
                self.unknown("an alias is defined in the same command".into());
            }
            "shopt" if args.iter().any(|a| a.text.contains("expand_aliases")) => {
                self.unknown("`shopt expand_aliases` turns aliases on".into());
            }
            "exec" => {
                let rest = skip_options(args, &["-a"]);
                if !rest.is_empty() {
                    self.run(rest);
                }
            }
            "command" => {
                if args.iter().any(|a| a.text == "-v" || a.text == "-V") {
                    return;
                }
                let rest = skip_options(args, &[]);
                if !rest.is_empty() {
                    self.run(rest);
                }
            }
            "builtin" if !args.is_empty() => {
                self.run(args);
            }
            "nohup" | "setsid" | "unbuffer" | "nocache" | "chronic" => {
                self.run_after_options(args, &[], false)
            }
            "time" => {
                if let Some(out) = option_value(args, &["-o", "--output"]) {
                    self.write_target(&out, "`time -o` writes");
                }
                self.run_after_options(args, &["-f", "--format", "-o", "--output"], false);
            }
            "nice" => self.run_after_options(args, &["-n", "--adjustment"], false),
            "chrt" => self.run_after_options(args, &[], true),
            "hash" if args.iter().any(|a| a.text.starts_with("-p")) => {
                self.unknown("`hash -p` makes a command name run another program".into())
            }
            "enable" if args.iter().any(|a| a.text.starts_with("-f")) => {
                self.unknown("`enable -f` loads a builtin from a shared object".into())
            }
            "script" => match option_value(args, &["-c", "--command"]) {
                Some(cmd) => match cmd.exact() {
                    Some(text) => self.nested(text),
                    None => self.unknown("`script -c` runs a computed string".into()),
                },
                None => self.unknown("`script` starts an interactive shell".into()),
            },
            "ionice" => self.run_after_options(
                args,
                &["-c", "-n", "-p", "-P", "-u", "--class", "--classdata"],
                false,
            ),
            "stdbuf" => self.run_after_options(
                args,
                &["-i", "-o", "-e", "--input", "--output", "--error"],
                false,
            ),
            "taskset" => self.run_after_options(args, &[], true),
            "timeout" => {
                self.run_after_options(args, &["-s", "-k", "--signal", "--kill-after"], true)
            }
            "sudo" | "doas" => self.sudo(&base, args),
            "sudoedit" => self.write_all(args, &[], "`sudoedit` writes"),
            "env" => self.env(args),
            "xargs" => self.xargs(args),
            "find" => self.find(args),
            "sh" | "bash" | "zsh" | "dash" | "ksh" | "mksh" | "ash" | "yash" | "posh" | "rbash" => {
                self.shell(&base, args)
            }
            "busybox" | "toybox" => match args.first().and_then(Arg::exact) {
                Some("sh" | "ash" | "hush") => self.shell("busybox sh", &args[1..]),
                Some(_) => self.run(args),
                None => {}
            },
            "fish" | "csh" | "tcsh" | "nu" | "pwsh" | "xonsh" | "elvish" | "rc" | "es" => self
                .unknown(format!(
                    "`{base}` is a shell whose language the hook does not read"
                )),
            "su" | "runuser" => match option_value(args, &["-c", "--command"]) {
                Some(cmd) => match cmd.exact() {
                    Some(text) => self.nested(text),
                    None => self.unknown(format!("`{base} -c` runs a computed string")),
                },
                None => self.unknown(format!("`{base}` starts a shell as another user")),
            },
            "trap" => {
                if let Some(code) = args.iter().find(|a| !a.text.starts_with('-')) {
                    match code.exact() {
                        Some(text) => self.nested(text),
                        None => self.unknown("`trap` runs a computed string".into()),
                    }
                }
            }
            "watch" => {
                let rest = skip_options(args, &["-n", "--interval", "-d", "-q", "--equexit"]);
                if let Some(text) = joined(rest) {
                    self.nested(&text);
                } else if !rest.is_empty() {
                    self.unknown("`watch` runs a computed command".into());
                }
            }
            "cd" | "pushd" => self.cd(args),
            "popd" => self.cwd = Cwd::Unknown,
            "git" => self.git(args),
            "airlock" => self.airlock(args),
            "cargo" => self.cargo(args),
            "npm" | "pnpm" | "yarn" | "bun" => self.js_package_manager(&base, args),
            "npx" | "pnpx" | "bunx" => self.deny(
                Rule::Network,
                format!("`{base}` downloads and runs a package from the registry"),
                EGRESS,
            ),
            "pip" | "pip3" | "pipx" => self.pip(&base, args),
            "uv" | "poetry" | "pdm" | "hatch" => self.python_project(&base, args),
            "twine" => self.subcommand_rule(&base, args, &["upload", "register"], &[]),
            "gh" => match first_positional(args, &["-R", "--repo"]).map(|a| a.text.as_str()) {
                Some("release") => self.deny(
                    Rule::Publish,
                    "`gh release` publishes a release".into(),
                    PROPOSE,
                ),
                _ => self.deny(
                    Rule::Network,
                    "`gh` talks to GitHub over the network".into(),
                    EGRESS,
                ),
            },
            "docker" | "podman" | "nerdctl" | "buildah" => self.subcommand_rule_with(
                &base,
                args,
                &[
                    "-H",
                    "--host",
                    "--context",
                    "-c",
                    "--config",
                    "-l",
                    "--log-level",
                    "--tlscacert",
                    "--tlscert",
                    "--tlskey",
                    "--url",
                    "--connection",
                ],
                &["push"],
                &[
                    "pull",
                    "login",
                    "search",
                    "run",
                    "create",
                    "build",
                    "buildx",
                    "compose",
                    "exec",
                    "start",
                    "cp",
                    "image",
                    "container",
                    "import",
                    "load",
                    "plugin",
                    "swarm",
                    "service",
                    "stack",
                    "context",
                ],
            ),
            "helm" => self.subcommand_rule_with(
                &base,
                args,
                &[
                    "--kube-context",
                    "--kubeconfig",
                    "-n",
                    "--namespace",
                    "--registry-config",
                    "--repository-config",
                    "--repository-cache",
                    "--burst-limit",
                ],
                &["push"],
                &["pull", "repo", "install", "upgrade"],
            ),
            "gem" => self.subcommand_rule_with(
                &base,
                args,
                &["--config-file"],
                &["push", "yank", "owner"],
                &["install", "update", "fetch", "sources"],
            ),
            "go" => {
                let sub = first_positional(args, &[]).map(|a| a.text.clone());
                let second = positionals(args, &[]).get(1).map(|a| a.text.clone());
                match (sub.as_deref(), second.as_deref()) {
                    (Some("run"), _) if args.iter().any(|a| a.text.contains('@')) => self.deny(
                        Rule::Network,
                        "`go run PACKAGE@VERSION` downloads the module".into(),
                        EGRESS,
                    ),
                    (Some("get" | "install"), _) | (Some("mod"), Some("download")) => self.deny(
                        Rule::Network,
                        "`go get` and `go install` download modules".into(),
                        EGRESS,
                    ),
                    _ => {}
                }
            }
            "mvn" | "mvnw"
                if args
                    .iter()
                    .any(|a| a.text == "deploy" || a.text == "release:perform") =>
            {
                self.deny(
                    Rule::Publish,
                    format!("`{base} deploy` publishes artifacts"),
                    PROPOSE,
                );
            }
            "gradle" | "gradlew" if args.iter().any(|a| a.text.starts_with("publish")) => {
                self.deny(
                    Rule::Publish,
                    format!("`{base} publish` publishes artifacts"),
                    PROPOSE,
                );
            }
            "vercel" | "netlify" | "firebase" | "flyctl" | "fly" | "wrangler" | "heroku"
            | "surge" => self.deny(
                Rule::Publish,
                format!("`{base}` deploys to a hosted service"),
                PROPOSE,
            ),
            "aws" | "gcloud" | "az" | "kubectl" | "terraform" | "tofu" | "pulumi" | "doctl" => self
                .deny(
                    Rule::Network,
                    format!("`{base}` talks to a remote service"),
                    EGRESS,
                ),
            "apt" | "apt-get" | "yum" | "dnf" | "apk" | "brew" | "pacman" | "zypper" | "snap"
                if args.iter().any(|a| {
                    matches!(
                        a.text.as_str(),
                        "install"
                            | "update"
                            | "upgrade"
                            | "add"
                            | "-S"
                            | "-Sy"
                            | "-Syu"
                            | "refresh"
                    )
                }) =>
            {
                self.deny(
                    Rule::Network,
                    format!("`{base}` installs system packages from the network"),
                    EGRESS,
                );
            }
            "curl" | "wget" | "ssh" | "scp" | "sftp" | "nc" | "ncat" | "netcat" | "socat"
            | "telnet" | "ftp" | "lftp" | "tftp" | "aria2c" | "http" | "https" | "xh" | "ping"
            | "ping6" | "dig" | "nslookup" | "host" | "nmap" | "traceroute" | "mosh"
            | "ssh-copy-id" | "websocat" | "grpcurl" | "ssh-keyscan" | "wget2" | "curlie"
            | "httpie" | "lynx" | "w3m" | "links" | "elinks" | "rclone" | "s3cmd" | "gsutil"
            | "glab" | "tea" | "hut" | "uvx" | "whois" | "mtr" | "tracepath" | "arping"
            | "ldapsearch" | "smbclient" | "mail" | "mailx" | "sendmail" | "msmtp" | "swaks"
            | "ssh-agent-relay" => self.deny(
                Rule::Network,
                format!("`{base}` reaches the network"),
                EGRESS,
            ),
            "rsync" => {
                if args.iter().any(|a| is_remote_spec(&a.text)) {
                    self.deny(
                        Rule::Network,
                        "`rsync` copies to or from another host".into(),
                        EGRESS,
                    );
                } else {
                    self.copy_like(&base, args);
                }
            }
            "openssl" => self.subcommand_rule(&base, args, &[], &["s_client", "s_time", "ocsp"]),
            "mktemp" => {
                if let Some(dir) = option_value(args, &["-p", "--tmpdir"]) {
                    self.write_target(&dir, "`mktemp` creates a file in");
                } else if let Some(template) = first_positional(args, &["--suffix"])
                    && template.text.contains('/')
                {
                    self.write_target(template, "`mktemp` creates");
                }
            }
            "ssh-keygen" => {
                if let Some(file) = option_value(args, &["-f"]) {
                    self.write_target(&file, "`ssh-keygen -f` writes");
                }
            }
            "fallocate" => self.write_all(
                args,
                &["-l", "-o", "--length", "--offset"],
                "`fallocate` writes",
            ),
            "chattr" | "setfattr" => {
                let value_options: &[&str] = &[
                    "-n", "-v", "-x", "--name", "--value", "--remove", "-p", "-v",
                ];
                let targets = positionals(args, value_options);
                let skip = usize::from(
                    base == "chattr"
                        && !args
                            .iter()
                            .any(|a| a.text.starts_with('+') || a.text.starts_with('=')),
                );
                for t in targets.iter().skip(skip) {
                    if base == "chattr" && (t.text.starts_with('+') || t.text.starts_with('=')) {
                        continue;
                    }
                    self.write_target(t, &format!("`{base}` changes"));
                }
            }
            "setfacl" => self.write_all(
                args,
                &[
                    "-m",
                    "-x",
                    "-M",
                    "-X",
                    "--modify",
                    "--remove",
                    "--set",
                    "--set-file",
                    "--modify-file",
                    "--remove-file",
                ],
                "`setfacl` changes",
            ),
            "rename" | "prename" | "perl-rename" | "file-rename" => {
                let pos = positionals(args, &[]);
                for t in pos.iter().skip(1) {
                    self.write_target(t, &format!("`{base}` renames"));
                }
            }
            "virtualenv" => {
                if let Some(dir) = first_positional(args, &["-p", "--python", "--prompt"]) {
                    self.write_target(dir, "`virtualenv` writes");
                }
            }
            "rustup" => {
                let sub = first_positional(args, &[]).map(|a| a.text.clone());
                match sub.as_deref() {
                    None | Some("show" | "which" | "help" | "doc" | "completions") => {}
                    Some("run") => {
                        let pos = positionals(args, &[]);
                        if let Some(at) = pos.get(2)
                            && let Some(i) = args.iter().position(|a| std::ptr::eq(a, *at))
                        {
                            self.run(&args[i..]);
                        }
                    }
                    Some(other) => self.deny(
                        Rule::Network,
                        format!(
                            "`rustup {other}` downloads toolchains or changes the user's settings"
                        ),
                        EGRESS,
                    ),
                }
            }
            "bundle" | "bundler" => self.subcommand_rule(
                &base,
                args,
                &[],
                &[
                    "install", "update", "add", "outdated", "lock", "cache", "package",
                ],
            ),
            "composer" => self.subcommand_rule(
                &base,
                args,
                &[],
                &[
                    "install",
                    "require",
                    "update",
                    "create-project",
                    "global",
                    "outdated",
                    "self-update",
                ],
            ),
            "mix" => self.subcommand_rule(
                &base,
                args,
                &["hex.publish"],
                &[
                    "deps.get",
                    "deps.update",
                    "local.hex",
                    "archive.install",
                    "hex.info",
                ],
            ),
            "dotnet" | "nuget" => {
                let pos = positionals(args, &[]);
                let words: Vec<&str> = pos.iter().map(|a| a.text.as_str()).collect();
                if words.contains(&"push") {
                    self.deny(
                        Rule::Publish,
                        format!("`{base} push` publishes a package"),
                        PROPOSE,
                    );
                } else if words
                    .iter()
                    .any(|w| matches!(*w, "restore" | "install" | "add" | "update"))
                {
                    self.deny(
                        Rule::Network,
                        format!("`{base}` downloads packages"),
                        EGRESS,
                    );
                }
            }
            "conda" | "mamba" | "micromamba" | "pixi" => self.subcommand_rule(
                &base,
                args,
                &["upload", "publish"],
                &[
                    "install", "create", "update", "upgrade", "add", "search", "env",
                ],
            ),
            "parallel" => {
                // `parallel CMD ::: INPUTS`: a shell runs CMD with each input
                // in place of `{}`, or after it.
                let command: Vec<Arg> = args
                    .iter()
                    .skip_while(|a| a.text.starts_with('-'))
                    .take_while(|a| !a.text.starts_with(":::"))
                    .cloned()
                    .collect();
                let inputs: Vec<Arg> = args
                    .iter()
                    .skip_while(|a| !a.text.starts_with(":::"))
                    .filter(|a| !a.text.starts_with(":::"))
                    .cloned()
                    .collect();
                match (joined(&command), inputs.iter().any(|a| a.computed)) {
                    (Some(text), false) if !inputs.is_empty() => {
                        for input in &inputs {
                            let line = if text.contains("{}") {
                                text.replace("{}", &input.text)
                            } else {
                                format!("{text} {}", input.text)
                            };
                            self.nested(&line);
                        }
                    }
                    (Some(text), false) => self.nested(&text),
                    _ => self.unknown("`parallel` runs a command computed at run time".into()),
                }
            }
            _ if is_interpreter(&base) => self.interpreter(&base, args),
            "awk" | "gawk" | "mawk" | "nawk" | "busybox-awk" => self.awk(&base, args),
            "vi" | "vim" | "nvim" | "view" | "ex" | "vimdiff" | "emacs" | "emacsclient" | "ed"
                if !args.is_empty() =>
            {
                let scripted = args.iter().any(|a| {
                    let t = a.text.as_str();
                    t.starts_with('+')
                        || matches!(
                            t,
                            "-c" | "-S"
                                | "-s"
                                | "--cmd"
                                | "--eval"
                                | "-l"
                                | "--load"
                                | "--script"
                                | "-batch"
                                | "--batch"
                                | "-x"
                                | "-f"
                                | "-e"
                                | "-E"
                        )
                        || t.starts_with("--eval=")
                        || t.starts_with("--load=")
                });
                if scripted {
                    self.unknown(format!(
                        "`{base}` runs editor commands, which can run programs and write anywhere"
                    ));
                }
            }
            "man"
                if args.iter().any(|a| {
                    a.text.starts_with("-P")
                        || a.text.starts_with("--pager")
                        || a.text.starts_with("-H")
                        || a.text.starts_with("--html")
                }) =>
            {
                self.unknown("`man -P` runs the pager it is given".into())
            }
            "make" | "gmake" | "ninja" | "samu" => {
                if let Some(dir) = option_value(args, &["-C", "--directory"]) {
                    self.write_target_in(&dir, &format!("`{base} -C` builds in"), false);
                }
                if let Some(file) = option_value(args, &["-f", "--file", "--makefile"])
                    && matches!(file.text.as_str(), "-" | "/dev/stdin" | "/proc/self/fd/0")
                {
                    self.unknown(format!(
                        "`{base} -f -` runs recipes read from its input, which the hook does not read as a makefile"
                    ));
                }
            }
            "mkfifo" | "mknod" => {
                let value_options: &[&str] = &["-m", "--mode", "-Z", "--context"];
                if base == "mknod" {
                    if let Some(first) = positionals(args, value_options).first() {
                        self.write_target(first, "`mknod` writes");
                    }
                } else {
                    self.write_all(args, value_options, &format!("`{base}` writes"));
                }
            }
            "sort" => {
                if let Some(out) = option_value(args, &["-o", "--output"]) {
                    self.write_target(&out, "`sort -o` writes");
                }
            }
            "uniq" => {
                let pos = positionals(
                    args,
                    &[
                        "-f",
                        "-s",
                        "-w",
                        "--skip-fields",
                        "--skip-chars",
                        "--check-chars",
                        "--group",
                        "--all-repeated",
                    ],
                );
                if let Some(out) = pos.get(1) {
                    self.write_target(out, "`uniq` writes");
                }
            }
            "split" | "csplit" => {
                if let Some(prefix) = option_value(args, &["-f", "--prefix"]) {
                    self.write_target(&prefix, &format!("`{base}` writes files named"));
                } else if base == "split" {
                    let pos = positionals(
                        args,
                        &[
                            "-a",
                            "-b",
                            "-C",
                            "-l",
                            "-n",
                            "-t",
                            "--additional-suffix",
                            "--filter",
                            "--suffix-length",
                            "--bytes",
                            "--line-bytes",
                            "--lines",
                            "--number",
                            "--separator",
                        ],
                    );
                    if let Some(prefix) = pos.get(1) {
                        self.write_target(prefix, "`split` writes files named");
                    }
                }
                if option_value(args, &["--filter"]).is_some() {
                    self.unknown("`split --filter` runs a command for each part".into());
                }
            }
            "patch" => {
                if let Some(out) = option_value(args, &["-o", "--output"]) {
                    self.write_target(&out, "`patch -o` writes");
                }
                if let Some(dir) = option_value(args, &["-d", "--directory"]) {
                    self.write_target(&dir, "`patch -d` patches files under");
                }
                let pos = positionals(
                    args,
                    &[
                        "-o",
                        "--output",
                        "-d",
                        "--directory",
                        "-i",
                        "--input",
                        "-p",
                        "-F",
                        "--fuzz",
                        "-z",
                        "--suffix",
                        "-B",
                        "--prefix",
                        "-D",
                        "--ifdef",
                        "-r",
                        "--reject-file",
                    ],
                );
                if let Some(file) = pos.first() {
                    self.write_target(file, "`patch` writes");
                }
            }
            "zip" => {
                let pos = positionals(
                    args,
                    &[
                        "-b",
                        "-n",
                        "-t",
                        "-tt",
                        "-x",
                        "-i",
                        "-P",
                        "--password",
                        "-O",
                        "--output-file",
                    ],
                );
                if let Some(archive) = option_value(args, &["-O", "--output-file"])
                    .or_else(|| pos.first().map(|a| (*a).clone()))
                {
                    self.write_target(&archive, "`zip` writes the archive");
                }
            }
            "7z" | "7za" | "7zr" => {
                for a in args {
                    if let Some(dir) = a.text.strip_prefix("-o") {
                        let dir = Arg {
                            text: dir.to_string(),
                            ..a.clone()
                        };
                        self.write_target(&dir, &format!("`{base} -o` extracts into"));
                    }
                }
                let pos = positionals(args, &[]);
                if matches!(
                    pos.first().map(|a| a.text.as_str()),
                    Some("a" | "u" | "d" | "rn")
                ) && let Some(archive) = pos.get(1)
                {
                    self.write_target(archive, &format!("`{base}` writes the archive"));
                }
            }
            "cpio" => {
                if let Some(dir) = option_value(args, &["-D", "--directory"]) {
                    self.write_target(&dir, "`cpio -D` writes under");
                }
                if args.iter().any(|a| a.text == "--absolute-filenames") {
                    self.unknown(
                        "`cpio --absolute-filenames` writes the absolute paths an archive names"
                            .into(),
                    );
                }
            }
            "systemctl" | "launchctl" | "service" | "mount" | "umount" | "swapon" | "sysctl"
                if !args.iter().any(|a| {
                    matches!(
                        a.text.as_str(),
                        "status"
                            | "show"
                            | "cat"
                            | "list-units"
                            | "list-unit-files"
                            | "is-active"
                            | "is-enabled"
                            | "is-failed"
                            | "list-timers"
                            | "list"
                            | "-a"
                            | "--all"
                            | "-n"
                    )
                }) || matches!(base.as_str(), "mount" | "umount") && !args.is_empty() =>
            {
                self.deny(
                    Rule::WriteOutside,
                    format!("`{base}` changes the system, outside the run"),
                    &self.policy.keep_inside(),
                );
            }
            "rm" | "rmdir" | "unlink" | "shred" | "touch" | "mkdir" | "truncate" | "tee" => {
                let value_options: &[&str] = match base.as_str() {
                    "truncate" => &["-s", "--size", "-r", "--reference"],
                    "touch" => &["-d", "--date", "-t", "-r", "--reference"],
                    "mkdir" => &["-m", "--mode", "--context"],
                    "shred" => &["-n", "--iterations", "-s", "--size", "--random-source"],
                    _ => &[],
                };
                self.write_all(args, value_options, &format!("`{base}` writes"));
            }
            "chmod" | "chown" | "chgrp" => {
                let targets = positionals(args, &[]);
                let has_reference = args.iter().any(|a| a.text.starts_with("--reference"));
                let skip = usize::from(!has_reference);
                for t in targets.iter().skip(skip) {
                    self.write_target(t, &format!("`{base}` changes"));
                }
            }
            "cp" | "mv" | "install" | "ln" => self.copy_like(&base, args),
            "dd" => {
                for a in args {
                    if let Some(path) = a.text.strip_prefix("of=") {
                        let target = Arg {
                            text: path.to_string(),
                            ..a.clone()
                        };
                        self.write_target(&target, "`dd` writes");
                    }
                }
            }
            "sed" => self.sed(args),
            "tar" | "bsdtar" => {
                let absolute = args.iter().enumerate().any(|(i, a)| {
                    a.text == "--absolute-names"
                        || (a.text.starts_with('-')
                            && !a.text.starts_with("--")
                            && a.text.contains('P'))
                        || (i == 0 && !a.text.starts_with('-') && a.text.contains('P'))
                });
                if absolute {
                    self.unknown(format!(
                        "`{base} -P` keeps absolute paths and `..` in the archive's names, so it may write anywhere"
                    ));
                }
                self.tar(args)
            }
            "unzip" => {
                if let Some(dir) = option_value(args, &["-d"]) {
                    self.write_target(&dir, "`unzip -d` writes");
                }
                if args.iter().any(|a| {
                    a.text.starts_with('-') && !a.text.starts_with("--") && a.text.contains(':')
                }) {
                    self.unknown("`unzip -:` extracts paths with `..` out of the target".into());
                }
            }
            "hub" => self.git(args),
            // Wrappers whose options the hook does not model one by one:
            // every known command word after them is judged.
            "strace" | "ltrace" | "valgrind" | "proxychains" | "proxychains4" | "torsocks"
            | "firejail" | "systemd-run" | "unshare" | "nsenter" | "chroot" | "ssh-agent"
            | "dbus-run-session" | "faketime" | "catchsegv" | "flock" | "fakeroot" | "xvfb-run"
            | "caffeinate" | "op" | "dotenv" | "with-contenv" | "pkexec" | "dbus-launch"
            | "gdb" | "lldb" | "rr" | "perf" | "heaptrack" | "cgexec" | "sg" | "newgrp"
            | "bwrap" | "numactl" | "prlimit" | "entr" => {
                if base == "flock"
                    && let Some(cmd) = option_value(args, &["-c", "--command"])
                {
                    match cmd.exact() {
                        Some(text) => self.nested(text),
                        None => self.unknown("`flock -c` runs a computed string".into()),
                    }
                }
                self.run_each_suffix(&base, args);
                // After the command it runs: the log is not a program.
                if matches!(base.as_str(), "strace" | "ltrace")
                    && let Some(out) = option_value(args, &["-o", "--output"])
                {
                    self.write_target(&out, &format!("`{base} -o` writes"));
                }
                if base == "valgrind"
                    && let Some(out) = option_value(args, &["--log-file", "--xml-file"])
                {
                    self.write_target(&out, "`valgrind` writes");
                }
            }
            "tmux" | "screen" | "dtach" | "abduco" | "xterm" | "kitty"
                if !args.iter().all(|a| {
                    matches!(
                        a.text.as_str(),
                        "ls" | "list-sessions" | "-ls" | "-list" | "--version" | "-V"
                    )
                }) =>
            {
                self.unknown(format!(
                    "`{base}` runs commands in a terminal the hook does not see"
                ))
            }
            "at" | "batch" => {
                if option_value(args, &["-f"]).is_some() {
                    self.unknown(format!("`{base} -f` schedules a script file"));
                } else {
                    self.shell(&base, &[]);
                }
            }
            "crontab" => {
                let only_reads = args.iter().any(|a| a.text == "-l");
                if !only_reads {
                    self.deny(
                        Rule::WriteOutside,
                        "`crontab` installs commands for the user's scheduler, outside the run"
                            .into(),
                        &self.policy.keep_inside(),
                    );
                }
            }
            _ => {}
        }
    }

    /// Wrappers: skip their options (and `takes_operand`: one operand such
    /// as a duration), then judge the command they run.
    fn run_after_options(&mut self, args: &[Arg], value_options: &[&str], takes_operand: bool) {
        let rest = skip_options(args, value_options);
        let rest = if takes_operand && !rest.is_empty() {
            &rest[1..]
        } else {
            rest
        };
        if !rest.is_empty() {
            self.run(rest);
        }
    }

    /// Judges every suffix that starts with a known word: for wrappers
    /// whose options may take values the hook cannot tell apart.
    fn run_each_suffix(&mut self, base: &str, args: &[Arg]) {
        if let Some(first) = args.iter().find(|a| a.computed || !a.text.starts_with('-'))
            && first.computed
        {
            return self.unknown(format!("`{base}` runs a command computed at run time"));
        }
        for i in 0..args.len() {
            if args[i].exact().is_some_and(|t| !t.starts_with('-')) {
                self.run(&args[i..]);
            }
        }
    }

    fn tar(&mut self, args: &[Arg]) {
        let clusters: Vec<&str> = args
            .iter()
            .enumerate()
            .filter(|(i, a)| {
                (*i == 0 && !a.text.starts_with('-'))
                    || (a.text.starts_with('-') && !a.text.starts_with("--"))
            })
            .map(|(_, a)| a.text.trim_start_matches('-'))
            .collect();
        let has = |long: &str, letter: char| {
            args.iter().any(|a| a.text == long) || clusters.iter().any(|c| c.contains(letter))
        };
        if has("--extract", 'x') || args.iter().any(|a| a.text == "--get") {
            match option_value(args, &["-C", "--directory"]) {
                Some(dir) => self.write_target(&dir, "`tar` extracts into"),
                None => self.write_target(&Arg::literal("."), "`tar` extracts into"),
            }
        }
        if has("--create", 'c') || has("--append", 'r') || has("--update", 'u') {
            let file = option_value(args, &["-f", "--file"]).or_else(|| {
                // `tar czf out.tgz ...`, `tar -czf out.tgz`: the word after the cluster.
                let i = args.iter().position(|a| {
                    let c = a.text.trim_start_matches('-');
                    !a.text.starts_with("--")
                        && c.ends_with('f')
                        && c.chars().all(|ch| ch.is_ascii_alphabetic())
                })?;
                args.get(i + 1).cloned()
            });
            if let Some(file) = file
                && file.text != "-"
            {
                self.write_target(&file, "`tar` writes the archive");
            }
        }
    }

    fn sudo(&mut self, base: &str, args: &[Arg]) {
        let value_options = [
            "-u",
            "-g",
            "-C",
            "-D",
            "-h",
            "-p",
            "-r",
            "-t",
            "-U",
            "-T",
            "-R",
            "--user",
            "--group",
            "--chdir",
            "--host",
            "--prompt",
            "--role",
            "--type",
            "--other-user",
            "--command-timeout",
            "--chroot",
            "--close-from",
        ];
        if args.iter().any(|a| a.text == "-e" || a.text == "--edit") {
            self.write_all(args, &value_options, "`sudo -e` writes");
            return;
        }
        let rest = skip_options(args, &value_options);
        let rest = self.skip_assignments(rest);
        if rest.is_empty() {
            if args
                .iter()
                .any(|a| matches!(a.text.as_str(), "-s" | "-i" | "--shell" | "--login"))
            {
                self.unknown(format!("`{base}` starts an interactive shell"));
            }
            return;
        }
        self.run(rest);
    }

    fn skip_assignments<'b>(&mut self, args: &'b [Arg]) -> &'b [Arg] {
        let mut i = 0;
        while i < args.len() {
            let text = &args[i].text;
            match text.split_once('=') {
                Some((name, _))
                    if !name.is_empty()
                        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
                {
                    let name = name.to_string();
                    let value = args[i].text[name.len() + 1..].to_string();
                    let value = Arg {
                        text: value,
                        ..args[i].clone()
                    };
                    self.poisoned_variable(&name, &value);
                    self.note_git_variable(&name, &value);
                    i += 1;
                }
                _ => break,
            }
        }
        &args[i..]
    }

    fn env(&mut self, args: &[Arg]) {
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            let text = a.text.as_str();
            if text == "--" {
                i += 1;
                break;
            }
            if !text.starts_with('-') || text == "-" {
                break;
            }
            if let Some(script) = text
                .strip_prefix("--split-string=")
                .map(str::to_string)
                .or_else(|| {
                    (text == "-S" || text == "--split-string")
                        .then(|| args.get(i + 1).map(|x| x.text.clone()))
                        .flatten()
                })
                .or_else(|| {
                    // `-iS 'cmd'`, `-S'cmd'`: S in a cluster of short options.
                    let letters = text.strip_prefix('-').filter(|l| !l.starts_with('-'))?;
                    let at = letters.find('S')?;
                    let rest = &letters[at + 1..];
                    if rest.is_empty() {
                        args.get(i + 1).map(|x| x.text.clone())
                    } else {
                        Some(rest.to_string())
                    }
                })
            {
                self.unknown("`env -S` splits a string into a command".into());
                self.nested(&script);
                return;
            }
            if let Some(dir) = text.strip_prefix("--chdir=") {
                self.cd(&[Arg {
                    text: dir.to_string(),
                    ..a.clone()
                }]);
            } else if text == "-C" || text == "--chdir" {
                if let Some(dir) = args.get(i + 1) {
                    self.cd(std::slice::from_ref(dir));
                }
                i += 1;
            } else if text == "-u" || text == "--unset" {
                i += 1;
            }
            i += 1;
        }
        let rest = self.skip_assignments(&args[i.min(args.len())..]);
        if !rest.is_empty() {
            self.run(rest);
        }
    }

    fn xargs(&mut self, args: &[Arg]) {
        let value_options = [
            "-a",
            "-d",
            "-E",
            "-I",
            "-L",
            "-n",
            "-P",
            "-s",
            "--arg-file",
            "--delimiter",
            "--eof",
            "--replace",
            "--max-lines",
            "--max-args",
            "--max-procs",
            "--max-chars",
            "--process-slot-var",
        ];
        let replace = option_value(args, &["-I", "--replace"]).map(|a| a.text);
        let rest = skip_options(args, &value_options);
        if rest.is_empty() {
            return; // echo
        }
        // Its arguments come from standard input: unknown until run time.
        let mut argv: Vec<Arg> = rest
            .iter()
            .map(|a| match &replace {
                Some(r) if a.text.contains(r.as_str()) => Arg::computed(&a.text),
                _ => a.clone(),
            })
            .collect();
        if replace.is_none() {
            argv.push(Arg::computed("<input>"));
        }
        let saved = self.stdin.clone();
        self.stdin = Stdin::None;
        self.run(&argv);
        self.stdin = saved;
    }

    fn find(&mut self, args: &[Arg]) {
        let mut i = 0;
        while i < args.len() && matches!(args[i].text.as_str(), "-H" | "-L" | "-P") {
            i += 1;
        }
        let mut starts: Vec<Arg> = Vec::new();
        while i < args.len() {
            let t = args[i].text.as_str();
            if t.starts_with('-') || t == "(" || t == "!" || t == "," {
                break;
            }
            starts.push(args[i].clone());
            i += 1;
        }
        if starts.is_empty() {
            starts.push(Arg::literal("."));
        }
        while i < args.len() {
            let t = args[i].text.clone();
            match t.as_str() {
                "-exec" | "-execdir" | "-ok" | "-okdir" => {
                    let begin = i + 1;
                    let mut end = begin;
                    while end < args.len() && args[end].text != ";" && args[end].text != "+" {
                        end += 1;
                    }
                    let inner = &args[begin..end.min(args.len())];
                    // `{}` is a path under one of the starting points.
                    for start in starts.clone() {
                        let argv: Vec<Arg> = inner
                            .iter()
                            .map(|a| {
                                if a.text == "{}" {
                                    start.clone()
                                } else if a.text.contains("{}") {
                                    Arg::computed(&a.text)
                                } else {
                                    a.clone()
                                }
                            })
                            .collect();
                        let saved = self.cwd.clone();
                        if t == "-execdir" || t == "-okdir" {
                            self.cd(std::slice::from_ref(&start));
                        }
                        self.run(&argv);
                        self.cwd = saved;
                    }
                    i = end + 1;
                }
                "-delete" => {
                    for start in starts.clone() {
                        self.write_target(&start, "`find -delete` removes files under");
                    }
                    i += 1;
                }
                "-fprint" | "-fprint0" | "-fprintf" | "-fls" => {
                    if let Some(file) = args.get(i + 1).cloned() {
                        self.write_target(&file, &format!("`find {t}` writes"));
                    }
                    i += 2;
                }
                _ => i += 1,
            }
        }
    }

    fn shell(&mut self, base: &str, args: &[Arg]) {
        let mut i = 0;
        let mut command_string = false;
        let mut reads_stdin = false;
        while i < args.len() {
            let t = args[i].text.as_str();
            if t == "--" || t == "-" {
                i += 1;
                break;
            }
            if t.starts_with("--") {
                if matches!(t, "--rcfile" | "--init-file") {
                    self.unknown(format!(
                        "`{base} {t}` runs the commands of a file, which the hook cannot read"
                    ));
                    i += 1;
                }
                i += 1;
                continue;
            }
            if (t.starts_with('-') || t.starts_with('+')) && t.len() > 1 {
                let letters = &t[1..];
                if letters.contains('c') {
                    command_string = true;
                }
                if letters.contains('s') {
                    reads_stdin = true;
                }
                if letters.contains('o') || letters.contains('O') {
                    i += 1; // -o OPTION
                }
                i += 1;
                continue;
            }
            break;
        }
        let operand = args.get(i);
        if command_string {
            if let Some(script) = operand {
                match script.exact() {
                    Some(text) => self.nested(text),
                    None => self.unknown(format!("`{base} -c` runs a string computed at run time")),
                }
            }
            return;
        }
        if let (Some(file), false) = (operand, reads_stdin) {
            self.unknown(format!(
                "`{base} {}` runs a script file, which the hook cannot read",
                file.text
            ));
            return;
        }
        match self.stdin.clone() {
            Stdin::None => {}
            Stdin::Text(text) => {
                let saved = self.stdin.clone();
                self.stdin = Stdin::None;
                self.nested(&text);
                self.stdin = saved;
            }
            Stdin::Opaque(source) => self.unknown(format!(
                "`{base}` runs commands read from {source}, which the hook cannot see"
            )),
        }
    }

    fn cd(&mut self, args: &[Arg]) {
        let rest = skip_options(args, &[]);
        let Some(target) = rest.first() else {
            self.cwd = Cwd::Home;
            return;
        };
        if target.text == "-" || target.computed {
            self.cwd = Cwd::Unknown;
            return;
        }
        if target.home {
            self.cwd = Cwd::Home;
            return;
        }
        let path = Path::new(&target.text);
        self.cwd = if path.is_absolute() {
            Cwd::At(normalize(path))
        } else {
            match &self.cwd {
                Cwd::At(dir) => Cwd::At(normalize(&dir.join(path))),
                other => other.clone(),
            }
        };
    }

    fn git(&mut self, args: &[Arg]) {
        const PROGRAM_KEYS: &[&str] = &[
            "alias.",
            "core.sshcommand",
            "core.hookspath",
            "core.fsmonitor",
            "core.pager",
            "core.editor",
            "core.gitproxy",
            "credential.",
            "diff.external",
            "filter.",
            "gpg.program",
            "sequence.editor",
            "uploadpack.",
            "receivepack.",
            "remote.",
            "url.",
            "protocol.",
            "include.",
            "includeif.",
        ];
        const READ_ONLY: &[&str] = &[
            "status",
            "diff",
            "log",
            "show",
            "blame",
            "grep",
            "ls-files",
            "ls-tree",
            "rev-parse",
            "rev-list",
            "describe",
            "shortlog",
            "cat-file",
            "show-ref",
            "for-each-ref",
            "help",
            "version",
            "reflog",
            "whatchanged",
            "name-rev",
            "merge-base",
            "var",
            "check-ignore",
            "check-attr",
            "count-objects",
            "diff-tree",
            "diff-files",
            "diff-index",
            "range-diff",
            "show-branch",
            "verify-commit",
            "verify-tag",
            "annotate",
            "cherry",
            "difftool",
        ];
        const LOCAL_WRITES: &[&str] = &[
            "add",
            "commit",
            "checkout",
            "switch",
            "restore",
            "reset",
            "rm",
            "mv",
            "stash",
            "merge",
            "rebase",
            "cherry-pick",
            "revert",
            "apply",
            "am",
            "tag",
            "branch",
            "init",
            "clean",
            "worktree",
            "notes",
            "gc",
            "prune",
            "repack",
            "fsck",
            "bisect",
            "format-patch",
            "update-index",
            "update-ref",
            "symbolic-ref",
            "hash-object",
            "write-tree",
            "read-tree",
            "commit-tree",
            "mktree",
            "mktag",
            "config",
            "remote",
            "submodule",
            "sparse-checkout",
            "maintenance",
            "bundle",
            "archive",
            "replace",
            "filter-branch",
            "checkout-index",
            "mergetool",
            "citool",
            "gui",
            "instaweb",
            "rerere",
            "pack-refs",
            "pack-objects",
            "unpack-objects",
            "index-pack",
            "fast-import",
            "fast-export",
            "stripspace",
            "interpret-trailers",
            "lfs",
        ];
        let mut i = 0;
        let mut repo: Option<Arg> = self.git_dir.clone();
        while i < args.len() {
            let a = &args[i];
            let t = a.text.as_str();
            if !t.starts_with('-') || a.computed {
                break;
            }
            match t {
                "-C" => {
                    if let Some(dir) = args.get(i + 1) {
                        let dir = match (&repo, dir.exact()) {
                            (Some(base), Some(d))
                                if !Path::new(d).is_absolute() && !base.computed =>
                            {
                                Arg::literal(&format!("{}/{d}", base.text))
                            }
                            _ => dir.clone(),
                        };
                        repo = Some(dir);
                    }
                    i += 2;
                }
                "-c" => {
                    if let Some(setting) = args.get(i + 1) {
                        let key = setting
                            .text
                            .split('=')
                            .next()
                            .unwrap_or("")
                            .to_ascii_lowercase();
                        if setting.computed || PROGRAM_KEYS.iter().any(|p| key.starts_with(p)) {
                            self.unknown(format!(
                                "`git -c {}` sets a program or alias on the command line",
                                setting.text
                            ));
                        }
                    }
                    i += 2;
                }
                "--config-env" | "--exec-path" => {
                    self.unknown(format!("`git {t}` changes which programs git runs"));
                    i += 2;
                }
                "--git-dir" | "--work-tree" | "--namespace" | "--super-prefix" => {
                    if t != "--namespace" {
                        repo = args.get(i + 1).cloned();
                    }
                    i += 2;
                }
                "--version" | "--help" | "-h" => return,
                _ => {
                    if t.starts_with("--config-env=") || t.starts_with("--exec-path=") {
                        self.unknown(format!("`git {t}` changes which programs git runs"));
                    } else if let Some(v) = t
                        .strip_prefix("--git-dir=")
                        .or_else(|| t.strip_prefix("--work-tree="))
                    {
                        repo = Some(Arg {
                            text: v.to_string(),
                            ..a.clone()
                        });
                    }
                    i += 1;
                }
            }
        }
        let Some(sub) = args.get(i) else { return };
        let Some(sub_text) = sub.exact() else {
            self.unknown(format!(
                "the git subcommand `{}` is computed at run time",
                sub.text
            ));
            return;
        };
        let rest = &args[i + 1..];
        let second = rest
            .iter()
            .find(|a| !a.text.starts_with('-'))
            .map(|a| a.text.as_str());
        match sub_text {
            "push" => {
                return self.deny(
                    Rule::Publish,
                    "`git push` publishes commits to a remote".into(),
                    PROPOSE,
                );
            }
            "send-email" | "svn" | "p4" => {
                return self.deny(
                    Rule::Network,
                    format!("`git {sub_text}` talks to another host"),
                    EGRESS,
                );
            }
            "send-pack" | "http-push" => {
                return self.deny(
                    Rule::Publish,
                    format!("`git {sub_text}` sends objects to a remote"),
                    PROPOSE,
                );
            }
            "receive-pack" | "upload-pack" | "upload-archive" | "fetch-pack" | "http-fetch"
            | "remote-http" | "remote-https" | "remote-ftp" | "remote-ftps" | "remote-ext"
            | "remote-fd" | "daemon" | "imap-send" | "request-pull" => {
                return self.deny(
                    Rule::Network,
                    format!("`git {sub_text}` talks to another host"),
                    EGRESS,
                );
            }
            "lfs" if matches!(second, Some("push")) => {
                return self.deny(
                    Rule::Publish,
                    "`git lfs push` uploads objects to a remote".into(),
                    PROPOSE,
                );
            }
            "lfs"
                if matches!(
                    second,
                    Some("fetch" | "pull" | "clone" | "install" | "migrate" | "checkout" | "prune")
                ) =>
            {
                return self.deny(
                    Rule::Network,
                    format!(
                        "`git lfs {}` reaches the LFS server",
                        second.unwrap_or_default()
                    ),
                    EGRESS,
                );
            }
            "remote" if matches!(second, Some("show")) && !rest.iter().any(|a| a.text == "-n") => {
                return self.deny(
                    Rule::Network,
                    "`git remote show` queries the remote (`-n` does not)".into(),
                    EGRESS,
                );
            }
            "bundle" if matches!(second, Some("create")) => {
                let pos = positionals(rest, &[]);
                if let Some(file) = pos.get(1) {
                    self.write_target(file, "`git bundle create` writes");
                }
            }
            "init" => {
                let pos = positionals(
                    rest,
                    &[
                        "--template",
                        "--separate-git-dir",
                        "-b",
                        "--initial-branch",
                        "--object-format",
                        "--ref-format",
                        "--shared",
                    ],
                );
                if let Some(dir) = pos.first() {
                    self.write_target_in(dir, "`git init` writes", false);
                }
                for opt in ["--separate-git-dir", "--template"] {
                    if let Some(dir) = option_value(rest, &[opt]) {
                        if opt == "--template" {
                            self.unknown("`git init --template` copies hooks from a directory the hook cannot read".into());
                        } else {
                            self.write_target_in(
                                &dir,
                                "`git init --separate-git-dir` writes",
                                false,
                            );
                        }
                    }
                }
            }
            "apply" | "am"
                if rest
                    .iter()
                    .any(|a| a.text == "--unsafe-paths" || a.text.starts_with("--directory")) =>
            {
                return self.unknown(format!(
                    "`git {sub_text} --directory/--unsafe-paths` may write outside the worktree"
                ));
            }
            "submodule" if matches!(second, Some("foreach")) => {
                let at = rest.iter().position(|a| a.text == "foreach").unwrap_or(0);
                let command: Vec<Arg> = rest[at + 1..]
                    .iter()
                    .skip_while(|a| matches!(a.text.as_str(), "--recursive" | "-q" | "--quiet"))
                    .cloned()
                    .collect();
                match joined(&command) {
                    Some(text) => self.nested(&text),
                    None => self.unknown("`git submodule foreach` runs a computed command".into()),
                }
                return;
            }
            "rebase" | "difftool" | "filter-branch" | "grep" | "bisect" => {
                let runs = match sub_text {
                    "rebase" => option_value(rest, &["-x", "--exec"]),
                    "difftool" => option_value(rest, &["-x", "--extcmd"]),
                    "grep" => option_value(rest, &["-O", "--open-files-in-pager"]),
                    "filter-branch" => option_value(
                        rest,
                        &[
                            "--env-filter",
                            "--tree-filter",
                            "--index-filter",
                            "--parent-filter",
                            "--msg-filter",
                            "--commit-filter",
                            "--tag-name-filter",
                        ],
                    ),
                    _ => None,
                };
                if let Some(command) = runs {
                    match command.exact() {
                        Some(text) => self.nested(text),
                        None => self.unknown(format!("`git {sub_text}` runs a computed command")),
                    }
                }
                if sub_text == "bisect" && second == Some("run") {
                    let at = rest.iter().position(|a| a.text == "run").unwrap_or(0);
                    self.run(&rest[at + 1..]);
                }
            }
            "archive" | "format-patch" | "diff" | "log" | "show" | "checkout-index"
            | "diff-tree" | "diff-files" | "diff-index" | "range-diff"
                if rest.iter().any(|a| {
                    a.text.starts_with("--output")
                        || a.text.starts_with("--prefix")
                        || a.text == "-o"
                        || a.text.starts_with("--o=")
                }) =>
            {
                let names: &[&str] = match sub_text {
                    "archive" => &["-o", "--output"],
                    "format-patch" => &["-o", "--output-directory"],
                    "checkout-index" => &["--prefix"],
                    _ => &["--output"],
                };
                if let Some(target) = option_value(rest, names) {
                    self.write_target(&target, &format!("`git {sub_text}` writes"));
                }
                if sub_text == "archive" {
                    return;
                }
            }
            "maintenance"
                if matches!(second, Some("start" | "register" | "unregister" | "stop")) =>
            {
                return self.deny(
                    Rule::WriteOutside,
                    format!(
                        "`git maintenance {}` changes the user's git settings and scheduler, outside the run",
                        second.unwrap_or_default()
                    ),
                    &self.policy.keep_inside(),
                );
            }
            "maintenance" if rest.iter().any(|a| a.text.contains("prefetch")) => {
                return self.deny(
                    Rule::Network,
                    "`git maintenance run --task=prefetch` fetches from remotes".into(),
                    EGRESS,
                );
            }
            "fetch" | "pull" | "clone" | "ls-remote" => {
                return self.deny(
                    Rule::Network,
                    format!("`git {sub_text}` reaches a remote over the network"),
                    EGRESS,
                );
            }
            "remote" if matches!(second, Some("update" | "prune" | "set-head")) => {
                return self.deny(
                    Rule::Network,
                    "`git remote update` fetches from remotes".into(),
                    EGRESS,
                );
            }
            "submodule" if matches!(second, Some("update" | "sync" | "add")) => {
                return self.deny(
                    Rule::Network,
                    "`git submodule` fetches from remotes".into(),
                    EGRESS,
                );
            }
            "archive" if rest.iter().any(|a| a.text.starts_with("--remote")) => {
                return self.deny(
                    Rule::Network,
                    "`git archive --remote` reaches a remote".into(),
                    EGRESS,
                );
            }
            "config" => {
                let scope_outside = rest
                    .iter()
                    .any(|a| matches!(a.text.as_str(), "--global" | "--system"))
                    || rest.iter().any(|a| {
                        a.text == "--file" || a.text == "-f" || a.text.starts_with("--file=")
                    });
                let writes = positionals(rest, &["--file", "-f", "--type", "--default", "--blob"])
                    .len()
                    >= 2
                    || rest.iter().any(|a| {
                        a.text.starts_with("--unset")
                            || matches!(
                                a.text.as_str(),
                                "--add"
                                    | "--replace-all"
                                    | "--edit"
                                    | "-e"
                                    | "--rename-section"
                                    | "--remove-section"
                                    | "set"
                                    | "unset"
                                    | "edit"
                            )
                    });
                let key = positionals(
                    rest,
                    &["--file", "-f", "--type", "--default", "--blob", "--comment"],
                )
                .into_iter()
                .find(|a| !matches!(a.text.as_str(), "set" | "unset" | "get" | "edit"))
                .map(|a| a.text.to_ascii_lowercase());
                if writes
                    && let Some(key) = &key
                    && (PROGRAM_KEYS.iter().any(|p| key.starts_with(p))
                        || key.ends_with(".command")
                        || key.ends_with(".cmd")
                        || key.ends_with(".tool")
                        || key.ends_with(".path") && key.starts_with("core."))
                {
                    self.unknown(format!(
                        "`git config {key}` sets a program or alias that later git commands run"
                    ));
                }
                if writes
                    && rest
                        .iter()
                        .any(|a| matches!(a.text.as_str(), "--edit" | "-e" | "edit"))
                {
                    self.unknown("`git config --edit` opens an editor on the settings".into());
                }
                if scope_outside && writes {
                    if let Some(file) = option_value(rest, &["--file", "-f"]) {
                        self.write_target(&file, "`git config --file` writes");
                    } else {
                        self.deny(
                            Rule::WriteOutside,
                            "`git config --global` writes the user's own git settings, outside the run's worktree".into(),
                            &self.policy.keep_inside(),
                        );
                    }
                    return;
                }
            }
            _ => {}
        }
        if sub_text == "worktree" && second == Some("add") {
            let pos = positionals(rest, &["-b", "-B", "--reason"]);
            if let Some(path) = pos.get(1) {
                // It registers the worktree in the repository's git directory too.
                self.write_target_in(path, "`git worktree add` writes", false);
            }
        }
        if READ_ONLY.contains(&sub_text) {
            return;
        }
        if !LOCAL_WRITES.contains(&sub_text) {
            self.unknown(format!(
                "`git {sub_text}` is not a git command the hook knows; it may be an alias"
            ));
            return;
        }
        if let Some(repo) = repo {
            self.write_target(&repo, &format!("`git {sub_text}` writes the repository at"));
        } else if let Cwd::At(dir) = &self.cwd {
            if !self.policy.inside(dir) {
                let denial = self
                    .policy
                    .outside_denial(dir, &format!("`git {sub_text}` writes the repository at"));
                self.denials.push(denial);
            } else if let Some(denial) = self
                .policy
                .read_only_denial(dir, &format!("`git {sub_text}` writes the repository at"))
            {
                self.denials.push(denial);
            }
        } else if let Cwd::Home = self.cwd {
            let denial = self.policy.outside_denial(
                Path::new("~"),
                &format!("`git {sub_text}` writes the repository at"),
            );
            self.denials.push(denial);
        }
    }

    fn airlock(&mut self, args: &[Arg]) {
        for a in args {
            match a.exact() {
                Some(word @ ("approve" | "promote" | "resolve" | "rollback")) => {
                    return self.deny(
                        Rule::AirlockControl,
                        format!("`airlock {word}` is the reviewer's step, not the agent's"),
                        REVIEWER_ONLY,
                    );
                }
                Some(_) => {}
                None if a.computed || a.glob => {
                    return self.unknown(format!(
                        "an argument of `airlock` (`{}`) is computed at run time",
                        a.text
                    ));
                }
                None => {}
            }
        }
        // `airlock exec -- CMD` runs CMD.
        if args.first().is_some_and(|a| a.text == "exec")
            && let Some(dash) = args.iter().position(|a| a.text == "--")
        {
            self.run(&args[dash + 1..]);
        }
    }

    fn cargo(&mut self, args: &[Arg]) {
        // `cargo +nightly publish`: the toolchain comes first.
        let args = match args.first() {
            Some(a) if a.text.starts_with('+') => &args[1..],
            _ => args,
        };
        let sub = first_positional(
            args,
            &["--manifest-path", "-Z", "--config", "--color", "-C"],
        );
        if let Some(config) = option_value(args, &["--config"]) {
            let lower = config.text.to_ascii_lowercase();
            if config.computed
                || lower.contains("alias")
                || lower.contains("runner")
                || lower.contains("linker")
                || lower.contains("rustc")
                || lower.contains("target.")
                || lower.contains("build.")
            {
                self.unknown(format!(
                    "`cargo --config {}` changes which programs cargo runs",
                    config.text
                ));
            }
        }
        if let Some(dir) = option_value(args, &["--target-dir"]) {
            self.write_target(&dir, "`cargo --target-dir` writes");
        }
        let Some(sub) = sub else { return };
        match sub.text.as_str() {
            "publish" | "yank" | "owner" | "login" => self.deny(
                Rule::Publish,
                format!("`cargo {}` publishes to a registry", sub.text),
                PROPOSE,
            ),
            "install" | "add" | "search" | "info" => self.deny(
                Rule::Network,
                format!("`cargo {}` downloads from a registry", sub.text),
                EGRESS,
            ),
            "new" | "init" => {
                let pos = positionals(args, &["--name", "--vcs", "--edition", "--registry"]);
                if let Some(dir) = pos.get(1) {
                    self.write_target(dir, &format!("`cargo {}` writes", sub.text));
                }
            }
            "audit" | "outdated" | "fetch" | "update" | "generate-lockfile" | "vendor"
                if !args.iter().any(|a| matches!(a.text.as_str(), "--offline" | "--frozen")) =>
            {
                self.deny(
                    Rule::Network,
                    format!("`cargo {}` downloads the registry's index and crates", sub.text),
                    EGRESS,
                )
            }
            text if !sub.computed && !KNOWN_CARGO_SUBCOMMANDS.contains(&text) => {
                self.unknown(format!(
                    "`cargo {text}` is not a cargo command the hook knows; it may be an alias from .cargo/config.toml"
                ))
            }
            "run" => {
                // `cargo run -p airlock-cli -- approve ...`
                let runs_airlock = args.iter().any(|a| {
                    a.text.contains("airlock")
                        || matches!(a.text.as_str(), "approve" | "promote" | "resolve" | "rollback")
                });
                if let Some(dash) = args.iter().position(|a| a.text == "--")
                    && runs_airlock
                {
                    self.airlock(&args[dash + 1..]);
                }
            }
            _ => {}
        }
    }

    fn js_package_manager(&mut self, base: &str, args: &[Arg]) {
        let offline = args.iter().any(|a| a.text == "--offline");
        let sub = first_positional(
            args,
            &[
                "--prefix",
                "-C",
                "--dir",
                "--cwd",
                "--filter",
                "-w",
                "--workspace",
            ],
        );
        let sub = sub.map(|a| a.text.as_str());
        // `npm --registry URL publish`: a global option's value is not the
        // command; the first word that names a registry command is.
        const RUNS_SCRIPTS: &[&str] = &[
            "run",
            "run-script",
            "rum",
            "urn",
            "test",
            "t",
            "tst",
            "start",
            "stop",
            "restart",
        ];
        const REGISTRY: &[&str] = &[
            "publish",
            "unpublish",
            "deprecate",
            "dist-tag",
            "dist-tags",
            "owner",
            "author",
            "access",
            "team",
            "token",
            "adduser",
            "login",
            "add-user",
        ];
        let words: Vec<&str> = positionals(args, &[])
            .into_iter()
            .take_while(|a| a.text != "--")
            .map(|a| a.text.as_str())
            .collect();
        let sub = match sub {
            Some(first) if RUNS_SCRIPTS.contains(&first) => Some(first),
            first => words
                .iter()
                .copied()
                .find(|w| {
                    REGISTRY.contains(w)
                        || (base == "npm" && w.len() >= 3 && "publish".starts_with(*w))
                })
                .or(first),
        };
        if matches!(sub, Some("config" | "c")) {
            let second = words.get(1).copied();
            let project = args
                .iter()
                .any(|a| a.text == "--local" || a.text.starts_with("--location=project"))
                || option_value(args, &["-L", "--location"]).is_some_and(|v| v.text == "project");
            if matches!(second, Some("set" | "delete" | "edit" | "rm" | "unset")) && !project {
                return self.deny(
                    Rule::WriteOutside,
                    format!(
                        "`{base} config {}` writes the user's own settings, outside the run",
                        second.unwrap_or_default()
                    ),
                    &self.policy.keep_inside(),
                );
            }
        }
        // npm runs any unique prefix of a command's name (`npm pub`).
        let sub = match sub {
            Some(text) if base == "npm" && text.len() >= 3 && "publish".starts_with(text) => {
                Some("publish")
            }
            other => other,
        };
        if matches!(
            sub,
            Some(
                "unpublish"
                    | "deprecate"
                    | "dist-tag"
                    | "dist-tags"
                    | "owner"
                    | "author"
                    | "access"
                    | "team"
                    | "token"
                    | "adduser"
                    | "login"
                    | "add-user"
            )
        ) {
            return self.deny(
                Rule::Publish,
                format!("`{base} {}` changes the registry", sub.unwrap_or_default()),
                PROPOSE,
            );
        }
        if base == "yarn" && sub == Some("npm") {
            let second = positionals(args, &[]).get(1).map(|a| a.text.clone());
            return if second.as_deref() == Some("publish") {
                self.deny(
                    Rule::Publish,
                    "`yarn npm publish` publishes a package".into(),
                    PROPOSE,
                )
            } else {
                self.deny(
                    Rule::Network,
                    "`yarn npm` talks to the registry".into(),
                    EGRESS,
                )
            };
        }
        match sub {
            Some("publish") => self.deny(
                Rule::Publish,
                format!("`{base} publish` publishes a package"),
                PROPOSE,
            ),
            Some(
                "install" | "i" | "add" | "ci" | "update" | "up" | "upgrade" | "dlx" | "exec" | "x"
                | "create" | "install-test" | "it" | "view" | "v" | "info" | "show" | "search"
                | "s" | "se" | "find" | "audit" | "outdated" | "ping" | "whoami" | "doctor"
                | "fund",
            ) if !offline => self.deny(
                Rule::Network,
                format!(
                    "`{base} {}` downloads packages from the registry",
                    sub.unwrap_or_default()
                ),
                EGRESS,
            ),
            None if base == "yarn" && !offline => self.deny(
                Rule::Network,
                "`yarn` installs packages from the registry".into(),
                EGRESS,
            ),
            _ => {}
        }
    }

    fn pip(&mut self, base: &str, args: &[Arg]) {
        let offline = args.iter().any(|a| a.text == "--no-index");
        // `pip --proxy URL install`: the first word that is a command.
        let words: Vec<&str> = positionals(args, &[])
            .into_iter()
            .map(|a| a.text.as_str())
            .collect();
        let sub = words
            .iter()
            .copied()
            .find(|w| {
                matches!(
                    *w,
                    "install" | "download" | "wheel" | "run" | "config" | "index" | "search"
                )
            })
            .or_else(|| words.first().copied());
        if sub == Some("config")
            && words.iter().any(|w| matches!(*w, "set" | "unset" | "edit"))
            && !args.iter().any(|a| a.text == "--site")
        {
            return self.deny(
                Rule::WriteOutside,
                format!("`{base} config` writes the user's own settings, outside the run"),
                &self.policy.keep_inside(),
            );
        }
        if matches!(
            sub,
            Some("install" | "download" | "wheel" | "run" | "index" | "search")
        ) && !offline
        {
            self.deny(
                Rule::Network,
                format!(
                    "`{base} {}` downloads packages from the index",
                    sub.unwrap_or_default()
                ),
                EGRESS,
            );
        }
    }

    fn python_project(&mut self, base: &str, args: &[Arg]) {
        let offline = args
            .iter()
            .any(|a| a.text == "--offline" || a.text == "--no-index");
        let pos = positionals(
            args,
            &[
                "--python",
                "-p",
                "--directory",
                "--project",
                "--with",
                "--from",
            ],
        );
        let sub = pos.first().map(|a| a.text.as_str());
        let second = pos.get(1).map(|a| a.text.as_str());
        if sub == Some("venv")
            && let Some(dir) = pos.get(1)
        {
            self.write_target(dir, &format!("`{base} venv` writes"));
        }
        match (sub, second) {
            (Some("publish"), _) => self.deny(
                Rule::Publish,
                format!("`{base} publish` publishes a package"),
                PROPOSE,
            ),
            (Some("add" | "install" | "lock" | "update" | "sync"), _)
            | (Some("pip" | "tool"), Some("install"))
            | (Some("tool"), Some("run" | "upgrade"))
            | (Some("run"), _)
                if !offline
                    && (sub != Some("run")
                        || args
                            .iter()
                            .any(|a| a.text == "--with" || a.text.starts_with("--with="))) =>
            {
                self.deny(
                    Rule::Network,
                    format!(
                        "`{base} {}` downloads packages from the index",
                        sub.unwrap_or_default()
                    ),
                    EGRESS,
                )
            }
            _ => {}
        }
    }

    fn subcommand_rule(&mut self, base: &str, args: &[Arg], publish: &[&str], network: &[&str]) {
        self.subcommand_rule_with(base, args, &[], publish, network);
    }

    /// [`Self::subcommand_rule`] for a program whose global options before
    /// the subcommand take values (`docker -H HOST push`).
    fn subcommand_rule_with(
        &mut self,
        base: &str,
        args: &[Arg],
        value_options: &[&str],
        publish: &[&str],
        network: &[&str],
    ) {
        let Some(sub) = first_positional(args, value_options) else {
            return;
        };
        let Some(text) = sub.exact() else {
            return self.unknown(format!(
                "the `{base}` subcommand `{}` is computed at run time",
                sub.text
            ));
        };
        if publish.contains(&text) {
            self.deny(Rule::Publish, format!("`{base} {text}` publishes"), PROPOSE);
        } else if network.contains(&text) {
            self.deny(
                Rule::Network,
                format!("`{base} {text}` reaches the network"),
                EGRESS,
            );
        }
    }

    fn write_all(&mut self, args: &[Arg], value_options: &[&str], what: &str) {
        for target in positionals(args, value_options) {
            self.write_target(target, what);
        }
    }

    fn copy_like(&mut self, base: &str, args: &[Arg]) {
        let value_options = [
            "-t",
            "--target-directory",
            "-S",
            "--suffix",
            "-m",
            "--mode",
            "-o",
            "--owner",
            "-g",
            "--group",
            "--backup",
            "-e",
            "--rsh",
            "--exclude",
            "--include",
            "--filter",
            "-f",
        ];
        let what = format!("`{base}` writes");
        // A link planted in the host's /tmp (outside a sandbox) turns a
        // later write there into a write wherever it points.
        let scratch_ok = base != "ln";
        // A link in the worktree to a file outside it makes a later write
        // through the link a write outside (hard links too).
        let links = base == "ln"
            || (base == "cp"
                && args.iter().any(|a| {
                    matches!(a.text.as_str(), "--symbolic-link" | "--link")
                        || (a.text.starts_with('-')
                            && !a.text.starts_with("--")
                            && a.text.contains(['s', 'l']))
                }));
        if links {
            let pos = positionals(args, &value_options);
            let has_target_dir = option_value(args, &["-t", "--target-directory"]).is_some();
            let sources: Vec<&Arg> = if pos.len() == 1 || has_target_dir {
                pos.clone()
            } else {
                pos[..pos.len().saturating_sub(1)].to_vec()
            };
            let symbolic = args.iter().any(|a| {
                a.text == "--symbolic"
                    || a.text == "--symbolic-link"
                    || (a.text.starts_with('-')
                        && !a.text.starts_with("--")
                        && a.text.contains('s'))
            });
            // A relative symbolic link points from the link's directory.
            let link_dir = match (symbolic, option_value(args, &["-t", "--target-directory"])) {
                (false, _) => None,
                (true, Some(dir)) => Some(dir.text.clone()),
                (true, None) if pos.len() >= 2 => pos.last().map(|link| {
                    if link.text.ends_with('/') {
                        link.text.clone()
                    } else {
                        Path::new(&link.text)
                            .parent()
                            .map(|p| p.to_string_lossy().into_owned())
                            .unwrap_or_default()
                    }
                }),
                (true, None) => Some(".".into()),
            };
            for source in sources {
                let from_link = match (&link_dir, source.exact()) {
                    (Some(dir), Some(text)) if !Path::new(text).is_absolute() => {
                        let joined = if dir.is_empty() {
                            text.to_string()
                        } else {
                            format!("{dir}/{text}")
                        };
                        Arg {
                            text: joined,
                            ..source.clone()
                        }
                    }
                    _ => source.clone(),
                };
                if let Location::Outside(path) = self.locate(&from_link)
                    && !is_harmless_device(&source.text)
                    && !is_scratch(&path)
                {
                    let mut denial = self
                        .policy
                        .outside_denial(&path, &format!("`{base}` links to"));
                    denial
                        .reason
                        .push_str(": a write through the link writes there");
                    self.denials.push(denial);
                }
            }
        }
        if let Some(dir) = option_value(args, &["-t", "--target-directory"]) {
            self.write_target_in(&dir, &what, scratch_ok);
        }
        let pos = positionals(args, &value_options);
        let directory_mode = base == "install"
            && args
                .iter()
                .any(|a| a.text == "-d" || a.text == "--directory");
        match base {
            // `mv` removes its sources too.
            "mv" => {
                for p in pos {
                    self.write_target_in(p, &what, scratch_ok);
                }
            }
            _ if directory_mode => {
                for p in pos {
                    self.write_target_in(p, &what, scratch_ok);
                }
            }
            "ln" if pos.len() == 1 => {
                let link = Arg::literal(".");
                self.write_target_in(&link, &what, scratch_ok);
            }
            _ => {
                if pos.len() >= 2
                    && option_value(args, &["-t", "--target-directory"]).is_none()
                    && let Some(last) = pos.last()
                {
                    self.write_target_in(last, &what, scratch_ok);
                }
            }
        }
    }

    /// An interpreter: `-m pip`; inline code (`-c`, `-e`, `-r`, ...) or a
    /// literal program on stdin is looked into (see [`crate::inline`]); a
    /// program from a pipe or file is not understood; a script file is
    /// not judged (what a program does is the sandbox's business).
    fn interpreter(&mut self, base: &str, args: &[Arg]) {
        let family = interpreter_family(base);
        if family == "python"
            && let Some(at) = args.iter().position(|a| a.text == "-m")
            && let Some(module) = args.get(at + 1).and_then(Arg::exact)
        {
            let rest = &args[at + 2..];
            match module {
                "pip" | "pipx" => return self.pip(module, rest),
                "twine" => {
                    return self.subcommand_rule("twine", rest, &["upload", "register"], &[]);
                }
                "poetry" | "uv" | "pdm" | "hatch" => return self.python_project(module, rest),
                "venv" | "virtualenv" => {
                    if let Some(dir) = positionals(rest, &["--prompt"]).last() {
                        self.write_target(dir, &format!("`python -m {module}` writes"));
                    }
                    return;
                }
                _ => {}
            }
        }
        if family == "deno" {
            let sub = first_positional(args, &[]).map(|a| a.text.clone());
            match sub.as_deref() {
                Some("publish") => {
                    return self.deny(
                        Rule::Publish,
                        "`deno publish` publishes to JSR".into(),
                        PROPOSE,
                    );
                }
                Some("install" | "add" | "cache" | "upgrade" | "outdated" | "update") => {
                    return self.deny(
                        Rule::Network,
                        format!("`deno {}` downloads modules", sub.unwrap_or_default()),
                        EGRESS,
                    );
                }
                _ if args.iter().any(|a| {
                    ["http://", "https://", "npm:", "jsr:"]
                        .iter()
                        .any(|p| a.text.starts_with(p))
                }) =>
                {
                    return self.deny(
                        Rule::Network,
                        "`deno` runs a module it downloads".into(),
                        EGRESS,
                    );
                }
                _ => {}
            }
        }
        let (code_letters, long_code): (&[char], &[&str]) = match family {
            "python" | "expect" => (&['c'], &[]),
            "perl" => (&['e', 'E'], &[]),
            "ruby" | "lua" | "rscript" => (&['e'], &[]),
            "node" => (&['e', 'p'], &["--eval", "--print"]),
            "php" => (&['r'], &[]),
            _ => (&[], &[]),
        };
        let mut code: Vec<Arg> = Vec::new();
        let mut code_index = None;
        for (i, a) in args.iter().enumerate() {
            let t = a.text.as_str();
            if t == "--" {
                break;
            }
            if let Some(name) = long_code.iter().find(|n| t == **n) {
                let _ = name;
                code.extend(args.get(i + 1).cloned());
                code_index = Some(i + 1);
            } else if let Some(v) = long_code
                .iter()
                .find_map(|n| t.strip_prefix(&format!("{n}=")))
            {
                code.push(Arg {
                    text: v.to_string(),
                    ..a.clone()
                });
            } else if t.starts_with('-') && !t.starts_with("--") && t.len() > 1 {
                let letters = &t[1..];
                if let Some(pos) = letters.find(|c| code_letters.contains(&c)) {
                    let rest = &letters[pos + 1..];
                    if rest.is_empty() {
                        code.extend(args.get(i + 1).cloned());
                        code_index = Some(i + 1);
                    } else {
                        code.push(Arg {
                            text: rest.to_string(),
                            ..a.clone()
                        });
                    }
                }
            }
        }
        if family == "deno" && args.first().is_some_and(|a| a.text == "eval") {
            code.extend(args.get(1).cloned());
        }
        if family == "perl" || family == "ruby" {
            // `perl -pi -e '...' FILE`: in-place edits write each file.
            let in_place = args.iter().any(|a| {
                a.text.starts_with('-')
                    && !a.text.starts_with("--")
                    && a.text[1..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphabetic())
                        .any(|c| c == 'i')
            });
            if in_place {
                for (i, a) in args.iter().enumerate() {
                    if !a.text.starts_with('-') && Some(i) != code_index {
                        self.write_target(a, &format!("`{base} -i` writes"));
                    }
                }
            }
        }
        // `perl -MLWP::Simple`, `ruby -rnet/http`: modules loaded are part
        // of the program.
        for (i, a) in args.iter().enumerate() {
            let t = a.text.as_str();
            if (family == "perl" && (t.starts_with("-M") || t.starts_with("-m")))
                || (family == "ruby" && t.starts_with("-r"))
            {
                let module = if t.len() > 2 {
                    Some(Arg {
                        text: t[2..].to_string(),
                        ..a.clone()
                    })
                } else {
                    args.get(i + 1).cloned()
                };
                code.extend(module);
            }
        }
        let judge = |this: &mut Self, text: &str, whence: &str| {
            if let Some(marker) = crate::inline::spawns_or_connects(text) {
                this.unknown(format!(
                    "`{base}` runs {whence} that may start programs or open connections \
                     (`{marker}`), which the hook cannot judge"
                ));
            }
            for path in crate::inline::written_paths(text) {
                let arg = if let Some(rest) = path.strip_prefix("~/") {
                    Arg {
                        text: rest.to_string(),
                        home: true,
                        ..Arg::default()
                    }
                } else {
                    Arg::literal(&path)
                };
                if let Location::Outside(full) = this.locate(&arg)
                    && !is_scratch(&full)
                    && !is_harmless_device(&path)
                {
                    this.unknown(format!(
                        "`{base}` runs {whence} that writes files and names `{path}`, outside the worktree"
                    ));
                }
            }
        };
        for c in &code {
            match c.exact() {
                Some(text) => judge(self, text, "inline code"),
                None => self.unknown(format!("`{base}` runs code computed at run time")),
            }
        }
        if !code.is_empty() {
            return;
        }
        if let Some(script) = args.iter().find(|a| !a.text.starts_with('-'))
            && let Some(path) = self.absolute(script)
            && self.written.contains(&path)
        {
            return self.unknown(format!(
                "`{base} {}` runs a script written earlier in the same command, which the hook cannot read",
                script.text
            ));
        }
        let reads_stdin = args.is_empty()
            || args.iter().all(|a| {
                a.text == "-" || (a.text.starts_with('-') && !matches!(a.text.as_str(), "-m"))
            });
        if reads_stdin {
            match self.stdin.clone() {
                Stdin::Opaque(source) => {
                    self.unknown(format!("`{base}` runs a program read from {source}"))
                }
                Stdin::Text(text) => judge(self, &text, "a program from its input"),
                Stdin::None => {}
            }
        }
    }

    /// awk: a program that runs commands is not understood; one that
    /// prints to a named file writes it.
    fn awk(&mut self, base: &str, args: &[Arg]) {
        let value_options = [
            "-F",
            "-v",
            "-f",
            "-i",
            "-l",
            "-E",
            "--field-separator",
            "--assign",
            "--file",
            "--include",
            "--load",
            "--exec",
        ];
        if args
            .iter()
            .any(|a| matches!(a.text.as_str(), "-f" | "--file" | "-E" | "--exec"))
        {
            return;
        }
        let Some(program) = first_positional(args, &value_options) else {
            return;
        };
        let Some(text) = program.exact() else {
            return self.unknown(format!("`{base}` runs a program computed at run time"));
        };
        if let Some(what) = crate::inline::awk_runs_commands(text) {
            return self.unknown(format!("the {base} program runs commands ({what})"));
        }
        // `print > "FILE"`, `printf ... >> "FILE"`.
        let mut rest = text;
        while let Some(at) = rest.find('>') {
            let after = rest[at + 1..].trim_start_matches('>').trim_start();
            if let Some(quoted) = after.strip_prefix('"')
                && let Some(end) = quoted.find('"')
            {
                let target = Arg::literal(&quoted[..end]);
                self.write_target(&target, &format!("the {base} program writes"));
            }
            rest = &rest[at + 1..];
        }
    }

    fn sed(&mut self, args: &[Arg]) {
        let mut scripts: Vec<Arg> = Vec::new();
        for (i, a) in args.iter().enumerate() {
            if matches!(a.text.as_str(), "-e" | "--expression") {
                scripts.extend(args.get(i + 1).cloned());
            } else if let Some(v) = a.text.strip_prefix("--expression=") {
                scripts.push(Arg {
                    text: v.to_string(),
                    ..a.clone()
                });
            }
        }
        let script_file = args
            .iter()
            .any(|a| matches!(a.text.as_str(), "-f" | "--file") || a.text.starts_with("--file="));
        if scripts.is_empty()
            && !script_file
            && let Some(first) = first_positional(args, &["-l", "--line-length"])
        {
            scripts.push(first.clone());
        }
        for script in &scripts {
            match script.exact() {
                Some(text) => {
                    if let Some(what) = crate::inline::sed_runs_or_writes(text) {
                        self.unknown(format!("the sed script `{text}`: {what}"));
                    }
                }
                None => self.unknown("`sed` runs a script computed at run time".into()),
            }
        }
        let in_place = args.iter().any(|a| {
            let t = a.text.as_str();
            t.starts_with("--in-place")
                || (t.starts_with('-')
                    && !t.starts_with("--")
                    && t[1..].starts_with(|c: char| c.is_ascii_alphabetic())
                    && t[1..]
                        .split(|c: char| !c.is_ascii_alphabetic())
                        .next()
                        .is_some_and(|letters| letters.contains('i')))
        });
        if !in_place {
            return;
        }
        let has_script_option = args.iter().any(|a| {
            matches!(a.text.as_str(), "-e" | "-f" | "--expression" | "--file")
                || a.text.starts_with("--expression=")
                || a.text.starts_with("--file=")
        });
        let pos = positionals(
            args,
            &["-e", "-f", "--expression", "--file", "-l", "--line-length"],
        );
        let skip = usize::from(!has_script_option);
        for file in pos.iter().skip(skip) {
            self.write_target(file, "`sed -i` writes");
        }
    }
}

/// cargo's own commands, its built-in aliases and widely used external
/// subcommands; anything else may be an alias a `.cargo/config.toml` in the
/// worktree defines (`[alias] pub = "publish"`).
const KNOWN_CARGO_SUBCOMMANDS: &[&str] = &[
    "build",
    "b",
    "check",
    "c",
    "clean",
    "doc",
    "d",
    "new",
    "init",
    "remove",
    "rm",
    "run",
    "r",
    "test",
    "t",
    "bench",
    "uninstall",
    "fmt",
    "clippy",
    "fix",
    "tree",
    "metadata",
    "locate-project",
    "pkgid",
    "verify-project",
    "version",
    "package",
    "report",
    "help",
    "rustc",
    "rustdoc",
    "config",
    "logout",
    "nextest",
    "insta",
    "llvm-cov",
    "miri",
    "expand",
    "audit",
    "deny",
    "outdated",
    "machete",
    "udeps",
    "watch",
    "make",
    "about",
    "sort",
    "hack",
    "semver-checks",
    "mutants",
    "tarpaulin",
    "criterion",
    "flamegraph",
    "bloat",
    "msrv",
    "careful",
    "fuzz",
    "show-asm",
    "asm",
    "doc2readme",
    "readme",
    "workspaces",
    "ws",
    "component",
    "zigbuild",
    "xwin",
    "ndk",
    "apk",
    "leptos",
    "tauri",
    "dist",
    "release",
    "update",
    "fetch",
    "generate-lockfile",
    "vendor",
    "info",
    "login",
    "owner",
    "yank",
    "publish",
    "install",
    "add",
    "search",
    "-V",
    "--version",
    "--list",
];

/// Interpreters whose inline code the hook looks into.
fn is_interpreter(base: &str) -> bool {
    !interpreter_family(base).is_empty()
}

/// `python3.12` is `python`, `perl5.36` is `perl`, ...
fn interpreter_family(base: &str) -> &'static str {
    let stem = base.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    match stem {
        "python" | "pypy" => "python",
        "perl" => "perl",
        "ruby" | "jruby" | "truffleruby" => "ruby",
        "node" | "nodejs" => "node",
        "php" => "php",
        "lua" | "luajit" => "lua",
        "deno" => "deno",
        "expect" => "expect",
        "tclsh" | "wish" => "tcl",
        "Rscript" => "rscript",
        _ => "",
    }
}

/// The words joined with spaces, if all are known.
fn joined(args: &[Arg]) -> Option<String> {
    if args.is_empty() || args.iter().any(|a| a.computed) {
        return None;
    }
    Some(
        args.iter()
            .map(|a| a.text.as_str())
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// The arguments after the leading options (`value_options` take the next
/// word; `--opt=value` carries its own).
fn skip_options<'b>(args: &'b [Arg], value_options: &[&str]) -> &'b [Arg] {
    let mut i = 0;
    while i < args.len() {
        let t = args[i].text.as_str();
        if t == "--" {
            return &args[i + 1..];
        }
        if !t.starts_with('-') || t == "-" || args[i].computed {
            break;
        }
        if value_options.contains(&t) {
            i += 1;
        }
        i += 1;
    }
    &args[i.min(args.len())..]
}

/// The non-option arguments anywhere on the line.
fn positionals<'b>(args: &'b [Arg], value_options: &[&str]) -> Vec<&'b Arg> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut after_dashes = false;
    while i < args.len() {
        let a = &args[i];
        let t = a.text.as_str();
        if after_dashes || a.computed || !t.starts_with('-') || t == "-" {
            out.push(a);
        } else if t == "--" {
            after_dashes = true;
        } else if value_options.contains(&t) {
            i += 1;
        }
        i += 1;
    }
    out
}

fn first_positional<'b>(args: &'b [Arg], value_options: &[&str]) -> Option<&'b Arg> {
    positionals(args, value_options).into_iter().next()
}

/// The value of the first of `names` (`-o FILE`, `--output=FILE`, and a
/// short option's value written against it, `-oFILE`).
fn option_value(args: &[Arg], names: &[&str]) -> Option<Arg> {
    for (i, a) in args.iter().enumerate() {
        for name in names {
            if a.text == *name {
                return args.get(i + 1).cloned();
            }
            if name.len() == 2
                && !name.starts_with("--")
                && a.text.len() > 2
                && a.text.starts_with(name)
            {
                return Some(Arg {
                    text: a.text[2..].to_string(),
                    ..a.clone()
                });
            }
            if let Some(v) = a.text.strip_prefix(&format!("{name}=")) {
                return Some(Arg {
                    text: v.to_string(),
                    ..a.clone()
                });
            }
        }
    }
    None
}

/// Unquoted `{a,b}` or `{1..3}`: the shell turns one word into several.
fn brace_expansion(raw: &str) -> bool {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut open = None;
    for (i, c) in raw.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match (quote, c) {
            (_, '\\') if quote != Some('\'') => escaped = true,
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, '{') => open = Some(i),
            (None, '}') => {
                if let Some(start) = open {
                    let inner = &raw[start + 1..i];
                    if inner.contains(',') || inner.contains("..") {
                        return true;
                    }
                }
                open = None;
            }
            _ => {}
        }
    }
    false
}

/// `/tmp` and `/dev/shm`: in the sandbox airlock runs an agent and its
/// commands in, each is the run's own (`/tmp` is `runs/RUN/tmp`, `/dev/shm`
/// an empty private mount), so a write there reaches nothing outside the
/// run; denying it would only refuse everyday commands (`> /tmp/log`,
/// `mktemp`). Outside a sandbox they are the host's, which hooks do not
/// guard against a determined agent anyway (README).
fn is_scratch(path: &Path) -> bool {
    path.starts_with("/tmp") || path.starts_with("/dev/shm")
}

fn is_harmless_device(path: &str) -> bool {
    matches!(
        path,
        "/dev/null" | "/dev/stdout" | "/dev/stderr" | "/dev/tty"
    ) || path
        .strip_prefix("/dev/fd/")
        .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()))
}

/// `host:path`, `user@host:path` or `rsync://...`.
fn is_remote_spec(text: &str) -> bool {
    if text.starts_with('-') {
        return false;
    }
    if text.contains("://") {
        return true;
    }
    match text.split_once(':') {
        Some((host, _)) => !host.is_empty() && !host.contains('/'),
        None => false,
    }
}
