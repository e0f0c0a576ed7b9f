//! The CEL evaluator against the evidence schema: what the type check
//! refuses (with positions), what evaluation gives, and that the agent's
//! data stays data and costs at most linear work.

use airlock_cel::Cel;
use airlock_model::evidence::{Evaluator, Evidence, ExprError, GateFacts, TestCounts, TraceFacts};

fn errors(expr: &str) -> Vec<ExprError> {
    Cel::new().check(expr).expect_err(expr)
}

/// The text an error points at.
fn pointed<'a>(expr: &'a str, e: &ExprError) -> &'a str {
    &expr[e.offset..e.offset + e.len]
}

fn evidence() -> Evidence {
    let mut e = Evidence::default();
    e.run.class = "bugfix".into();
    e.run.lane = "governed".into();
    e.diff.files_changed = 3;
    e.diff.insertions = 40;
    e.diff.paths = vec![
        "migrations/001.sql".into(),
        "src/lib.rs".into(),
        "tests/a.rs".into(),
    ];
    e.brief.touch = vec!["src/**".into(), "tests/**".into()];
    e.gates = vec![GateFacts {
        name: "test".into(),
        status: "passed".into(),
        duration_ms: 1200,
        tests: TestCounts {
            ran: 12,
            passed: 12,
            failed: 0,
            skipped: 0,
        },
    }];
    e.tests = TestCounts {
        ran: 12,
        passed: 12,
        failed: 0,
        skipped: 0,
    };
    e.traces = vec![TraceFacts {
        argv: vec!["curl".into(), "https://x.test".into()],
        exit: 0,
        duration_ms: 5,
        files_changed: 0,
    }];
    e.class.clean_rate = 0.5;
    e
}

fn eval(exprs: &[&str], evidence: &Evidence) -> Vec<Result<bool, String>> {
    let cel = Cel::new();
    for e in exprs {
        cel.check(e).unwrap_or_else(|err| panic!("{e}: {err:?}"));
    }
    cel.eval_all(exprs, evidence)
}

#[test]
fn the_issue_s_example_type_checks_and_evaluates() {
    let expr = r#"diff.files_changed > 30 && !brief.touch.exists(g, g.startsWith("migrations/"))"#;
    assert_eq!(eval(&[expr], &evidence()), vec![Ok(false)]);
    let expr = r#"diff.files_changed > 2 && diff.paths.exists(p, p.startsWith("migrations/")) && !brief.touch.exists(g, g.startsWith("migrations/"))"#;
    assert_eq!(eval(&[expr], &evidence()), vec![Ok(true)]);
}

#[test]
fn every_part_of_the_document_is_reachable() {
    let exprs = [
        r#"run.class == "bugfix" && run.lane == "governed""#,
        r#"gates.all(g, g.status == "passed" && g.tests.failed == 0)"#,
        "tests.ran >= 12 && tests.skipped == 0",
        r#"traces.exists(t, t.argv.exists(a, a == "curl"))"#,
        "class.clean_rate < 0.9 && class.runs == 0",
        "size(network.hosts) == 0 && secrets.findings == 0 && size(protected.paths) == 0",
        r#"actions.all(a, a.kind != "http") && version == "airlock.evidence/v1""#,
    ];
    assert_eq!(eval(&exprs, &evidence()), vec![Ok(true); exprs.len()]);
}

#[test]
fn an_unknown_field_is_refused_at_its_position() {
    let expr = "diff.files_chnged > 3";
    let errs = errors(expr);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].message.contains("files_chnged"), "{errs:?}");
    assert!(pointed(expr, &errs[0]).contains("files_chnged"), "{errs:?}");
}

#[test]
fn an_unknown_field_inside_a_macro_is_refused() {
    let expr = r#"gates.exists(g, g.stauts == "failed")"#;
    let errs = errors(expr);
    assert!(
        errs.iter().any(|e| e.message.contains("stauts")),
        "{errs:?}"
    );
}

#[test]
fn an_unknown_variable_and_function_are_refused() {
    let expr = "dif.files_changed > 3";
    let errs = errors(expr);
    assert!(errs[0].message.contains("dif"), "{errs:?}");
    assert_eq!(pointed(expr, &errs[0]), "dif");
    let errs = errors("diff.paths.frobnicate()");
    assert!(!errs.is_empty());
}

#[test]
fn a_non_bool_expression_is_refused() {
    let errs = errors("diff.files_changed + 1");
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].message.contains("`int`") && errs[0].message.contains("`bool`"),
        "{errs:?}"
    );
    let errs = errors(r#"run.lane"#);
    assert!(errs[0].message.contains("`string`"), "{errs:?}");
}

#[test]
fn a_syntax_error_is_refused_at_its_position() {
    let expr = "diff.files_changed > ";
    let errs = errors(expr);
    assert!(errs[0].message.starts_with("syntax:"), "{errs:?}");
    assert!(errs[0].offset >= 19, "{errs:?}");
    let errs = errors("run.lane == 'a' &&& true");
    assert!(!errs.is_empty());
}

#[test]
fn a_type_mismatch_is_refused() {
    let errs = errors(r#"diff.files_changed > "30""#);
    assert!(errs[0].message.contains("overload"), "{errs:?}");
}

#[test]
fn agent_data_that_looks_like_cel_stays_data() {
    let mut e = evidence();
    let hostile = [
        r#"" || true || ""#,
        r#"x" == "y" || true || ""#,
        "x\") || true || (\"",
        "a\nb' || true",
        "true",
        "diff.files_changed > 0",
        "\\\" + '",
    ];
    e.diff.paths = hostile.iter().map(|s| s.to_string()).collect();
    e.brief.objective = hostile.join("\n");
    e.run.class = "\" || true || \"".into();
    let exprs = [
        r#"diff.paths.exists(p, p == "src/lib.rs")"#,
        r#"run.class == "bugfix""#,
        r#"brief.objective.contains("deploy")"#,
        r#"diff.paths.exists(p, p == "true")"#,
    ];
    assert_eq!(
        eval(&exprs, &e),
        vec![Ok(false), Ok(false), Ok(false), Ok(true)]
    );
}

/// The control for the test above: the same payloads pasted into the text of
/// an expression change what it says. Bound as values they cannot.
#[test]
fn the_payloads_do_change_an_expression_pasted_together() {
    let cel = Cel::new();
    let pasted = format!(r#""{}" == "src/lib.rs""#, r#"x" == "y" || true || ""#);
    cel.check(&pasted).unwrap();
    assert_eq!(cel.eval_all(&[&pasted], &evidence()), vec![Ok(true)]);
}

#[test]
fn an_evaluation_error_is_reported_not_a_value() {
    let out = eval(
        &["diff.files_changed / (tests.ran - tests.ran) > 0"],
        &evidence(),
    );
    assert!(matches!(&out[0], Err(m) if m.contains("divi")), "{out:?}");
}

#[test]
fn a_cross_product_of_agent_lists_is_refused() {
    let expr = "diff.paths.exists(p, p in diff.added)";
    let errs = errors(expr);
    assert_eq!(pointed(expr, &errs[0]), "diff.added", "{errs:?}");
    assert!(errs[0].message.contains("product"), "{errs:?}");
    let errs = errors("traces.all(t, network.hosts.exists(h, t.argv.exists(a, a == h)))");
    assert!(errs[0].message.contains("network.hosts"), "{errs:?}");
    // The element's own lists, and the brief's and the workflow's, may be walked inside.
    for ok in [
        r#"traces.exists(t, t.argv.exists(a, a == "curl"))"#,
        r#"diff.paths.all(p, brief.touch.exists(g, p.startsWith(g)))"#,
        r#"brief.touch.exists(g, diff.paths.exists(p, p.startsWith(g)))"#,
        r#"diff.paths.exists(p, p.endsWith(".sql")) && diff.added.exists(p, p.endsWith(".sql"))"#,
    ] {
        Cel::new()
            .check(ok)
            .unwrap_or_else(|e| panic!("{ok}: {e:?}"));
    }
}

#[test]
fn bind_and_deep_nesting_and_long_expressions_are_refused() {
    let errs = errors(r#"cel.bind(x, brief.objective + brief.objective, x.size() > 0)"#);
    assert!(errs[0].message.contains("cel.bind"), "{errs:?}");
    let deep = format!("{}true{}", "(".repeat(200), ")".repeat(200));
    assert!(errors(&deep)[0].message.contains("levels deep"));
    let nots = format!("{}true", "!".repeat(5000));
    assert!(!errors(&nots).is_empty());
    let long = format!("true{}", " && true".repeat(1000));
    assert!(errors(&long)[0].message.contains("over the limit"));
}

#[test]
fn a_hundred_thousand_paths_evaluate() {
    let mut e = evidence();
    e.diff.paths = (0..100_000)
        .map(|i| format!("src/m{i}/file{i}.rs"))
        .collect();
    e.diff.added = e.diff.paths.clone();
    e.diff.files_changed = 100_000;
    let exprs = [
        r#"diff.paths.exists(p, p.startsWith("migrations/"))"#,
        r#"diff.paths.all(p, brief.touch.exists(g, p.startsWith(g.replace("**", ""))))"#,
        r#"diff.paths.exists_one(p, p == "src/m7/file7.rs")"#,
        r#"brief.touch.map(g, g.replace("**", "")).exists(g, diff.paths.exists(p, p.startsWith(g)))"#,
        r#"diff.paths.exists(p, p.endsWith("/file99999.rs"))"#,
        r#""src/m5/file5.rs" in diff.added"#,
    ];
    assert_eq!(
        eval(&exprs, &e),
        vec![Ok(false), Ok(true), Ok(true), Ok(true), Ok(true), Ok(true)]
    );
}

#[test]
fn map_and_filter_over_agent_lists_are_refused() {
    for expr in [
        r#"diff.paths.filter(p, p.endsWith(".sql")).size() > 10"#,
        "diff.paths.map(p, p.size()).exists(n, n > 30)",
        "traces.exists(t, t.argv.map(a, a.size()).exists(n, n > 3))",
    ] {
        let errs = errors(expr);
        assert!(errs[0].message.contains("square"), "{expr}: {errs:?}");
    }
    // Over the brief's or the workflow's lists they are fine.
    Cel::new()
        .check(r#"gates.filter(g, g.status == "failed").size() == 0"#)
        .unwrap();
}

#[test]
fn long_chains_within_the_length_limit_do_not_overflow() {
    // Each is under 4 KiB and flat in brackets, but a deep tree for the
    // parser and the checker (test threads have 2 MiB of stack; the CLI 8).
    let members = format!("run{} == \"\"", ".id".repeat(1000));
    let sums = format!("{} > 0", vec!["diff.insertions"; 200].join(" + "));
    let ands = vec!["true"; 500].join(" && ");
    let cel = Cel::new();
    assert!(cel.check(&members).is_err());
    cel.check(&sums).unwrap();
    cel.check(&ands).unwrap();
    assert_eq!(
        cel.eval_all(&[&sums, &ands], &evidence()),
        vec![Ok(true), Ok(true)]
    );
}

/// Only UTC and the fixed-offset zones are built in (`.cargo/config.toml`,
/// `CHRONO_TZ_TIMEZONE_FILTER`): every IANA zone's table would be relocated
/// at each start of `airlock`. A named zone outside them is an evaluation
/// error naming it, never a wrong hour; offsets written out still work.
#[test]
fn time_zones_are_utc_fixed_offsets_and_etc_only() {
    let noon = "timestamp('2026-01-15T12:00:00Z')";
    let built_in = [
        format!("{noon}.getHours('UTC') == 12"),
        format!("{noon}.getHours('Etc/GMT-1') == 13"),
        format!("{noon}.getHours('+05:30') == 17"),
        format!("{noon}.getHours('-03:00') == 9"),
    ];
    let built_in: Vec<&str> = built_in.iter().map(String::as_str).collect();
    let out = eval(&built_in, &evidence());
    assert!(out.iter().all(|r| r == &Ok(true)), "{out:?}");

    let named = format!("{noon}.getHours('Europe/Paris') == 13");
    let out = eval(&[&named], &evidence());
    assert!(
        matches!(&out[0], Err(m) if m.contains("Europe/Paris")),
        "{out:?}"
    );
}
