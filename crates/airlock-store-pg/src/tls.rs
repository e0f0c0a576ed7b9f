//! TLS to the server (`sslmode` in the URL): `require`, `verify-ca` and
//! `verify-full` connect over TLS (rustls, through `tokio-postgres-rustls`)
//! and always verify the server's certificate, its chain and its host name:
//! stricter than libpq's `require`, which encrypts without checking who
//! answers. The CAs trusted are `sslrootcert=PATH` (PEM), else
//! `~/.postgresql/root.crt` when there is one, else the public web roots.
//! `disable`, `allow`, `prefer` or none: no TLS, as before. The `postgres`
//! crate knows neither `verify-*` nor `sslrootcert`, so both are taken off
//! the connection string before it parses it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use airlock_store::Result;
use airlock_store::error::Code;

use crate::problem;

/// What the connection string asked for.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Settings {
    /// TLS, verified.
    pub tls: bool,
    pub root_cert: Option<PathBuf>,
}

/// The connection string without `sslmode` and `sslrootcert`, and what
/// they said.
pub(crate) fn split(url: &str) -> Result<(String, Settings)> {
    let mut settings = Settings::default();
    let mut take = |key: &str, value: &str| -> Result<bool> {
        match key {
            "sslmode" => {
                settings.tls = match value {
                    "disable" | "allow" | "prefer" => false,
                    "require" | "verify-ca" | "verify-full" => true,
                    other => {
                        return Err(problem(
                            Code::DatabaseUrlInvalid,
                            format!("`sslmode={other}` is not a TLS mode airlock knows"),
                            vec!["airlock knows disable, allow, prefer (no TLS) and require, verify-ca, verify-full (TLS, the server's certificate verified)".into()],
                            "write `sslmode=verify-full` (with `sslrootcert=PATH` for a private CA), or leave it out",
                        ));
                    }
                };
                Ok(true)
            }
            "sslrootcert" => {
                settings.root_cert = Some(PathBuf::from(value));
                Ok(true)
            }
            _ => Ok(false),
        }
    };
    let trimmed = url.trim();
    let is_url = trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://");
    let rest = if is_url {
        let Some((base, query)) = trimmed.split_once('?') else {
            return Ok((trimmed.to_string(), settings));
        };
        let mut kept = Vec::new();
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if !take(k, &percent_decode(v))? {
                kept.push(pair);
            }
        }
        if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        }
    } else {
        let mut kept = Vec::new();
        for token in trimmed.split_whitespace() {
            let (k, v) = token.split_once('=').unwrap_or((token, ""));
            if !take(k.trim(), v.trim_matches('\''))? {
                kept.push(token);
            }
        }
        kept.join(" ")
    };
    Ok((rest, settings))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The connector for `settings`: rustls with the CAs they name.
pub(crate) fn connector(settings: &Settings) -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    let mut roots = rustls::RootCertStore::empty();
    let default_root = std::env::var_os("HOME")
        .map(|h| Path::new(&h).join(".postgresql/root.crt"))
        .filter(|p| p.is_file());
    match settings.root_cert.clone().or(default_root) {
        Some(path) => {
            use rustls_pki_types::CertificateDer;
            use rustls_pki_types::pem::PemObject;
            let unreadable = |why: String| {
                problem(
                    Code::DatabaseUrlInvalid,
                    format!("cannot read the CA certificates in {}", path.display()),
                    vec![why],
                    "give `sslrootcert=` a PEM file of the CA that signed the server's certificate",
                )
            };
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&path)
                .map_err(|e| unreadable(e.to_string()))?
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| unreadable(e.to_string()))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(unreadable("it holds no certificate airlock can use".into()));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    // ring: what the workspace builds already (aws-lc-rs, rustls' newer
    // default, needs a C toolchain build of its own).
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| airlock_store::Error::Internal(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn airlocks_settings_are_taken_off_the_url() {
        let (rest, s) = split(
            "postgres://me@db/a?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&connect_timeout=3",
        )
        .unwrap();
        assert_eq!(rest, "postgres://me@db/a?connect_timeout=3");
        assert!(s.tls);
        assert_eq!(s.root_cert.as_deref(), Some(Path::new("/etc/ca.pem")));
        let (rest, s) = split("host=db user=me sslmode=require dbname=a").unwrap();
        assert_eq!(rest, "host=db user=me dbname=a");
        assert_eq!(
            s,
            Settings {
                tls: true,
                root_cert: None
            }
        );
        let (rest, s) = split("postgres://me@db/a?sslmode=disable").unwrap();
        assert_eq!(rest, "postgres://me@db/a");
        assert!(!s.tls);
        assert_eq!(split("postgres://db/a").unwrap().0, "postgres://db/a");
        let err = split("postgres://db/a?sslmode=bogus").unwrap_err();
        assert!(err.to_string().contains("sslmode=bogus"), "{err}");
    }
}
