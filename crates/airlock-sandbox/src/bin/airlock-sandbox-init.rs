//! The sandbox's init process, for this crate's tests. The airlock binary
//! plays the same part through its hidden `__sandbox-init` argument.

fn main() {
    match std::env::args().nth(1).as_deref() {
        Some(airlock_sandbox::confine::INIT_ARG) => airlock_sandbox::confine::init_main(),
        Some(airlock_sandbox::host::HOST_ARG) => airlock_sandbox::host::host_main(),
        _ => {}
    }
    eprintln!("airlock-sandbox-init: run by airlock-sandbox only");
    std::process::exit(2);
}
