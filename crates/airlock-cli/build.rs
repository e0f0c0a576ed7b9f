//! Links `airlock` as a position-dependent executable. Agents start it for
//! every command; a position-independent one spends about half a
//! millisecond of each start relocating itself (see BENCHMARKS.md, exec).
//! The price is that the executable's own code is not at a random address;
//! libraries, heap and stack still are. `AIRLOCK_PIE=1` builds it
//! position-independent instead.

fn main() {
    println!("cargo:rerun-if-env-changed=AIRLOCK_PIE");
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os == "linux" && std::env::var_os("AIRLOCK_PIE").is_none_or(|v| v != "1") {
        println!("cargo:rustc-link-arg-bin=airlock=-no-pie");
    }
}
