//! TLS to the server: a private cluster that accepts TCP connections only
//! over TLS, with a certificate signed by a test CA (made with `openssl`).

use std::sync::Arc;

use airlock_store::{Paths, Store};
use airlock_store_pg::PgStore;
use airlock_store_pg::testing::{self, Cluster};

fn paths(dir: &std::path::Path) -> Paths {
    Paths {
        state: dir.join("state"),
        key_dir: dir.join("keys"),
    }
}

fn code(e: &airlock_store::Error) -> Option<&'static str> {
    match e {
        airlock_store::Error::Refused(r) => Some(r.code.as_str()),
        _ => None,
    }
}

#[test]
fn verify_full_with_the_servers_ca_connects_and_anything_less_is_refused() {
    let (cluster, ca) = Cluster::start_tls().unwrap_or_else(|e| panic!("{e}"));
    let cluster = Arc::new(cluster);
    let db = cluster.database();
    let url = db.url();
    let dir = tempfile::tempdir().unwrap();
    let paths = paths(dir.path());
    let ca_param = ca.display().to_string().replace('/', "%2F");

    // TLS, the server's certificate checked against the test CA.
    for mode in ["verify-full", "verify-ca", "require"] {
        let tls = format!("{url}?sslmode={mode}&sslrootcert={ca_param}");
        let store = PgStore::open(&tls, &paths).unwrap_or_else(|e| panic!("{mode}: {e}"));
        assert!(store.list().unwrap().is_empty());
    }

    // Without TLS the server refuses (it takes TCP over TLS only).
    let err = PgStore::open(&url, &paths).err().expect("refused");
    assert!(
        err.to_string().contains("no encryption") || err.to_string().contains("pg_hba"),
        "{err}"
    );

    // A certificate from a CA the client does not trust is refused.
    let other = testing::make_ca(&dir.path().join("other"), "other").unwrap();
    let wrong = format!(
        "{url}?sslmode=verify-full&sslrootcert={}",
        other.display().to_string().replace('/', "%2F")
    );
    let err = PgStore::open(&wrong, &paths).err().expect("refused");
    assert_eq!(code(&err), Some("database-unreachable"), "{err}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
    // Nor the public roots (no sslrootcert, no ~/.postgresql/root.crt).
    let err = PgStore::open(&format!("{url}?sslmode=verify-full"), &paths)
        .err()
        .expect("refused");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );

    // A CA file that is not one is named.
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    let err = PgStore::open(
        &format!(
            "{url}?sslmode=verify-full&sslrootcert={}",
            junk.display().to_string().replace('/', "%2F")
        ),
        &paths,
    )
    .err()
    .expect("refused");
    assert_eq!(code(&err), Some("database-url-invalid"), "{err}");
    assert!(err.to_string().contains("junk.pem"), "{err}");
}
