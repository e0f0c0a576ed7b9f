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
            self.poisoned_variable(name);
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
                        self.poisoned_variable(name);
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
            ast::AssignmentName::VariableName(n) | ast::AssignmentName::ArrayElementName(n, _) => {
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
    fn poisoned_variable(&mut self, name: &str) {
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
        ];
        if POISON.contains(&name) {
            self.unknown(format!(
                "setting {name} changes which program a command name runs"
            ));
        }
    }

    fn redirect(&mut self, redirect: &ast::IoRedirect) {
        use ast::IoFileRedirectKind as K;
        use ast::IoFileRedirectTarget as T;
        match redirect {
            ast::IoRedirect::File(_, kind, target) => match (kind, target) {
                (_, T::ProcessSubstitution(kind, sub)) => self.process_substitution(kind, sub),
                (_, T::Fd(_)) => {}
                (K::Read, T::Filename(w)) => {
                    self.word(&w.value);
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
                    self.write_target(&arg, "a redirection writes");
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
            Location::Inside => {}
            Location::Outside(path) if scratch_ok && is_scratch(&path) => {}
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
        match base.as_str() {
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
            "busybox" => match args.first().and_then(Arg::exact) {
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
            "docker" | "podman" | "nerdctl" | "buildah" => {
                self.subcommand_rule(&base, args, &["push"], &["pull", "login", "search"])
            }
            "helm" => self.subcommand_rule(
                &base,
                args,
                &["push"],
                &["pull", "repo", "install", "upgrade"],
            ),
            "gem" => self.subcommand_rule(
                &base,
                args,
                &["push", "yank", "owner"],
                &["install", "update", "fetch", "sources"],
            ),
            "go" => {
                let sub = first_positional(args, &[]).map(|a| a.text.clone());
                let second = positionals(args, &[]).get(1).map(|a| a.text.clone());
                match (sub.as_deref(), second.as_deref()) {
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
            | "ssh-copy-id" | "websocat" | "grpcurl" => self.deny(
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
            "python" | "python3" | "perl" | "ruby" | "node" | "php" | "lua" | "deno" => {
                if base.starts_with("python")
                    && args.first().is_some_and(|a| a.text == "-m")
                    && args.get(1).is_some_and(|a| a.text == "pip")
                {
                    return self.pip("pip", &args[2..]);
                }
                let reads_stdin = args.is_empty() || args.iter().all(|a| a.text == "-");
                if reads_stdin && let Stdin::Opaque(source) = self.stdin {
                    self.unknown(format!("`{base}` runs a program read from {source}"));
                }
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
            "tar" | "bsdtar" => self.tar(args),
            "unzip" => {
                if let Some(dir) = option_value(args, &["-d"]) {
                    self.write_target(&dir, "`unzip -d` writes");
                }
            }
            "hub" => self.git(args),
            // Wrappers whose options the hook does not model one by one:
            // every known command word after them is judged.
            "strace" | "ltrace" | "valgrind" | "proxychains" | "proxychains4" | "torsocks"
            | "firejail" | "systemd-run" | "unshare" | "nsenter" | "chroot" | "ssh-agent"
            | "dbus-run-session" | "faketime" | "catchsegv" | "parallel" | "flock" | "fakeroot"
            | "xvfb-run" | "caffeinate" | "op" | "dotenv" | "with-contenv" => {
                if base == "flock"
                    && let Some(cmd) = option_value(args, &["-c", "--command"])
                {
                    match cmd.exact() {
                        Some(text) => self.nested(text),
                        None => self.unknown("`flock -c` runs a computed string".into()),
                    }
                }
                self.run_each_suffix(&base, args);
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
                    self.poisoned_variable(&name);
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
                None if a.computed => {
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
        let sub = first_positional(
            args,
            &["--manifest-path", "-Z", "--config", "--color", "-C"],
        );
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
            "install" | "add" | "search" => self.deny(
                Rule::Network,
                format!("`cargo {}` downloads from a registry", sub.text),
                EGRESS,
            ),
            "run" => {
                // `cargo run -p airlock-cli -- approve ...`
                let runs_airlock = args.iter().any(|a| a.text.contains("airlock"));
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
        match sub {
            Some("publish") => self.deny(
                Rule::Publish,
                format!("`{base} publish` publishes a package"),
                PROPOSE,
            ),
            Some(
                "install" | "i" | "add" | "ci" | "update" | "up" | "upgrade" | "dlx" | "exec" | "x"
                | "create" | "install-test" | "it",
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
        let sub = first_positional(args, &[]).map(|a| a.text.as_str());
        if matches!(sub, Some("install" | "download" | "wheel" | "run")) && !offline {
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
        match (sub, second) {
            (Some("publish"), _) => self.deny(
                Rule::Publish,
                format!("`{base} publish` publishes a package"),
                PROPOSE,
            ),
            (Some("add" | "install" | "lock" | "update" | "sync"), _)
            | (Some("pip" | "tool"), Some("install"))
                if !offline =>
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
        let Some(sub) = first_positional(args, &[]) else {
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

    fn sed(&mut self, args: &[Arg]) {
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

/// The value of the first of `names` (`-o FILE`, `--output=FILE`).
fn option_value(args: &[Arg], names: &[&str]) -> Option<Arg> {
    for (i, a) in args.iter().enumerate() {
        for name in names {
            if a.text == *name {
                return args.get(i + 1).cloned();
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
