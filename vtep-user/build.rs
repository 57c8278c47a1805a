use anyhow::{Context as _, anyhow};
use aya_build::Toolchain;

/// Compiles `vtep-ebpf` for the BPF target with the nightly toolchain and bpf-linker;
/// `cargo xtask build` installs both first. The object lands in OUT_DIR/vtep.
fn main() -> anyhow::Result<()> {
    let metadata = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .exec()
        .context("cargo metadata")?;
    let ebpf = metadata
        .packages
        .into_iter()
        .find(|p| p.name.as_str() == "vtep-ebpf")
        .ok_or_else(|| anyhow!("vtep-ebpf package not found"))?;
    let root_dir = ebpf
        .manifest_path
        .parent()
        .ok_or_else(|| anyhow!("no parent for {}", ebpf.manifest_path))?;
    let package = aya_build::Package {
        name: ebpf.name.as_str(),
        root_dir: root_dir.as_str(),
        ..Default::default()
    };
    aya_build::build_ebpf([package], Toolchain::default())
}
