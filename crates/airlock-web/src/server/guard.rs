//! What every request passes before a page or a decision: the `Host` it
//! names (DNS rebinding), the one-time token or the session, and for
//! anything but GET and HEAD an `Origin` that is this server. Every
//! response, refusals included, carries the security headers.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Shared;
use super::refusal::page;
use super::session::{Session, Spent};

/// The headers of every response: nothing loads from elsewhere, nothing
/// inline runs, no page frames this one, nothing is cached or sniffed.
const SECURITY_HEADERS: [(&str, &str); 7] = [
    (
        "content-security-policy",
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
];

pub async fn headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

pub async fn guard(
    State(shared): State<Arc<Shared>>,
    mut request: Request,
    next: Next,
) -> Response {
    if let Err(refused) = check_host(&shared, &request) {
        return refused;
    }
    // The token opens the session, then leaves the address bar. Only a
    // GET spends it: a HEAD (a link preview, say) opens nothing.
    if request.method() == Method::GET
        && request.uri().path() == "/"
        && let Some(token) = query_value(request.uri().query(), "token")
    {
        return match shared.sessions.spend(&token) {
            Spent::Opened(cookie) => {
                let set = format!(
                    "{}={cookie}; HttpOnly; SameSite=Strict; Path=/",
                    shared.cookie
                );
                let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
                if let Ok(value) = HeaderValue::from_str(&set) {
                    response.headers_mut().insert(header::SET_COOKIE, value);
                }
                response
            }
            // The link opened again in the browser it opened: it has its
            // session already.
            Spent::Refused if session_of(&shared, request.headers()).is_some() => {
                (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response()
            }
            Spent::Refused => page(
                StatusCode::UNAUTHORIZED,
                "This link does not open a session",
                &[
                    "the link's token was used already (it works once), or it is not this server's".into(),
                    "the token opens a session in the browser that used it first; no other can use it".into(),
                ],
                "Go back to the browser that opened the link first, or stop `airlock serve` and start it again for a new link.",
            ),
        };
    }
    let Some(session) = session_of(&shared, request.headers()) else {
        return page(
            StatusCode::UNAUTHORIZED,
            "No session",
            &["every page of `airlock serve` needs the session its one-time link opens".into()],
            "Open the link `airlock serve` printed when it started (once, in this browser), or start it again for a new link.",
        );
    };
    if request.method() != Method::GET
        && request.method() != Method::HEAD
        && let Err(refused) = check_origin(&request)
    {
        return refused;
    }
    request.extensions_mut().insert(session);
    next.run(request).await
}

/// The value of `name` in a query string.
pub fn query_value(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn session_of(shared: &Shared, headers: &HeaderMap) -> Option<Session> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == shared.cookie)
        .find_map(|(_, value)| shared.sessions.find(value))
}

/// The `Host` must name this server: a page a DNS name rebound to
/// 127.0.0.1 names that name and is refused. `localhost` and the address
/// served are taken; on an unspecified address (`--listen 0.0.0.0`), any IP
/// address (a rebinding attack needs a name), always with the port served.
fn check_host(shared: &Shared, request: &Request) -> Result<(), Response> {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    let authority = request.uri().authority().map(|a| a.as_str());
    // Two `Host` lines name two hosts: taking the first would answer for a
    // name another reader of the request takes to be the second (RFC 9112
    // 3.2 says refuse).
    let one_host = request.headers().get_all(header::HOST).iter().count() == 1;
    let ok = one_host
        && match (host, authority) {
            (Some(h), Some(a)) => h.eq_ignore_ascii_case(a) && host_served(shared.served, h),
            (Some(h), None) => host_served(shared.served, h),
            (None, _) => false,
        };
    if ok {
        return Ok(());
    }
    let named = host.unwrap_or("(none)");
    Err(page(
        StatusCode::MISDIRECTED_REQUEST,
        "This server does not answer for that host",
        &[
            format!("the request names the host `{named}`; this server is {}", shared.served),
            "a page served under another name may be trying to reach the review server through its address (DNS rebinding)".into(),
        ],
        &format!(
            "Open the address `airlock serve` printed: http://127.0.0.1:{}/ or http://localhost:{}/.",
            shared.served.port(),
            shared.served.port()
        ),
    ))
}

fn host_served(served: SocketAddr, host: &str) -> bool {
    let Some((name, port)) = host.rsplit_once(':') else {
        return false;
    };
    if port.parse::<u16>().ok() != Some(served.port()) {
        return false;
    }
    let served = served.ip();
    if name.eq_ignore_ascii_case("localhost") {
        return served.is_loopback() || served.is_unspecified();
    }
    let literal = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    match literal.parse::<IpAddr>() {
        Ok(ip) => ip == served || served.is_unspecified(),
        Err(_) => false,
    }
}

/// A state-changing request must come from this server's own pages: its
/// `Origin` (or, without one, `Sec-Fetch-Site: same-origin`) says so.
/// The anti-forgery token in the form is checked after (both must hold).
fn check_origin(request: &Request) -> Result<(), Response> {
    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    // Under `Referrer-Policy: no-referrer` (ours) a browser sends
    // `Origin: null` on every POST, its own pages' included (Fetch's
    // "serializing a request origin"), and only `Sec-Fetch-Site` (which no
    // page can set) still says where the form came from: `null` is taken as
    // no Origin at all.
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .filter(|o| *o != "null");
    let ok = match origin {
        Some(origin) => origin.eq_ignore_ascii_case(&format!("http://{host}")),
        None => headers
            .get("sec-fetch-site")
            .is_some_and(|s| s.as_bytes() == b"same-origin"),
    };
    if ok {
        return Ok(());
    }
    Err(page(
        StatusCode::FORBIDDEN,
        "Refused: this request did not come from the review pages",
        &[
            match origin {
                Some(o) => format!("the request's Origin is `{o}`, not http://{host}"),
                None => "the request carries no Origin (nor Sec-Fetch-Site: same-origin)".into(),
            },
            "another site may be trying to make your browser decide for you; nothing was recorded"
                .into(),
        ],
        "Decide from the run's page of this server.",
    ))
}

#[cfg(test)]
mod tests {
    use super::host_served;

    #[test]
    fn the_host_must_name_the_address_served() {
        let loopback = "127.0.0.1:7878".parse().unwrap();
        for ok in ["127.0.0.1:7878", "localhost:7878", "LocalHost:7878"] {
            assert!(host_served(loopback, ok), "{ok}");
        }
        for refused in [
            "127.0.0.1",
            "127.0.0.1:7879",
            "127.0.0.2:7878",
            "[::1]:7878",
            "evil.example:7878",
            "localhost.:7878",
            "localhost.evil.example:7878",
            "127.0.0.1:7878:7878",
            ":7878",
            "",
        ] {
            assert!(!host_served(loopback, refused), "{refused}");
        }
        let v6 = "[::1]:8080".parse().unwrap();
        assert!(host_served(v6, "[::1]:8080"));
        assert!(host_served(v6, "localhost:8080"));
        assert!(!host_served(v6, "127.0.0.1:8080"));
        // On an unspecified address, any IP address (a rebinding needs a
        // name) and localhost; never another name.
        let any = "0.0.0.0:9000".parse().unwrap();
        assert!(host_served(any, "192.168.1.20:9000"));
        assert!(host_served(any, "localhost:9000"));
        assert!(!host_served(any, "review.example:9000"));
        assert!(!host_served(any, "192.168.1.20:9001"));
    }
}
