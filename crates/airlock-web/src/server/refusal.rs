//! Refusals and errors as pages with their HTTP status: what went wrong,
//! why, and what to do next, as the CLI's errors say it.

use airlock_core::{Code, Error};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::pages;

pub fn page(status: StatusCode, what: &str, why: &[String], next: &str) -> Response {
    let markup = pages::error_page(status.as_u16(), what, why, next);
    (status, Html(markup.into_string())).into_response()
}

/// An engine error as a page: an unknown run is 404, a rule's refusal
/// (a run in another state, a stale proof) 409, bad input 400, anything
/// else the server's failure (500).
pub fn engine_error(error: &Error) -> Response {
    let status = match error.code() {
        Code::UnknownRun => StatusCode::NOT_FOUND,
        Code::InvalidInput => StatusCode::BAD_REQUEST,
        // The target's rules files, not the request, are at fault.
        Code::ReviewersInvalid | Code::OwnersInvalid => StatusCode::CONFLICT,
        code if code.class() == airlock_core::ErrorClass::Refused => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let mut why: Vec<String> = match error {
        Error::Refused(refusal) => refusal.reasons.clone(),
        _ => Vec::new(),
    };
    why.push(format!("code: {}", error.code()));
    let what = match error {
        // A refusal's reasons are listed apart from its first line.
        Error::Refused(refusal) => refusal.what.clone(),
        other => other.to_string(),
    };
    let next = error
        .hint()
        .unwrap_or_else(|| "Go back to the queue and try again.".into());
    page(status, &what, &why, &next)
}

/// The page of a request the server could not finish (a task that died).
pub fn internal(what: &str) -> Response {
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        what,
        &[],
        "Look at the terminal running `airlock serve`; try again.",
    )
}
