//! The pages, rendered on the server with `maud` (which escapes every
//! interpolated string); everything the agent wrote goes through `hostile`
//! first, so control, bidirectional and invisible characters are shown.

use maud::Markup;

/// What every page needs from the server: the session's anti-forgery token
/// (each form carries it), a one-time message after a decision, and who is
/// signed in (for the header).
#[derive(Debug, Clone, Default)]
pub struct PageCtx {
    pub csrf: String,
    pub flash: Option<Flash>,
    pub user: String,
}

/// A message shown once at the top of the next page (after a POST's redirect).
#[derive(Debug, Clone)]
pub struct Flash {
    pub ok: bool,
    pub text: String,
}

/// A page that explains a refusal or an error: what went wrong, why, and
/// what to do next, as the CLI's errors do.
pub fn error_page(status: u16, what: &str, why: &[String], next: &str) -> Markup {
    maud::html! {
        (maud::DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { "airlock: " (status) } }
            body {
                h1 { (what) }
                ul { @for w in why { li { (w) } } }
                p { (next) }
            }
        }
    }
}
