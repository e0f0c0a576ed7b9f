//! The routes: pages (GET) and decisions (POST). Every handler runs after
//! `guard` (the host, the session, and for a POST its origin); a POST
//! checks its anti-forgery token, its size and its fields before the
//! engine sees anything, and the engine decides as it does for the CLI.

use std::sync::Arc;

use airlock_core::decide::{self, Via};
use airlock_core::{Airlock, Code, Error};
use axum::body::{Body, to_bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Extension, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use maud::Markup;

use super::guard::query_value;
use super::refusal::{engine_error, internal, page};
use super::session::{Session, same};
use super::{BODY_LIMIT, REASON_LIMIT, Shared};
use crate::pages::{self, Flash, PageCtx};

/// Runs `work` on the blocking pool with the repository opened, as a CLI
/// command would open it.
async fn engine<T: Send + 'static>(
    shared: &Arc<Shared>,
    work: impl FnOnce(&mut Airlock) -> airlock_core::Result<T> + Send + 'static,
) -> Result<T, Response> {
    let layout = shared.layout.clone();
    match tokio::task::spawn_blocking(move || {
        let mut al = Airlock::open_in(layout)?;
        work(&mut al)
    })
    .await
    {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(engine_error(&error)),
        Err(_) => Err(internal("The server failed while handling this request")),
    }
}

fn ctx(shared: &Shared, session: &Session) -> PageCtx {
    PageCtx {
        csrf: session.csrf.clone(),
        flash: shared.sessions.take_flash(),
        user: shared.user.clone(),
    }
}

/// Renders a page with the engine; the flash is taken only for a page
/// that renders.
async fn render(
    shared: Arc<Shared>,
    session: Session,
    draw: impl FnOnce(&Airlock, &PageCtx) -> airlock_core::Result<Markup> + Send + 'static,
) -> Response {
    let ctx = ctx(&shared, &session);
    match engine(&shared, move |al| draw(al, &ctx)).await {
        Ok(markup) => Html(markup.into_string()).into_response(),
        Err(refused) => refused,
    }
}

pub async fn queue(
    State(shared): State<Arc<Shared>>,
    Extension(s): Extension<Session>,
    request: Request,
) -> Response {
    match page_number(&request, "/") {
        Ok(n) => render(shared, s, move |al, ctx| pages::queue_page(al, n, ctx)).await,
        Err(refused) => refused,
    }
}

pub async fn history(
    State(shared): State<Arc<Shared>>,
    Extension(s): Extension<Session>,
    request: Request,
) -> Response {
    match page_number(&request, "/history") {
        Ok(n) => render(shared, s, move |al, ctx| pages::history_page(al, n, ctx)).await,
        Err(refused) => refused,
    }
}

/// `?page=N` (from 1; 1 without it), or the page saying it is no page.
fn page_number(request: &Request, path: &str) -> Result<usize, Response> {
    match query_value(request.uri().query(), "page") {
        None => Ok(1),
        Some(n) => match n.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(page(
                StatusCode::BAD_REQUEST,
                "`page` is not a page number",
                &[format!(
                    "the address asks for page `{n}`; pages count from 1"
                )],
                &format!("Open {path}, and follow its page links."),
            )),
        },
    }
}

pub async fn stats(
    State(shared): State<Arc<Shared>>,
    Extension(s): Extension<Session>,
) -> Response {
    render(shared, s, pages::stats).await
}

pub async fn run(
    State(shared): State<Arc<Shared>>,
    Extension(s): Extension<Session>,
    id: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let id = match run_id(id) {
        Ok(id) => id,
        Err(refused) => return refused,
    };
    let since = match query_value(request.uri().query(), "since") {
        None => None,
        Some(n) => match n.parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => {
                return page(
                    StatusCode::BAD_REQUEST,
                    "`since` is not a round number",
                    &[format!("the address asks for the diff since round `{n}`")],
                    &format!("Open /runs/{id}, and pick a round from its list."),
                );
            }
        },
    };
    render(shared, s, move |al, ctx| pages::run(al, &id, since, ctx)).await
}

pub async fn asset(name: Result<Path<String>, PathRejection>) -> Response {
    let Ok(Path(name)) = name else {
        return not_found().await;
    };
    match pages::asset(&name) {
        Some((kind, bytes)) => ([(header::CONTENT_TYPE, kind)], bytes).into_response(),
        None => not_found().await,
    }
}

pub async fn not_found() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "No such page",
        &[],
        "The queue is at /; each run's page at /runs/RUN.",
    )
}

pub async fn wrong_method() -> Response {
    page(
        StatusCode::METHOD_NOT_ALLOWED,
        "Only the review pages' forms decide",
        &["pages are read with GET; a decision is a POST from a run's page, and nothing else changes anything".into()],
        "Open the run's page and use its forms.",
    )
}

/// A run's id as the engine makes them (letters, digits, `-`, `_`), so an
/// address cannot carry anything else to the store. A segment that does
/// not decode (invalid UTF-8) is no run either, said as a page.
fn run_id(given: Result<Path<String>, PathRejection>) -> Result<String, Response> {
    if let Ok(Path(id)) = given
        && !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Ok(id);
    }
    Err(page(
        StatusCode::NOT_FOUND,
        "No such run",
        &["a run's id has letters, digits, `-` and `_` only".into()],
        "The queue at / links to every run waiting for a decision.",
    ))
}

/// A decision's form, read whole before anything is decided.
struct Form {
    csrf: Option<String>,
    digest: Option<String>,
    reason: Option<String>,
}

/// Reads and checks a decision's request: its size, its type, its fields
/// and its anti-forgery token.
async fn read_form(session: &Session, request: Request) -> Result<Form, Response> {
    let too_large = |what: String| {
        page(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Refused: the form is too large",
            &[what, "nothing was recorded".into()],
            &format!("Shorten the reason (at most {REASON_LIMIT} bytes) and send the form again."),
        )
    };
    let bad = |what: String| {
        page(
            StatusCode::BAD_REQUEST,
            "Refused: the form is not one of the review pages'",
            &[what, "nothing was recorded".into()],
            "Decide from the run's page of this server.",
        )
    };
    let urlencoded = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !urlencoded {
        return Err(bad(
            "a decision is a form (application/x-www-form-urlencoded)".into(),
        ));
    }
    let body = request.into_body();
    let bytes = match to_bytes(body, BODY_LIMIT).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return Err(too_large(format!(
                "the request's body is over {} KiB",
                BODY_LIMIT / 1024
            )));
        }
    };
    let mut form = Form {
        csrf: None,
        digest: None,
        reason: None,
    };
    for (key, value) in form_urlencoded::parse(&bytes) {
        let slot = match key.as_ref() {
            "csrf" => &mut form.csrf,
            "digest" => &mut form.digest,
            "reason" => &mut form.reason,
            _ => continue,
        };
        if slot.is_some() {
            return Err(bad(format!("the field `{key}` is given twice")));
        }
        *slot = Some(value.into_owned());
    }
    let csrf_ok = form
        .csrf
        .as_deref()
        .is_some_and(|given| same(given.as_bytes(), session.csrf.as_bytes()));
    if !csrf_ok {
        return Err(page(
            StatusCode::FORBIDDEN,
            "Refused: the form's anti-forgery token is missing or wrong",
            &[
                "every decision's form carries the session's token; this one did not".into(),
                "another page may be trying to make your browser decide for you; nothing was recorded".into(),
            ],
            "Reload the run's page and decide from it.",
        ));
    }
    if let Some(reason) = &form.reason
        && reason.len() > REASON_LIMIT
    {
        return Err(too_large(format!(
            "the reason has {} bytes; at most {REASON_LIMIT} are taken",
            reason.len()
        )));
    }
    // An empty field is a field not given (a browser sends empty inputs).
    form.reason = form.reason.filter(|r| !r.trim().is_empty());
    form.digest = form.digest.filter(|d| !d.trim().is_empty());
    Ok(form)
}

/// The full sha256 the page displayed, as the digest field carries it.
fn full_digest(given: Option<&str>) -> Result<String, Response> {
    let refused = |what: String| {
        page(
            StatusCode::BAD_REQUEST,
            "Refused: the approval does not name the proof you reviewed",
            &[what, "an approval is bound to the whole digest of the proof the page showed; nothing was recorded".into()],
            "Reload the run's page and approve from it.",
        )
    };
    let Some(given) = given else {
        return Err(refused("the form carries no `digest`".into()));
    };
    let hex = given.trim().strip_prefix("sha256:").unwrap_or(given.trim());
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(refused(
            "the form's `digest` is not a whole sha256 (64 hex digits)".into(),
        ));
    }
    Ok(hex.to_ascii_lowercase())
}

#[derive(Clone, Copy)]
enum Kind {
    Approve,
    Reject,
    Redirect,
}

pub async fn approve(
    state: State<Arc<Shared>>,
    session: Extension<Session>,
    id: Result<Path<String>, PathRejection>,
    request: Request<Body>,
) -> Response {
    decide(state, session, id, request, Kind::Approve).await
}

pub async fn reject(
    state: State<Arc<Shared>>,
    session: Extension<Session>,
    id: Result<Path<String>, PathRejection>,
    request: Request<Body>,
) -> Response {
    decide(state, session, id, request, Kind::Reject).await
}

pub async fn redirect(
    state: State<Arc<Shared>>,
    session: Extension<Session>,
    id: Result<Path<String>, PathRejection>,
    request: Request<Body>,
) -> Response {
    decide(state, session, id, request, Kind::Redirect).await
}

async fn decide(
    State(shared): State<Arc<Shared>>,
    Extension(session): Extension<Session>,
    id: Result<Path<String>, PathRejection>,
    request: Request<Body>,
    kind: Kind,
) -> Response {
    let id = match run_id(id) {
        Ok(id) => id,
        Err(refused) => return refused,
    };
    let form = match read_form(&session, request).await {
        Ok(form) => form,
        Err(refused) => return refused,
    };
    let digest = match kind {
        Kind::Approve => match full_digest(form.digest.as_deref()) {
            Ok(d) => Some(d),
            Err(refused) => return refused,
        },
        _ => None,
    };
    let run = id.clone();
    let reason = form.reason.clone();
    let session_id = session.id.clone();
    let shown = digest.clone();
    let outcome = engine(&shared, move |al| {
        let via = Some(Via {
            via: "browser",
            session: &session_id,
        });
        let reason = reason.as_deref();
        match kind {
            Kind::Approve => decide::approve_via(al, &run, reason, shown.as_deref(), via),
            Kind::Reject => decide::reject_via(al, &run, reason, via),
            Kind::Redirect => decide::redirect_via(al, &run, reason, via),
        }
        .map(Ok)
        .or_else(|error| match &error {
            // The page showed one proof, the run has another: say both.
            Error::Refused(r) if r.code == Code::StaleApproval => {
                let current = al.store.get(&run)?.submission.map(|s| s.digest);
                Ok(Err((error, current)))
            }
            _ => Err(error),
        })
    })
    .await;
    match outcome {
        Ok(Ok(done)) => {
            let text = match kind {
                Kind::Approve => format!(
                    "Approved run {} (proof {}). Promote it with `airlock promote {}`.",
                    done.id,
                    digest.as_deref().unwrap_or_default(),
                    done.id
                ),
                Kind::Reject => format!("Rejected run {}.", done.id),
                Kind::Redirect => format!(
                    "Redirected run {} to the agent: round {} begins.",
                    done.id, done.round
                ),
            };
            // The terminal running the server sees each decision too.
            eprintln!("airlock serve: {text} (browser session {})", session.id);
            shared.sessions.set_flash(Flash { ok: true, text });
            (
                StatusCode::SEE_OTHER,
                [(header::LOCATION, format!("/runs/{}", done.id))],
            )
                .into_response()
        }
        Ok(Err((_, current))) => page(
            StatusCode::CONFLICT,
            "Not approved: the proof changed while the page was open",
            &[
                format!(
                    "the page showed proof {}",
                    digest.as_deref().unwrap_or_default()
                ),
                format!(
                    "the run now carries proof {}",
                    current.as_deref().unwrap_or("(none)")
                ),
                "an approval is bound to the proof its page displayed; nothing was recorded".into(),
            ],
            &format!("Reload /runs/{id} and review the run again before deciding."),
        ),
        Err(refused) => refused,
    }
}
