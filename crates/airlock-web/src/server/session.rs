//! The one-time token and the browser's session, kept in memory only.
//!
//! The token printed at start opens one session and is then spent. The
//! session's cookie and the token are compared through their SHA-256, so
//! no comparison's time depends on how much of a secret a guess matched;
//! the anti-forgery token is compared in constant time.

use std::sync::Mutex;

use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};

use crate::pages::Flash;

/// 32 random bytes, as 64 hex digits.
pub fn secret() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// Equal without an early exit.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What a session knows. `id` names it in the ledger; the cookie's value
/// is never recorded.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub csrf: String,
}

struct Open {
    cookie: [u8; 32],
    session: Session,
    flash: Option<Flash>,
}

/// The token until it is spent, then the one session it opened.
pub struct Sessions {
    token: Mutex<Option<[u8; 32]>>,
    open: Mutex<Option<Open>>,
}

/// What spending a token gave.
pub enum Spent {
    /// The new session and its cookie's value.
    Opened(String),
    /// Not the token, or the token was already used.
    Refused,
}

impl Sessions {
    /// Sessions waiting for `token`.
    pub fn new(token: &str) -> Sessions {
        Sessions {
            token: Mutex::new(Some(digest(token))),
            open: Mutex::new(None),
        }
    }

    /// Spends the token if `given` is it: opens the session.
    pub fn spend(&self, given: &str) -> Spent {
        let mut token = self.token.lock().unwrap_or_else(|p| p.into_inner());
        match *token {
            Some(expected) if same(&expected, &digest(given)) => {
                *token = None;
                let cookie = secret();
                let mut id = [0u8; 6];
                OsRng.fill_bytes(&mut id);
                *self.open.lock().unwrap_or_else(|p| p.into_inner()) = Some(Open {
                    cookie: digest(&cookie),
                    session: Session {
                        id: hex::encode(id),
                        csrf: secret(),
                    },
                    flash: None,
                });
                Spent::Opened(cookie)
            }
            _ => Spent::Refused,
        }
    }

    /// The session whose cookie is `cookie`.
    pub fn find(&self, cookie: &str) -> Option<Session> {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.as_ref()
            .filter(|o| same(&o.cookie, &digest(cookie)))
            .map(|o| o.session.clone())
    }

    /// Keeps a message for the session's next page.
    pub fn set_flash(&self, flash: Flash) {
        if let Some(open) = self.open.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            open.flash = Some(flash);
        }
    }

    /// The message kept for this page, once.
    pub fn take_flash(&self) -> Option<Flash> {
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
            .and_then(|o| o.flash.take())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_opens_one_session_once() {
        let token = secret();
        let sessions = Sessions::new(&token);
        assert!(matches!(sessions.spend("wrong"), Spent::Refused));
        let Spent::Opened(cookie) = sessions.spend(&token) else {
            panic!("the token was refused");
        };
        assert!(matches!(sessions.spend(&token), Spent::Refused));
        let session = sessions.find(&cookie).expect("the session");
        assert_eq!(session.csrf.len(), 64);
        assert_ne!(session.id, cookie);
        assert!(sessions.find(&token).is_none());
        assert!(sessions.find("").is_none());
        assert!(same(b"abc", b"abc") && !same(b"abc", b"abd") && !same(b"ab", b"abc"));
    }
}
