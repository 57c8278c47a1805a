//! S2 and S5 through `lab up`, the printed commands and `lab down`.

use std::{
    fs::File,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output},
    time::{Duration, Instant},
};

use vtep_lab::scenario::{self, STATE_DIR, Scenario, Step, Up};
use vtep_tests::{
    lab::{list_netns, must, vtep_bin},
    output::text,
};

/// How long a `vtep up` may take to say it is up.
const UP_LIMIT: Duration = Duration::from_secs(30);
/// How long the store may take to carry one host's workloads to another.
const SETTLE: Duration = Duration::from_secs(15);

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("the workspace root")
}

fn state_dir() -> &'static Path {
    Path::new(STATE_DIR)
}

/// Takes the scenario's lab down when dropped, so a failed test leaves nothing behind. Made
/// only once `lab up` succeeded: a lab a user had up is never touched.
struct TakeDown(Scenario);

impl Drop for TakeDown {
    fn drop(&mut self) {
        if let Err(e) = scenario::down(Some(self.0), state_dir(), &mut |_| {}) {
            eprintln!("taking lab {} down after the test: {e:#}", self.0);
        }
    }
}

/// `lab up` of `s` with the workspace's vtep, and the guard that takes it down.
fn lab_up(s: Scenario) -> (Up, TakeDown) {
    let bin = vtep_bin().canonicalize().expect("the vtep binary");
    let up = must(scenario::up(s, state_dir(), &root(), &bin));
    (up, TakeDown(s))
}

/// A printed command as a process run from the workspace root (a relative program path such
/// as `target/debug/vtep` is the root's).
fn command(step: &Step) -> Command {
    let program = Path::new(&step.argv[0]);
    let program = if program.is_relative() && step.argv[0].contains('/') {
        root().join(program)
    } else {
        program.to_path_buf()
    };
    let mut cmd = Command::new(program);
    cmd.args(&step.argv[1..])
        .current_dir(root())
        .env("NO_COLOR", "1");
    cmd
}

/// Runs a printed command to completion.
fn run(step: &Step) -> Output {
    command(step)
        .output()
        .unwrap_or_else(|e| panic!("`{}`: {e}", step.line()))
}

/// Runs a printed command until it succeeds, for at most `limit`; its last output.
fn run_until_ok(step: &Step, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    loop {
        let out = run(step);
        if out.status.success() || Instant::now() > deadline {
            return out;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A `vtep up` started as printed, its output in a file.
struct Running {
    child: Child,
    log: PathBuf,
    line: String,
}

impl Running {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for vtep") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "`{}` did not exit within {limit:?}:\n{}",
                    self.line,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Reaped here when the test failed before `lab down` stopped it.
        if let Ok(None) = self.child.try_wait() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = self.wait(Duration::from_secs(30));
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Starts every printed `vtep up` of `up` and waits until each says it is up.
fn start_vteps(up: &Up) -> Vec<Running> {
    let mut running = Vec::new();
    for (i, step) in up.plan.start.iter().enumerate() {
        let log = std::env::temp_dir().join(format!(
            "vtep-lab-test-{}-{}-{i}.log",
            up.scenario,
            std::process::id()
        ));
        let out = File::create(&log).expect("log file");
        let child = command(step)
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("`{}`: {e}", step.line()));
        let mut r = Running {
            child,
            log,
            line: step.line(),
        };
        let deadline = Instant::now() + UP_LIMIT;
        while !r.log().contains("vtep is up") {
            if let Some(status) = r.child.try_wait().expect("waiting for vtep") {
                panic!("`{}` exited ({status}):\n{}", r.line, r.log());
            }
            assert!(
                Instant::now() < deadline,
                "`{}` not up within {UP_LIMIT:?}:\n{}",
                r.line,
                r.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        running.push(r);
    }
    running
}

/// `lab down` of `s`, with what it said.
fn lab_down(s: Scenario) -> String {
    let mut said = String::new();
    let result = scenario::down(Some(s), state_dir(), &mut |line| {
        said += line;
        said.push('\n');
    });
    if let Err(e) = result {
        panic!("lab down {s} failed: {e:#}\nit said:\n{said}");
    }
    said
}

/// Nothing of `s`'s lab and examples is left, and no namespace of the lab's names.
fn assert_nothing_left(s: Scenario) {
    let left = scenario::remains(s, state_dir());
    assert!(left.is_empty(), "left behind after lab down {s}: {left:?}");
    let prefix = format!("lab-{s}-");
    let ns: Vec<String> = list_netns()
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect();
    assert!(ns.is_empty(), "namespaces left: {ns:?}");
}

/// S2: the printed walkthrough names the lab's hosts and the example configs; a second `lab
/// up` is refused and changes nothing; both examples run with vtep as printed; every printed
/// ping answers and the printed `fdb show` lists the other host's workloads; `lab down` with
/// one vtep running (it gets SIGTERM and cleans up after itself) and one crashed (`vtep down`
/// cleans up after it) leaves nothing; a second `lab down` says the lab is not up.
#[test]
fn s2_lab_runs_the_examples_as_printed_and_lab_down_leaves_nothing() {
    let s = Scenario::S2;
    let (up, guard) = lab_up(s);
    let printed = up.render();
    for want in [
        "target/debug/vtep --netns lab-s2-a up -c examples/s2-host-a.toml",
        "target/debug/vtep --netns lab-s2-b up -c examples/s2-host-b.toml",
        "ip netns exec s2-a1 ping -c 3 192.0.2.21",
        "target/debug/vtep --netns lab-s2-a fdb show -n s2a",
        "cargo xtask lab down s2",
        "lab-s2-a: host, underlay eth0 198.18.0.1/24",
    ] {
        assert!(printed.contains(want), "`{want}` not printed:\n{printed}");
    }
    for (ns, addr) in [("lab-s2-a", "198.18.0.1/24"), ("lab-s2-b", "198.18.0.2/24")] {
        let out = vtep_lab::ip_in(ns, &["-br", "addr", "show", "eth0"]);
        let out = text_of(must(out));
        assert!(out.contains(addr) && out.contains("UP"), "{ns}: {out}");
    }

    let again = scenario::up(s, state_dir(), &root(), &vtep_bin())
        .expect_err("a second lab up s2 is refused");
    let again = format!("{again:#}");
    assert!(
        again.contains("up already") && again.contains("cargo xtask lab down s2"),
        "{again}"
    );
    assert!(
        scenario::status(state_dir())
            .unwrap()
            .contains("lab s2 is up")
    );

    let mut vteps = start_vteps(&up);
    for step in &up.plan.pings {
        let out = run(step);
        assert!(
            out.status.success(),
            "`{}`: {}{}",
            step.line(),
            text(&out.stdout),
            text(&out.stderr)
        );
    }
    for step in up
        .plan
        .look
        .iter()
        .filter(|s| !s.line().contains("tcpdump"))
    {
        let out = run(step);
        assert!(
            out.status.success(),
            "`{}`: {}",
            step.line(),
            text(&out.stderr)
        );
        if step.line().contains("fdb show") {
            let fdb = text(&out.stdout);
            assert!(
                fdb.contains("02:00:00:00:0b:01") && fdb.contains("198.18.0.2"),
                "`{}`:\n{fdb}",
                step.line()
            );
        }
    }

    // Host b's vtep crashes; host a's is still running when the lab goes down.
    let crashed = vteps.pop().expect("two vteps");
    let mut crashed = crashed;
    crashed.child.kill().expect("kill -9");
    crashed.wait(Duration::from_secs(10));
    let status = scenario::status(state_dir()).unwrap();
    assert!(
        status.contains("`s2a` in lab-s2-a: running")
            && status.contains("`s2b` in lab-s2-b: crashed"),
        "{status}"
    );

    let said = lab_down(s);
    assert!(
        said.contains("stopping vtep instance `s2a` in lab-s2-a"),
        "{said}"
    );
    assert!(
        said.contains("vtep instance `s2b` in lab-s2-b not stopped cleanly"),
        "{said}"
    );
    let status = vteps[0].wait(Duration::from_secs(30));
    assert!(
        status.success(),
        "vtep on a after SIGTERM: {status}\n{}",
        vteps[0].log()
    );
    assert_nothing_left(s);

    let said = lab_down(s);
    assert!(said.contains("lab s2 is not up"), "{said}");
    drop(guard);
}

fn text_of(out: Output) -> String {
    text(&out.stdout)
}

/// S5: `lab up s5` starts an etcd on the port the examples name; the three examples run as
/// printed and reach each other's workloads through the store; the printed `workload add`
/// makes a workload another host reaches; `lab down` stops the vteps, the etcd, and removes
/// its data: nothing is left and the port is free again.
#[test]
fn s5_lab_runs_the_store_examples_and_lab_down_stops_its_etcd() {
    let s = Scenario::S5;
    let (up, guard) = lab_up(s);
    assert_eq!(
        up.etcd.as_deref(),
        Some(format!("http://127.0.0.1:{}", scenario::S5_ETCD_PORT).as_str())
    );
    let _vteps = start_vteps(&up);
    for step in &up.plan.pings {
        let out = run_until_ok(step, SETTLE);
        assert!(
            out.status.success(),
            "`{}`: {}",
            step.line(),
            text(&out.stdout)
        );
    }
    let (_, runtime) = &up.plan.more[0];
    let [add, ping, fdb, del] = &runtime[..] else {
        panic!("the runtime workload steps changed: {runtime:?}");
    };
    assert!(
        add.line().contains("workload add s5-c2 vni 500"),
        "{}",
        add.line()
    );
    let out = run(add);
    assert!(
        out.status.success(),
        "`{}`: {}",
        add.line(),
        text(&out.stderr)
    );
    let out = run_until_ok(ping, SETTLE);
    assert!(
        out.status.success(),
        "`{}`: {}",
        ping.line(),
        text(&out.stdout)
    );
    let out = run(fdb);
    let rows = text(&out.stdout);
    assert!(
        rows.lines().any(|l| l.contains("02:00:00:00:0c:02")
            && l.contains("198.18.0.3")
            && l.contains("store")),
        "`{}`:\n{rows}",
        fdb.line()
    );
    let out = run(del);
    assert!(
        out.status.success(),
        "`{}`: {}",
        del.line(),
        text(&out.stderr)
    );

    let said = lab_down(s);
    for name in ["s5a", "s5b", "s5c"] {
        assert!(
            said.contains(&format!("stopping vtep instance `{name}`")),
            "{said}"
        );
    }
    assert!(said.contains("stopping etcd"), "{said}");
    assert_nothing_left(s);
    for port in [scenario::S5_ETCD_PORT, scenario::S5_ETCD_PEER_PORT] {
        assert!(
            TcpListener::bind(("127.0.0.1", port)).is_ok(),
            "127.0.0.1:{port} still taken after lab down"
        );
    }
    drop(guard);
}
