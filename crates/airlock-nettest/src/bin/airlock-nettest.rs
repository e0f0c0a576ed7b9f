//! The egress tests' own program: the sandbox's init process (as
//! `airlock __sandbox-init` is for the airlock binary), and `fetch URL [CA]`,
//! a client on `ureq` with its defaults (the proxy from the standard
//! variables), the Rust HTTP client the tests run inside the sandbox.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some(airlock_sandbox::confine::INIT_ARG) => airlock_sandbox::confine::init_main(),
        Some("fetch") if (2..=3).contains(&args.len()) => fetch(&args[1], args.get(2)),
        _ => {
            eprintln!("usage: airlock-nettest fetch URL [CA-FILE]");
            ExitCode::from(2)
        }
    }
}

fn fetch(url: &str, ca: Option<&String>) -> ExitCode {
    let mut config = ureq::Agent::config_builder();
    if let Some(ca) = ca {
        let pem = match std::fs::read(ca) {
            Ok(pem) => pem,
            Err(e) => {
                eprintln!("fetch: cannot read {ca}: {e}");
                return ExitCode::from(2);
            }
        };
        let certs: Result<Vec<_>, _> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            })
            .collect();
        let certs = match certs {
            Ok(certs) => certs,
            Err(e) => {
                eprintln!("fetch: {ca}: {e}");
                return ExitCode::from(2);
            }
        };
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
            .build();
        config = config.tls_config(tls);
    }
    let agent: ureq::Agent = config.build().into();
    match agent.get(url).call() {
        Ok(mut response) => match response.body_mut().read_to_string() {
            Ok(body) => {
                println!("{} {body}", response.status().as_u16());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("fetch: {url}: reading the body: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("fetch: {url}: {e}");
            ExitCode::FAILURE
        }
    }
}
