//! Pieces of `vtep up` configs (TOML) for the namespace tests.

/// The top of a config: instance `name`, top-level `top_extra` lines, the `eth0` underlay with
/// `underlay_extra` lines.
pub fn header(name: &str, top_extra: &str, underlay_extra: &str) -> String {
    format!("name = \"{name}\"\n{top_extra}\n[underlay]\ninterface = \"eth0\"\n{underlay_extra}\n")
}

/// A `[[vni]]` table head (its sub-tables follow).
pub fn vni(id: u32, dstport: u16, remotes: &[&str]) -> String {
    let remotes: Vec<String> = remotes.iter().map(|r| format!("\"{r}\"")).collect();
    format!(
        "[[vni]]\nid = {id}\ndstport = {dstport}\nremotes = [{}]\n\n",
        remotes.join(", ")
    )
}

pub fn workload(netns: &str, address: &str, mac: &str) -> String {
    format!("[[vni.workload]]\nnetns = \"{netns}\"\naddress = \"{address}\"\nmac = \"{mac}\"\n\n")
}

pub fn host_port(interface: &str, address: &str) -> String {
    format!("[vni.host]\ninterface = \"{interface}\"\naddress = \"{address}\"\n\n")
}

pub fn adopted_port(interface: &str) -> String {
    format!("[[vni.port]]\ninterface = \"{interface}\"\n\n")
}

pub fn fdb(mac: &str, dst: &str) -> String {
    format!("[[vni.fdb]]\nmac = \"{mac}\"\ndst = \"{dst}\"\n\n")
}
