//! What the tests of `airlock serve` share: its pages' form fields and the
//! policy every answer carries.

use super::Env;

/// The Content-Security-Policy on every answer of `airlock serve`.
pub const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// `k=v&…`, each value percent-encoded.
pub fn form(fields: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (k, v) in fields {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        for b in v.bytes() {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

/// The value of the hidden input named `name` in a page.
pub fn input_value(page: &str, name: &str) -> String {
    let at = page
        .find(&format!("name=\"{name}\""))
        .unwrap_or_else(|| panic!("no input {name} in:\n{page}"));
    let start = page[..at].rfind('<').unwrap();
    let end = at + page[at..].find('>').unwrap();
    let value = page[start..end].split("value=\"").nth(1).expect("a value");
    value[..value.find('"').unwrap()].to_string()
}

/// The proof digest `show --json` gives a run (64 hex digits).
pub fn digest(env: &Env, run: &str) -> String {
    let v = env.json(&["show", run, "--no-diff"], 0);
    let d = v["proof"]["digest"]
        .as_str()
        .unwrap_or_else(|| panic!("no digest in {v}"));
    d.strip_prefix("sha256:").unwrap_or(d).to_string()
}

/// `airlock serve --port 0 --json` started in `env` with `vars` in its
/// environment, once it printed where it listens.
pub struct Started {
    /// stdin closed, stdout read past its first line, stderr piped.
    pub child: std::process::Child,
    /// The one-time URL.
    pub url: String,
    /// `127.0.0.1:PORT`.
    pub listen: String,
    pub port: u16,
}

/// Starts the server and reads its first line; a first line that is not
/// the JSON document kills it and fails with what it said.
pub fn start_serve(env: &Env, vars: &[(&str, &str)]) -> Started {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut child = env
        .cmd(&["serve", "--port", "0", "--json"])
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: serde_json::Value = match serde_json::from_str(&line) {
        Ok(v) => v,
        Err(e) => {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "serve printed {line:?} ({e}); stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        }
    };
    let listen = v["listen"].as_str().unwrap().to_string();
    let port = listen.rsplit_once(':').unwrap().1.parse().unwrap();
    Started {
        child,
        url: v["url"].as_str().unwrap().to_string(),
        listen,
        port,
    }
}

/// An answer of `airlock serve`, as a test reads it.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The page says `text` (maud escapes `"`, `&`, `<`, `>`).
    pub fn says(&self, text: &str) -> &Reply {
        assert!(
            self.body.contains(text),
            "the page ({}) should say {text:?}:\n{}",
            self.status,
            self.body
        );
        self
    }
}

/// One HTTP request with ureq, redirects not followed and any status
/// answered (a refusal is what many tests look for).
pub fn request(method: &str, url: &str, headers: &[(&str, &str)], body: Option<Vec<u8>>) -> Reply {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let mut builder = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let response = match body {
        Some(bytes) => agent.run(builder.body(bytes).unwrap()),
        None => agent.run(builder.body(()).unwrap()),
    }
    .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = response.into_body().read_to_string().unwrap_or_default();
    Reply {
        status,
        headers,
        body,
    }
}
