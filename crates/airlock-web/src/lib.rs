//! `airlock serve`: the review queue in a browser.
//!
//! `server` is the HTTP side (the listener, the one-time token and the
//! session, the anti-forgery token, the security headers, the decisions'
//! POST handlers); `pages` renders HTML from what the engine returns. Both
//! call the engine (`airlock-core`) as the CLI does; nothing here decides
//! anything the engine does not.

pub mod pages;
pub mod server;
