use which::which;

/// Rebuild when bpf-linker changes: cargo cannot express a dependency on a linker binary.
fn main() {
    if let Ok(linker) = which("bpf-linker") {
        println!("cargo:rerun-if-changed={}", linker.display());
    }
}
