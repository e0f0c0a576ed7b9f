//! The HTTP side of `airlock serve`: the listener, the one-time token and
//! the session (`session`), the checks every request passes (`guard`: the
//! security headers, `Host`, the session, `Origin` on a POST), the pages'
//! routes and the decisions' POST handlers (`routes`), and where to listen
//! (`listen`). Engine calls run on the blocking pool, each opening the
//! repository as a CLI command does.

mod accept;
mod guard;
pub mod listen;
mod refusal;
mod routes;
pub mod session;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use airlock_core::layout::Layout;
use axum::Router;
use axum::routing::{get, post};

use session::Sessions;

/// The largest request body taken (a decision's form).
pub const BODY_LIMIT: usize = 64 * 1024;
/// The longest reason a decision takes, in bytes.
pub const REASON_LIMIT: usize = 4 * 1024;

/// What every request's handling shares.
pub(crate) struct Shared {
    pub layout: Layout,
    /// The address served (the port is the one bound).
    pub served: SocketAddr,
    pub sessions: Sessions,
    /// The session cookie's name: with the port, so two servers on one
    /// machine keep apart (cookies do not tell ports apart).
    pub cookie: String,
    /// Who decides (the OS or git user running the server), for the header.
    pub user: String,
}

/// A server bound and ready: its one-time URL is known before it serves,
/// and SIGINT and SIGTERM are already its to handle (a signal right after
/// the URL is printed stops it cleanly too).
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
    runtime: tokio::runtime::Runtime,
    signals: Signals,
    /// The URL with the one-time token: it opens a session once.
    pub url: String,
    /// The address served.
    pub listen: SocketAddr,
}

struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Server {
    /// A server for the repository at `layout` on `listener`; `user` is
    /// shown on its pages as who decides.
    pub fn new(listener: TcpListener, layout: Layout, user: String) -> std::io::Result<Server> {
        use tokio::signal::unix::{SignalKind, signal};
        let listen = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let signals = runtime.block_on(async {
            std::io::Result::Ok(Signals {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        })?;
        let token = session::secret();
        // The printed address must be one a browser can open: an
        // unspecified address (0.0.0.0, ::) is reached on loopback here.
        let shown = if listen.ip().is_unspecified() {
            SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), listen.port())
        } else {
            listen
        };
        let url = format!("http://{shown}/?token={token}");
        let shared = Arc::new(Shared {
            layout,
            served: listen,
            sessions: Sessions::new(&token),
            cookie: format!("airlock_session_{}", listen.port()),
            user,
        });
        Ok(Server {
            listener,
            shared,
            runtime,
            signals,
            url,
            listen,
        })
    }

    /// Serves until SIGINT or SIGTERM; returns the signal's name. Requests
    /// under way finish first.
    pub fn run(self) -> std::io::Result<&'static str> {
        let Server {
            listener,
            shared,
            runtime,
            mut signals,
            ..
        } = self;
        runtime.block_on(async move {
            listener.set_nonblocking(true)?;
            let listener = tokio::net::TcpListener::from_std(listener)?;
            let app = router(shared);
            let (said, heard) = tokio::sync::watch::channel(None::<&'static str>);
            let mut asked = heard.clone();
            let stop = async move {
                let _ = asked.wait_for(Option::is_some).await;
            };
            let serving = accept::serve(listener, app, stop);
            // The first signal stops taking connections and lets requests
            // under way finish; a request that never finishes (half sent,
            // by a slow or hostile client) is dropped after STOP_GRACE or
            // at a second signal, so it cannot keep the server up.
            let deadline = async move {
                let first = signals.next().await;
                let _ = said.send(Some(first));
                tokio::select! {
                    _ = tokio::time::sleep(STOP_GRACE) => {}
                    _ = signals.next() => {}
                }
            };
            tokio::select! {
                served = serving => served?,
                () = deadline => {}
            }
            Ok(heard.borrow().unwrap_or("a signal"))
        })
    }
}

/// How long requests under way may take to finish once a stop is asked.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

impl Signals {
    /// The next SIGINT or SIGTERM.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(routes::queue))
        .route("/runs/{id}", get(routes::run))
        .route("/runs/{id}/approve", post(routes::approve))
        .route("/runs/{id}/reject", post(routes::reject))
        .route("/runs/{id}/redirect", post(routes::redirect))
        .route("/history", get(routes::history))
        .route("/stats", get(routes::stats))
        .route("/static/{name}", get(routes::asset))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::wrong_method)
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            guard::guard,
        ))
        .layer(axum::middleware::from_fn(guard::headers))
        .with_state(shared)
}
