//! Bad configs change nothing on the system, and `vtep check` finds the same mistakes.

use std::{path::Path, time::Duration};

use vtep_tests::{
    configs::{adopted_port, fdb, host_port, vni, workload},
    lab::{Lab, ip},
    output::text,
};

use crate::{
    ADDR_A, ADDR_B, header,
    support::{host_with_a_port, pin_dir, state_file, vtep_run},
};

/// What `vtep up` could change on host `ns`, as text to compare.
pub(crate) fn host_snapshot(lab: &Lab, ns: &str) -> Vec<(String, String)> {
    let cmd = |args: &[&str]| text(&ip(args).stdout);
    vec![
        ("links".into(), cmd(&["-n", ns, "-o", "link"])),
        ("addresses".into(), cmd(&["-n", ns, "-4", "-o", "addr"])),
        ("routes".into(), cmd(&["-n", ns, "route"])),
        // Entries somebody made (vtep's are "managed"); the kernel's own come and go.
        (
            "configured neighbours".into(),
            cmd(&["-n", ns, "neigh"])
                .lines()
                .filter(|l| {
                    ["managed", "PERMANENT", "NOARP"]
                        .iter()
                        .any(|w| l.contains(w))
                })
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        ("lab namespaces".into(), format!("{:?}", lab.namespaces())),
    ]
}

/// Host A of two, an interface on it to adopt, and a valid config (instance `name`) with a
/// host port, a workload, the adopted port and a static FDB entry: every kind of thing
/// `vtep up` creates or changes.
pub(crate) struct BadConfigLab {
    pub lab: Lab,
    pub a: String,
    pub name: String,
    pub good: String,
}

pub(crate) fn bad_config_lab() -> BadConfigLab {
    let (lab, a, port) = host_with_a_port();
    let name = lab.name("va");
    let good = header(&name, "")
        + &vni(100, 4789, &[ADDR_B])
        + &host_port(&lab.name("x"), "192.0.2.1/24")
        + &workload(&lab.name("w1"), "192.0.2.11/24", "02:00:00:00:00:01")
        + &adopted_port(&port)
        + &fdb("02:00:00:00:00:02", ADDR_B);
    BadConfigLab { lab, a, name, good }
}

impl BadConfigLab {
    /// Runs `vtep ARGS -c FILE` (FILE holding `cfg`, named for `what`) and returns what is
    /// wrong with how it refused the config: it must exit non-zero and say every string of
    /// `want` on stderr. `Err` when it was still running after `limit` (it took the config).
    pub(crate) fn refusal(
        &self,
        what: &str,
        args: &[&str],
        cfg: &str,
        want: &[&str],
        limit: Duration,
    ) -> Result<Vec<String>, String> {
        let command = args.last().copied().unwrap_or_default();
        let name = format!("{command}-{}.toml", what.replace(' ', "-"));
        let path = self.lab.file(&name, cfg);
        let mut args = args.to_vec();
        args.extend(["-c", path.to_str().unwrap()]);
        let out = vtep_run(&args, limit)?;
        let stderr = text(&out.stderr);
        let mut problems = Vec::new();
        if out.status.success() {
            problems.push(format!(
                "{what}: `vtep {command}` accepted it: {}{stderr}",
                text(&out.stdout)
            ));
        }
        for w in want {
            if !stderr.contains(w) {
                problems.push(format!(
                    "{what}: `vtep {command}` stderr does not contain `{w}`: {stderr}"
                ));
            }
        }
        Ok(problems)
    }

    /// Runs `vtep up` with `cfg` and returns what is wrong with how it refused it: it must
    /// exit non-zero, say every string of `want` on stderr, and leave the host as it was.
    pub(crate) fn refusal_problems(&self, what: &str, cfg: &str, want: &[&str]) -> Vec<String> {
        if cfg == self.good {
            return vec![format!(
                "{what}: the mistake was not written into the config"
            )];
        }
        let before = host_snapshot(&self.lab, &self.a);
        let up = ["--netns", &self.a, "up"];
        let mut problems = match self.refusal(what, &up, cfg, want, Duration::from_secs(15)) {
            Ok(problems) => problems,
            Err(e) => return vec![format!("{what}: accepted: {e}")],
        };
        let after = host_snapshot(&self.lab, &self.a);
        if after != before {
            problems.push(format!(
                "{what}: system changed:\nbefore {before:#?}\nafter {after:#?}"
            ));
        }
        for path in [state_file(&self.name), pin_dir(&self.name)] {
            if Path::new(&path).exists() {
                problems.push(format!("{what}: {path} exists"));
                let _ = std::fs::remove_dir_all(&path);
                let _ = std::fs::remove_file(&path);
            }
        }
        problems
    }

    /// What is wrong with how `vtep check` refused `cfg` (it must exit non-zero and say every
    /// string of `want`).
    pub(crate) fn check_problems(&self, what: &str, cfg: &str, want: &[&str]) -> Vec<String> {
        self.refusal(what, &["check"], cfg, want, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The good config starts (and stops cleanly), so each refusal was its mistake's.
    pub(crate) fn assert_good_starts(&mut self) {
        let (a, good) = (self.a.clone(), self.good.clone());
        let id = self.lab.start_vtep(&a, &good);
        let status = self.lab.vtep(id).stop().expect("vtep was running");
        assert!(status.success(), "good config: vtep exited {status}");
    }
}

#[test]
fn bad_config_changes_nothing() {
    let mut c = bad_config_lab();
    let good = c.good.clone();
    let missing = c.lab.name("nx");
    let port = c.lab.name("p");
    let (hostif, w1, pw) = (c.lab.name("x"), c.lab.name("w1"), c.lab.name("pw"));
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "unknown key",
            good.replace("remotes =", "remote_vteps ="),
            vec!["vni[0].remote_vteps", "unknown field `remote_vteps`"],
        ),
        (
            "VNI 0",
            good.replace("id = 100", "id = 0"),
            vec!["vni[0].id", "outside"],
        ),
        (
            "VNI 16777216",
            good.replace("id = 100", "id = 16777216"),
            vec!["vni[0].id", "16777216"],
        ),
        (
            "duplicate VNI",
            format!("{good}[[vni]]\nid = 100\n"),
            vec!["vni[1].id", "twice"],
        ),
        (
            // A parse error: named by its path like validation errors, and by its line.
            "bad address",
            good.replace("192.0.2.11/24", "192.0.2.300/24"),
            vec![
                "vni[0].workload[0].address",
                "`192.0.2.300` is not an IPv4 address",
                "(line ",
            ],
        ),
        (
            "bad MAC",
            good.replace("02:00:00:00:00:01", "02:00:00:00:01"),
            vec!["vni[0].workload[0].mac", "is not a MAC address", "(line "],
        ),
        (
            "group MAC",
            good.replace("02:00:00:00:00:01", "03:00:00:00:00:01"),
            vec!["vni[0].workload[0].mac", "group address"],
        ),
        (
            "missing underlay interface",
            good.replace(
                "interface = \"eth0\"",
                &format!("interface = \"{missing}\""),
            ),
            vec!["underlay.interface", &missing],
        ),
        (
            "missing adopted port",
            good.replace(
                &format!("interface = \"{port}\""),
                &format!("interface = \"{missing}\""),
            ),
            vec!["vni[0].port[0].interface", &missing],
        ),
        (
            "host interface exists",
            good.replace(&format!("interface = \"{hostif}\""), "interface = \"lo\""),
            vec!["vni[0].host.interface", "`lo` already exists"],
        ),
        (
            // pw holds the adopted port's peer, called eth0.
            "workload interface exists in its namespace",
            good.replace(&format!("netns = \"{w1}\""), &format!("netns = \"{pw}\"")),
            vec!["vni[0].workload[0].interface", "already exists"],
        ),
    ];
    let mut problems: Vec<String> = cases
        .iter()
        .flat_map(|(what, cfg, want)| c.refusal_problems(what, cfg, want))
        .collect();
    // `vtep check` finds the mistakes that need no look at the system, and passes the good one.
    let config_only = [
        "unknown key",
        "VNI 0",
        "VNI 16777216",
        "duplicate VNI",
        "bad address",
        "bad MAC",
        "group MAC",
    ];
    for (what, cfg, want) in cases.iter().filter(|(w, ..)| config_only.contains(w)) {
        problems.extend(c.check_problems(what, cfg, want));
    }
    let good_path = c.lab.file("good.toml", &good);
    let out = vtep_run(
        &["check", "-c", good_path.to_str().unwrap()],
        Duration::from_secs(10),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    if !out.status.success() {
        problems.push(format!(
            "vtep check refused the good config: {}",
            text(&out.stderr)
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    c.assert_good_starts();
}

/// An FDB too small for the config's own entries is a config error, found before anything on
/// the system changes, naming `fdb_size`.
#[test]
fn fdb_size_too_small_is_a_config_error() {
    let mut c = bad_config_lab();
    // The config has 3 entries: the host port's MAC, the workload's and one static entry.
    let cfg = c
        .good
        .replacen("\n\n[underlay]", "\nfdb_size = 2\n\n[underlay]", 1);
    let mut problems = c.refusal_problems("fdb_size 2", &cfg, &["fdb_size"]);
    problems.extend(c.check_problems("fdb_size 2", &cfg, &["fdb_size"]));
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    c.assert_good_starts();
}

/// Instance names are global (pins, state file): a second `vtep up` under a running
/// instance's name, even in another namespace, is refused and changes nothing.
#[test]
fn second_instance_with_same_name_is_refused() {
    let mut c = bad_config_lab();
    let (a, good) = (c.a.clone(), c.good.clone());
    let id = c.lab.start_vtep(&a, &good);
    let b = c.lab.name("b");
    let cfg = header(&c.name, "")
        + &vni(100, 4789, &[ADDR_A])
        + &workload(&c.lab.name("w9"), "192.0.2.21/24", "02:00:00:00:00:09");
    let before = host_snapshot(&c.lab, &b);
    let path = c.lab.file("same-name.toml", &cfg);
    let out = vtep_run(
        &["--netns", &b, "up", "-c", path.to_str().unwrap()],
        Duration::from_secs(15),
    )
    .unwrap_or_else(|e| panic!("second instance accepted: {e}"));
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "second instance: exit status 0");
    assert!(
        stderr.contains(&c.name),
        "error does not name the instance: {stderr}"
    );
    assert_eq!(host_snapshot(&c.lab, &b), before, "host B changed");
    // The first instance is untouched: its state is still there and it stops cleanly.
    assert!(Path::new(&state_file(&c.name)).exists());
    assert!(Path::new(&pin_dir(&c.name)).exists());
    let stats = c.lab.vtep(id).stats(&c.name);
    assert_eq!(stats["vnis"][0]["vni"], 100, "{stats}");
    let status = c.lab.vtep(id).stop().expect("vtep was running");
    assert!(status.success(), "first instance exited {status}");
}
