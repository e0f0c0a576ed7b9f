//! The pages of `airlock serve` (`airlock_web::pages`), rendered in process
//! over real runs made by the `airlock` binary: everything the agent wrote
//! comes out as text (escapes marked), never as markup; the flags show;
//! the approve form carries the digest of the proof the page shows.

mod common;

use common::{Env, write};

use airlock_core::Airlock;
use airlock_core::layout::Layout;
use airlock_web::pages::{self, PageCtx};

/// The engine over the test's repository, reading the test's key (the
/// harness's HOME), as `airlock serve` would open it.
fn open(env: &Env) -> Airlock {
    let mut layout = Layout::discover(&env.repo).unwrap();
    layout.key_dir = env.home.join(".config").join("airlock");
    Airlock::open_in(layout).unwrap()
}

fn ctx() -> PageCtx {
    PageCtx {
        csrf: "csrf-token-of-the-session".into(),
        flash: None,
        user: "Test User".into(),
    }
}

/// Every element of the page is one the pages make, with attributes they
/// use (no event handler, no `src` but our script's): maud escapes `<`
/// and `&` in text and `"` in attributes, so scanning the tags reads the
/// document as a browser would. Then no bidirectional or invisible
/// character reaches the page raw: each is an escape in a marked span.
fn assert_no_markup_from_the_agent(html: &str) {
    const TAGS: &[&str] = &[
        "!DOCTYPE",
        "html",
        "head",
        "meta",
        "title",
        "link",
        "script",
        "body",
        "header",
        "nav",
        "a",
        "span",
        "div",
        "main",
        "section",
        "h1",
        "h2",
        "h3",
        "p",
        "ul",
        "ol",
        "li",
        "dl",
        "dt",
        "dd",
        "code",
        "pre",
        "small",
        "strong",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "time",
        "form",
        "input",
        "label",
        "textarea",
        "button",
        "details",
        "summary",
        "article",
        "blockquote",
    ];
    const ATTRS: &[&str] = &[
        "lang",
        "charset",
        "name",
        "content",
        "rel",
        "href",
        "src",
        "defer",
        "class",
        "title",
        "id",
        "datetime",
        "method",
        "action",
        "type",
        "value",
        "rows",
        "maxlength",
        "required",
        "open",
        "aria-current",
        "role",
        "html",
    ];
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        let close = rest[open..].find('>').expect("every tag closes") + open;
        let tag = &rest[open + 1..close];
        rest = &rest[close + 1..];
        let tag = tag.strip_prefix('/').unwrap_or(tag);
        let name = tag.split_whitespace().next().unwrap_or("");
        assert!(
            TAGS.contains(&name),
            "element <{name}> came through as markup:\n{html}"
        );
        // Attribute names: what precedes each `=` outside quotes, and bare words.
        let mut attrs = tag[name.len()..].to_string();
        while let Some(q) = attrs.find('"') {
            let end = attrs[q + 1..].find('"').expect("quoted value closes") + q + 1;
            attrs.replace_range(q..=end, " ");
        }
        for attr in attrs
            .split(|c: char| c.is_whitespace() || c == '=')
            .filter(|a| !a.is_empty())
        {
            assert!(
                ATTRS.contains(&attr),
                "attribute {attr} on <{name}> came through:\n{html}"
            );
        }
    }
    assert_eq!(
        html.matches("<script").count(),
        1,
        "one script element, ours:\n{html}"
    );
    assert!(html.contains("<script src=\"/static/app.js\" defer></script>"));
    assert_eq!(html.matches(" src=\"").count(), 1, "{html}");
    for c in html.chars() {
        assert!(
            !airlock_core::hostile::is_hidden_format(c)
                && (!c.is_control() || c == '\n' || c == '\t'),
            "raw U+{:04X} in the page",
            c as u32
        );
    }
}

/// The page's text as a reader sees it: tags dropped, entities decoded.
fn visible(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The `value` of the hidden `digest` input of the form posting to `action`.
fn form_digest(html: &str, action: &str) -> String {
    let form = html
        .find(&format!("action=\"{action}\""))
        .unwrap_or_else(|| panic!("no form posting to {action}:\n{html}"));
    let rest = &html[form..];
    let end = rest.find("</form>").unwrap();
    let field = rest[..end]
        .find("name=\"digest\" value=\"")
        .expect("the form carries a digest");
    let value = &rest[field + "name=\"digest\" value=\"".len()..];
    value[..value.find('"').unwrap()].to_string()
}

const HOSTILE_BRIEF: &str = concat!(
    r#"title = "Fix <script>alert('title')</script> \u202Egreeting\u202C""#,
    "\nobjective = \"greet <img src=x onerror=alert(1)> \u{200b}politely \u{202e}txt.exe\"\n",
    "non_goals = [\"</pre><iframe src=//evil>\"]\n",
    "touch = [\"src/**\", \"tests/**\", \"ci/pipeline.yml\"]\nchecks = [\"build\", \"test\"]\n",
    "rollback = \"revert \u{61c} it\"\n",
);

#[test]
fn a_hostile_run_renders_as_text_with_escapes_marked_and_flags_shown() {
    let env = Env::new();
    let (run, wt) = env.start(HOSTILE_BRIEF);
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    // A file name and lines that are markup and Trojan Source.
    write(
        &wt.join("src/<script>alert(1)<\\script>\u{202e}txt.sh"),
        "access = \"user\u{202e} \u{2066}// admin\u{2069}\u{2066}\"\n<img src=x onerror=alert(2)>\n\x1b[2J\r\n",
    );
    // Gate output the agent controls.
    write(
        &wt.join("tests/run.sh"),
        "#!/bin/sh\nprintf '<script>alert(3)</script>\\342\\200\\256gate\\n'\nsh src/app.sh | grep -q hello\n",
    );
    // A protected path the brief names explicitly: allowed, flagged.
    write(
        &wt.join("ci/pipeline.yml"),
        "steps: [\"<svg onload=alert(4)>\"]\n",
    );
    env.json(&["check", &run], 0);
    env.json(&["submit", &run], 0);
    let shown = env.json(&["show", &run], 0);
    let digest = shown["proof"]["digest"].as_str().unwrap().to_string();
    assert_eq!(digest.len(), 64);

    let al = open(&env);
    let html = pages::run(&al, &run, None, &ctx()).unwrap().into_string();
    assert_no_markup_from_the_agent(&html);
    // What the agent wrote is there, as text (however it is coloured),
    // each escape shown as its code and marked with the code point.
    let seen = visible(&html);
    for shown in [
        "Fix <script>alert('title')</script> \\u{202e}greeting\\u{202c}",
        "greet <img src=x onerror=alert(1)> \\u{200b}politely \\u{202e}txt.exe",
        "</pre><iframe src=//evil>",
        "src/<script>alert(1)<\\script>\\u{202e}txt.sh",
        "+access = \"user\\u{202e} \\u{2066}// admin\\u{2069}\\u{2066}\"",
        "+<img src=x onerror=alert(2)>",
        "+\\x1b[2J\\r",
        "<script>alert(3)</script>\\u{202e}gate",
        "+steps: [\"<svg onload=alert(4)>\"]",
    ] {
        assert!(seen.contains(shown), "missing {shown:?} in:\n{seen}");
    }
    for code in [
        "U+202E", "U+202C", "U+200B", "U+2066", "U+2069", "U+001B", "U+000D",
    ] {
        assert!(
            html.contains(&format!("<span class=\"esc\" title=\"{code}\">")),
            "{code} not marked:\n{html}"
        );
    }
    // The diff is coloured (a shell file here), the agent's text inside
    // the colours still text.
    assert!(html.contains("<span class=\"hl-"), "{html}");
    // The protected path: a risk flag badge and a flag in the file list.
    // The badge's title says what the flag means, and so does the text
    // beside it (not only the code).
    assert!(
        html.contains(
            "class=\"badge flag danger\" title=\"protected-path: protected path touched: "
        ),
        "{html}"
    );
    assert!(
        html.contains(">protected-path</span> <span class=\"message\">protected path touched: "),
        "{html}"
    );
    assert!(
        html.contains("title=\"protected: ci/**\">protected</span>"),
        "{html}"
    );
    // Decisions: the forms carry the session's token, and the approve form
    // the digest of the proof this page shows (the proof's own).
    let href = format!("/runs/{run}");
    assert_eq!(form_digest(&html, &format!("{href}/approve")), digest);
    assert_eq!(form_digest(&html, &format!("{href}/reject")), digest);
    assert_eq!(
        html.matches("name=\"csrf\" value=\"csrf-token-of-the-session\"")
            .count(),
        3
    );
    assert!(html.contains(&format!("sha256:{digest}")));
    // The evidence comes before the decision: the brief, the diff, the
    // checks, the proof and the history all above the forms, which a link
    // at the top reaches; a diff line is not followed by a newline (each
    // line is a block: a newline too would double-space the diff).
    let forms = html.find(" id=\"decide\"").expect("the decision section");
    for evidence in [
        "<section class=\"brief\"",
        "<section class=\"diff\"",
        "<pre class=\"diff\">",
        "<section class=\"proof\"",
    ] {
        let at = html
            .find(evidence)
            .unwrap_or_else(|| panic!("no {evidence} in:\n{html}"));
        assert!(at < forms, "{evidence} comes after the forms:\n{html}");
    }
    assert!(
        html.find("href=\"#decide\">Decide ↓</a>")
            .expect("a link to the forms")
            < forms,
        "{html}"
    );
    assert!(!html.contains("</span>\n<span class=\"l "), "{html}");

    // The queue lists it, its label escaped, its flag a badge.
    let queue = pages::queue(&al, &ctx()).unwrap().into_string();
    assert_no_markup_from_the_agent(&queue);
    assert!(queue.contains(&format!("href=\"{href}\"")), "{queue}");
    assert!(
        queue.contains("Fix &lt;script&gt;alert('title')&lt;/script&gt;"),
        "{queue}"
    );
    // The queue's flag: a short label, the message in its title.
    assert!(
        queue.contains(
            "class=\"badge flag danger protected-path\" title=\"protected-path: protected path touched: "
        ),
        "{queue}"
    );
    assert!(queue.contains(">protected path</span>"), "{queue}");
    assert!(queue.contains(">build</span>"), "{queue}");

    // A reviewer's words are hostile too (they quote the agent): rejected,
    // the run moves to the history with its reason as text.
    env.json(
        &[
            "reject",
            &run,
            "--reason",
            "no <script>alert(5)</script> \u{202e}here",
        ],
        0,
    );
    let al = open(&env);
    let history = pages::history(&al, &ctx()).unwrap().into_string();
    assert_no_markup_from_the_agent(&history);
    assert!(
        history.contains(
            "no &lt;script&gt;alert(5)&lt;/script&gt; <span class=\"esc\" title=\"U+202E\">"
        ),
        "{history}"
    );
    let page = pages::run(&al, &run, None, &ctx()).unwrap().into_string();
    assert_no_markup_from_the_agent(&page);
    assert!(
        !page.contains("action=\""),
        "no decision form on a rejected run:\n{page}"
    );
    let stats = pages::stats(&al, &ctx()).unwrap().into_string();
    assert_no_markup_from_the_agent(&stats);
    assert!(
        stats.contains("<td>bugfix</td>") || stats.contains("Runs per class"),
        "{stats}"
    );
}

#[test]
fn a_path_outside_the_briefs_touch_is_flagged_out_of_scope() {
    let env = Env::new();
    let (run, wt) = env.start(common::BRIEF);
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    write(&wt.join("docs/guide.md"), "# Guide\nmore\n");
    let al = open(&env);
    let html = pages::run(&al, &run, None, &ctx()).unwrap().into_string();
    assert_no_markup_from_the_agent(&html);
    let list_item = |path: &str| {
        let at = html
            .find(&format!("<code>{path}</code>"))
            .unwrap_or_else(|| panic!("{path} listed:\n{html}"));
        html[at..at + html[at..].find("</li>").unwrap()].to_string()
    };
    assert!(
        list_item("docs/guide.md").contains(">out of scope</span>"),
        "{html}"
    );
    assert!(!list_item("src/app.sh").contains("out of scope"), "{html}");
    // Not submitted: nothing to approve, and the page says so.
    assert!(!html.contains("/approve\""), "{html}");
    assert!(html.contains("No decision to make"), "{html}");
}

#[test]
fn an_unknown_run_is_the_engines_not_found_error() {
    let env = Env::new();
    let al = open(&env);
    let err = pages::run(&al, "r-nope", None, &ctx()).unwrap_err();
    assert!(
        matches!(err.code(), airlock_core::Code::UnknownRun),
        "{err}"
    );
}

#[test]
fn a_redirected_run_links_its_rounds_and_shows_the_diff_since_one() {
    let env = Env::new();
    let (run, wt) = env.submitted();
    env.json(&["redirect", &run, "--reason", "also a <test>"], 0);
    write(&wt.join("tests/more.sh"), "#!/bin/sh\ntrue\n");
    env.json(&["check", &run], 0);
    env.json(&["submit", &run], 0);
    let al = open(&env);
    let whole = pages::run(&al, &run, None, &ctx()).unwrap().into_string();
    assert_no_markup_from_the_agent(&whole);
    assert!(
        whole.contains(&format!("href=\"/runs/{run}?since=1\"")),
        "{whole}"
    );
    // The redirect's words, as the agent reads them, in the history.
    assert!(visible(&whole).contains("also a <test>"), "{whole}");
    let since = pages::run(&al, &run, Some(1), &ctx())
        .unwrap()
        .into_string();
    assert_no_markup_from_the_agent(&since);
    let seen = visible(&since);
    assert!(seen.contains("Diff since round 1"), "{seen}");
    assert!(seen.contains("tests/more.sh"), "{seen}");
    assert!(!seen.contains("+++ b/src/app.sh"), "{seen}");
    // The queue and the history are paged (100 a page): with few runs,
    // one page and no page links; a page past the end says so.
    let queue = pages::queue(&al, &ctx()).unwrap().into_string();
    assert!(queue.contains("1 run(s), oldest first."), "{queue}");
    assert!(!queue.contains("class=\"pager\""), "{queue}");
    let past = pages::queue_page(&al, 2, &ctx()).unwrap().into_string();
    assert!(
        visible(&past).contains("There is no page 2: 1 run(s) fill 1 page(s)."),
        "{past}"
    );
    assert!(!past.contains(&run), "{past}");
    let past = pages::history_page(&al, 3, &ctx()).unwrap().into_string();
    assert!(
        visible(&past).contains("There is no page 3: 0 run(s) fill 1 page(s)."),
        "{past}"
    );
    // A round with nothing to compare is the engine's refusal.
    let err = pages::run(&al, &run, Some(2), &ctx()).unwrap_err();
    assert!(err.to_string().contains("no later round"), "{err}");
    // In words a page can show too: no CLI flag named.
    for n in [2, 0] {
        let err = pages::run(&al, &run, Some(n), &ctx()).unwrap_err();
        let said = err.to_string();
        assert!(
            said.contains(&format!("no diff since round {n}: ")),
            "{said}"
        );
        assert!(!said.contains("--since-round"), "{said}");
    }
}

/// With more runs waiting than a page holds, the queue's first page shows
/// the oldest 100, says how many more wait and links to the next page,
/// which holds the rest.
#[test]
fn the_queue_shows_a_hundred_runs_a_page_and_counts_the_rest() {
    let env = Env::new();
    let runs: Vec<String> = (0..=pages::PAGE_SIZE).map(|_| env.submitted().0).collect();
    let al = open(&env);
    let order: Vec<String> = airlock_core::inspect::queue(&al)
        .unwrap()
        .queue
        .into_iter()
        .map(|w| w.run)
        .collect();
    assert_eq!(order.len(), runs.len());
    let first = pages::queue(&al, &ctx()).unwrap().into_string();
    let linked = |html: &str, run: &str| html.contains(&format!("href=\"/runs/{run}\""));
    assert!(order[..100].iter().all(|r| linked(&first, r)), "{first}");
    assert!(!linked(&first, &order[100]), "{first}");
    assert!(
        visible(&first).contains("101 run(s), oldest first. 1 more after these (100 a page)."),
        "{first}"
    );
    assert!(first.contains("rel=\"next\" href=\"/?page=2\""), "{first}");
    assert!(
        visible(&first).contains("page 1 of 2 (runs 1–100 of 101)"),
        "{first}"
    );
    let second = pages::queue_page(&al, 2, &ctx()).unwrap().into_string();
    assert!(linked(&second, &order[100]), "{second}");
    assert!(!linked(&second, &order[0]), "{second}");
    assert!(
        second.contains("rel=\"prev\" href=\"/?page=1\""),
        "{second}"
    );
}
