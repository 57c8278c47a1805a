//! Packet capture with tcpdump inside a namespace.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail, ensure};
use nix::{sys::signal::Signal, unistd::Pid};

/// A running tcpdump; [`Capture::frames`] stops it and returns what it captured.
pub struct Capture {
    child: Child,
    file: PathBuf,
}

impl Capture {
    /// Starts tcpdump on `ifname` in namespace `ns` with BPF filter `filter`, writing to
    /// `file`, and returns once it captures. Fails when tcpdump cannot be started.
    pub fn start(file: &Path, ns: &str, ifname: &str, filter: &str) -> Result<Self> {
        // --immediate-mode: otherwise libpcap hands packets over in blocks (TPACKET_V3) and the
        // last ones before the SIGINT of `frames` are lost. -B: in immediate mode each slot of
        // libpcap's ring is sized for the largest packet an offloading interface may hand over
        // (64 KiB), so the default 2 MiB ring holds about 30 frames, and under a loaded CI run
        // a bulk transfer overflowed it (a capture of 4 MB of TCP kept 903 of about 2,900
        // segments). 128 MiB holds about 2,000.
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                "tcpdump",
                "--immediate-mode",
                "-U",
                "-n",
                "-B",
                "131072",
            ])
            .args(["-i", ifname, "-w"])
            .arg(file)
            .arg(filter)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting tcpdump")?;
        let cap = Self {
            child,
            file: file.to_path_buf(),
        };
        // tcpdump creates the file once its socket is open; a moment more for the filter.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cap.file.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(300));
        Ok(cap)
    }

    /// Stops the capture and returns the captured frames. Fails when the capture file cannot
    /// be read.
    pub fn frames(mut self) -> Result<Vec<Vec<u8>>> {
        // What is still on its way through the namespace's interfaces.
        std::thread::sleep(Duration::from_millis(300));
        let _ = nix::sys::signal::kill(Pid::from_raw(self.child.id() as i32), Signal::SIGINT);
        let _ = self.child.wait();
        // tcpdump's summary says how many frames its ring lost: shown so a test that finds a
        // frame missing can tell the capture's loss from the datapath's.
        if let Some(mut err) = self.child.stderr.take() {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut err, &mut text);
            let lost = |l: &&str| l.contains("dropped by kernel") && !l.starts_with("0 ");
            if let Some(line) = text.lines().find(lost) {
                eprintln!("capture on {}: {line}", self.file.display());
            }
        }
        let data = std::fs::read(&self.file)
            .with_context(|| format!("reading {}", self.file.display()))?;
        parse_pcap(&data)
    }
}

impl Drop for Capture {
    /// A capture left running (its test failed first) would outlive the lab.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The frames of a classic pcap file (little-endian, as tcpdump writes here). Fails when `data`
/// is not one; a frame cut short at the end is left out.
pub fn parse_pcap(data: &[u8]) -> Result<Vec<Vec<u8>>> {
    ensure!(data.len() >= 24, "pcap too short ({} bytes)", data.len());
    if data[0..4] != [0xd4, 0xc3, 0xb2, 0xa1] {
        bail!("unexpected pcap magic {:02x?}", &data[0..4]);
    }
    let mut frames = Vec::new();
    let mut off = 24;
    while off + 16 <= data.len() {
        let incl = u32::from_le_bytes(data[off + 8..off + 12].try_into()?) as usize;
        off += 16;
        if off + incl > data.len() {
            break;
        }
        frames.push(data[off..off + incl].to_vec());
        off += incl;
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pcap file header, then one record header and frame per frame.
    fn pcap(frames: &[&[u8]]) -> Vec<u8> {
        let mut p = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
        p.extend_from_slice(&[0; 8]);
        p.extend_from_slice(&65535u32.to_le_bytes());
        p.extend_from_slice(&1u32.to_le_bytes());
        for f in frames {
            p.extend_from_slice(&[0; 8]);
            p.extend_from_slice(&(f.len() as u32).to_le_bytes());
            p.extend_from_slice(&(f.len() as u32).to_le_bytes());
            p.extend_from_slice(f);
        }
        p
    }

    #[test]
    fn parse_pcap_returns_every_frame_and_drops_a_cut_one() {
        let data = pcap(&[b"first", b"second frame"]);
        let frames = parse_pcap(&data).unwrap();
        assert_eq!(frames, vec![b"first".to_vec(), b"second frame".to_vec()]);
        let cut = &data[..data.len() - 3];
        assert_eq!(parse_pcap(cut).unwrap(), vec![b"first".to_vec()]);
        assert!(parse_pcap(&data[..10]).is_err());
        let mut big_endian = data.clone();
        big_endian[0..4].copy_from_slice(&[0xa1, 0xb2, 0xc3, 0xd4]);
        assert!(parse_pcap(&big_endian).is_err());
    }
}
