//! What bounds the cost of an expression. CEL has no loops beyond its
//! macros (`all`, `exists`, `exists_one`, `map`, `filter`, …), each of which
//! walks one list once, so an expression's work is its size times the size
//! of the lists it walks. The expressions are the workflow's (written by the
//! repository's people, in a protected file); the lists are mostly the
//! agent's (the paths it changed, the commands it ran, the hosts it reached).
//! `cel-core` has no run-time cost budget, so the bounds are static, checked
//! with the type check at workflow load:
//!
//! - an expression is at most [`MAX_EXPRESSION_BYTES`] long and nests
//!   brackets and unary operators at most [`MAX_DEPTH`] deep (the parser
//!   recurses on them);
//! - inside the body of a macro that walks a list the agent sizes, no other
//!   list the agent sizes may be named: `diff.paths.exists(p, p in
//!   diff.added)` would cost the product of the two (10^10 steps for 100,000
//!   paths). A list inside the element (`traces.exists(t, t.argv.exists(…))`)
//!   and the lists the workflow or brief sizes (`brief.touch`, `gates`) may;
//! - `map` and `filter` (and `transformList`, `transformMap`) may not walk
//!   a list the agent sizes: cel-core builds their result by copying it at
//!   every element, so their cost is quadratic (about a second for 10,000
//!   paths, over a minute for 100,000); `exists`, `all` and `exists_one`
//!   are linear;
//! - `cel.bind` and `cel.block`, with which a few lines double a string
//!   again and again, are refused.
//!
//! The work of any accepted expression is then linear in the evidence's
//! size, times the size of the brief's and the workflow's lists.

use airlock_model::evidence::ExprError;
use cel_core::{Expr, SpannedExpr};

/// The longest expression accepted, in bytes.
pub const MAX_EXPRESSION_BYTES: usize = 4096;
/// The deepest nesting of brackets and unary operators accepted.
pub const MAX_DEPTH: usize = 32;

/// Top-level lists whose length is the workflow's or the brief's, not the
/// agent's.
const HUMAN_SIZED: &[&str] = &["brief", "gates"];

/// Before parsing: the length, and the nesting of brackets and unary
/// operators outside string literals.
pub fn check_text(expr: &str) -> Result<(), Vec<ExprError>> {
    if expr.len() > MAX_EXPRESSION_BYTES {
        return Err(vec![ExprError {
            offset: MAX_EXPRESSION_BYTES,
            len: 0,
            message: format!(
                "the expression is {} bytes, over the limit of {MAX_EXPRESSION_BYTES}; split it into several conditions",
                expr.len()
            ),
        }]);
    }
    let bytes = expr.as_bytes();
    let mut depth = 0usize;
    let mut unary_run = 0usize;
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if let Some(q) = quote {
            if b == b'\\' {
                i += 2;
                continue;
            }
            if b == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        match b {
            b'"' | b'\'' => quote = Some(b),
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if b == b'!' || b == b'-' {
            unary_run += 1;
        } else if !b.is_ascii_whitespace() {
            unary_run = 0;
        }
        if depth + unary_run > MAX_DEPTH {
            return Err(vec![ExprError {
                offset: i,
                len: 1,
                message: format!(
                    "the expression nests more than {MAX_DEPTH} levels deep here; write it as several conditions"
                ),
            }]);
        }
        i += 1;
    }
    Ok(())
}

/// After the type check: the rules on macros above.
pub fn check_nesting(ast: &SpannedExpr) -> Result<(), Vec<ExprError>> {
    let mut walker = Walker {
        scope: Vec::new(),
        agent_loop: None,
        errors: Vec::new(),
    };
    walker.walk(ast);
    if walker.errors.is_empty() {
        Ok(())
    } else {
        Err(walker.errors)
    }
}

struct Walker {
    /// Names bound by the enclosing macros (iteration and accumulator
    /// variables): they shadow the evidence's variables.
    scope: Vec<String>,
    /// The list walked by the innermost enclosing macro over an
    /// agent-sized list, as written (`diff.paths`), when there is one.
    agent_loop: Option<String>,
    errors: Vec<ExprError>,
}

impl Walker {
    /// The evidence path an expression names (`diff.paths`), when it is a
    /// chain of fields from a top-level variable not shadowed by a macro.
    fn evidence_path(&self, expr: &SpannedExpr) -> Option<String> {
        match &expr.node {
            Expr::Ident(name) | Expr::RootIdent(name) => {
                (!self.scope.iter().any(|s| s == name)).then(|| name.clone())
            }
            Expr::Member { expr, field, .. } => {
                self.evidence_path(expr).map(|p| format!("{p}.{field}"))
            }
            _ => None,
        }
    }

    /// Whether `expr` names a list of the document that the agent sizes.
    fn agent_list(&self, expr: &SpannedExpr) -> Option<String> {
        let path = self.evidence_path(expr)?;
        let root = path.split('.').next().unwrap_or_default();
        if HUMAN_SIZED.contains(&root) {
            return None;
        }
        crate::schema::is_list(&path).then_some(path)
    }

    /// Whether `expr` is a list whose length the workflow or the brief
    /// decides: one of theirs (`brief.touch`, `gates`) or a literal.
    fn human_sized(&self, expr: &SpannedExpr) -> bool {
        if matches!(expr.node, Expr::List(_)) {
            return true;
        }
        self.evidence_path(expr)
            .is_some_and(|p| HUMAN_SIZED.contains(&p.split('.').next().unwrap_or_default()))
    }

    /// Whether any part of `expr` names an agent-sized list.
    fn mentions_agent_list(&self, expr: &SpannedExpr) -> bool {
        let mut found = false;
        visit(expr, &mut |e| {
            if self.agent_list(e).is_some() {
                found = true;
            }
        });
        found
    }

    fn walk(&mut self, expr: &SpannedExpr) {
        if let Some(path) = self.agent_list(expr)
            && let Some(outer) = &self.agent_loop
        {
            self.errors.push(ExprError {
                offset: expr.span.start,
                len: expr.span.len(),
                message: format!(
                    "`{path}` is named inside a macro that walks `{outer}`: the cost would be the product of both lists' lengths, and both are the agent's to grow; test each list in its own macro, or walk a list of the element (`t.argv`)"
                ),
            });
            return;
        }
        match &expr.node {
            Expr::Comprehension(c) => {
                self.walk(&c.iter_range);
                self.walk(&c.accu_init);
                let walks_agent_list = self.mentions_agent_list(&c.iter_range);
                if accumulates(c) && !self.human_sized(&c.iter_range) {
                    self.errors.push(ExprError {
                        offset: expr.span.start,
                        len: expr.span.len(),
                        message: format!(
                            "`map` and `filter` over `{}` are not accepted: the evaluator copies the list it builds at every element, so their cost grows with the square of a list the agent sizes; use `exists`, `all` or `exists_one`",
                            self.evidence_path(&c.iter_range)
                                .unwrap_or_else(|| "a list the agent sizes".into())
                        ),
                    });
                    return;
                }
                let saved = self.agent_loop.clone();
                if walks_agent_list && self.agent_loop.is_none() {
                    self.agent_loop = Some(
                        self.evidence_path(&c.iter_range)
                            .unwrap_or_else(|| "a list of the evidence".into()),
                    );
                }
                let pushed = [&c.iter_var, &c.iter_var2, &c.accu_var]
                    .into_iter()
                    .filter(|v| !v.is_empty())
                    .count();
                for v in [&c.iter_var, &c.iter_var2, &c.accu_var] {
                    if !v.is_empty() {
                        self.scope.push(v.clone());
                    }
                }
                self.walk(&c.loop_condition);
                self.walk(&c.loop_step);
                self.agent_loop = saved;
                self.walk(&c.result);
                for _ in 0..pushed {
                    self.scope.pop();
                }
            }
            Expr::Bind { .. } => self.errors.push(ExprError {
                offset: expr.span.start,
                len: expr.span.len(),
                message: "`cel.bind` and `cel.block` are not accepted: bound values can double a string at each level; repeat the expression instead".into(),
            }),
            _ => children(expr, &mut |child| self.walk(child)),
        }
    }
}

/// Whether a macro builds a list or map as it goes (`map`, `filter`,
/// `transformList`, `transformMap`): its accumulator starts empty.
fn accumulates(c: &cel_core::ComprehensionData) -> bool {
    matches!(&c.accu_init.node, Expr::List(_) | Expr::Map(_))
}

/// Calls `f` on `expr` and every expression below it.
fn visit(expr: &SpannedExpr, f: &mut dyn FnMut(&SpannedExpr)) {
    f(expr);
    children(expr, &mut |child| visit(child, f));
}

/// Calls `f` on each direct child of `expr`.
fn children(expr: &SpannedExpr, f: &mut dyn FnMut(&SpannedExpr)) {
    match &expr.node {
        Expr::List(items) => items.iter().for_each(|i| f(&i.expr)),
        Expr::Map(entries) => entries.iter().for_each(|e| {
            f(&e.key);
            f(&e.value);
        }),
        Expr::Unary { expr, .. } => f(expr),
        Expr::Binary { left, right, .. } => {
            f(left);
            f(right);
        }
        Expr::Ternary {
            cond,
            then_expr,
            else_expr,
        } => {
            f(cond);
            f(then_expr);
            f(else_expr);
        }
        Expr::Member { expr, .. } | Expr::MemberTestOnly { expr, .. } => f(expr),
        Expr::Index { expr, index, .. } => {
            f(expr);
            f(index);
        }
        Expr::Call { expr, args } => {
            f(expr);
            args.iter().for_each(f);
        }
        Expr::Struct { type_name, fields } => {
            f(type_name);
            fields.iter().for_each(|s| f(&s.value));
        }
        Expr::Comprehension(c) => {
            f(&c.iter_range);
            f(&c.accu_init);
            f(&c.loop_condition);
            f(&c.loop_step);
            f(&c.result);
        }
        Expr::Bind { init, body, .. } => {
            f(init);
            f(body);
        }
        _ => {}
    }
}
