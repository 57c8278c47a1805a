//! A throw-away Prometheus server for the metrics tests: it listens on 127.0.0.1 only, scrapes
//! the targets it is given every second, keeps its data and log in a directory of its own, and
//! is killed with the lab that started it (or when its last handle goes). Queried over its
//! HTTP API with curl, as the store tests read etcd.

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::Command,
    sync::Arc,
    time::Duration,
};

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

use crate::{cmd::run, free_port, server::ServerProcess};

/// How long Prometheus may take to say it is ready after it was started.
const READY_LIMIT: Duration = Duration::from_secs(20);
/// The longest one request to it may take.
const REQUEST_LIMIT: &str = "5";

/// A Prometheus server on 127.0.0.1. Cheap to clone: clones are handles of one process,
/// killed when the last is dropped.
#[derive(Clone)]
pub struct Prometheus(Arc<Inner>);

struct Inner {
    dir: PathBuf,
    port: u16,
    child: ServerProcess,
}

impl Prometheus {
    /// Starts Prometheus with a scrape job `vtep` that scrapes `targets` (`HOST:PORT`) every
    /// second, its config, data and log in `dir`, and waits until it is ready. Fails, with its
    /// log, when it does not get ready within 20 s.
    pub fn start(dir: &Path, targets: &[String]) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let config = dir.join("prometheus.yml");
        let targets: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: vtep\n    static_configs:\n      - targets: [{}]\n",
                targets.join(", ")
            ),
        )
        .with_context(|| format!("writing {}", config.display()))?;
        // The port was free a moment ago; another process may take it first. Then Prometheus
        // exits at once, and another port is tried.
        let mut last = None;
        for _ in 0..3 {
            let p = Self(Arc::new(Inner {
                dir: dir.to_path_buf(),
                port: free_port()?,
                child: ServerProcess::default(),
            }));
            match p.spawn(&config).and_then(|()| p.wait_ready()) {
                Ok(()) => return Ok(p),
                Err(e) if p.log().contains("address already in use") => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("three attempts"))
    }

    /// Its base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.0.port)
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.0.dir.join("prometheus.log")
    }

    fn spawn(&self, config: &Path) -> Result<()> {
        let log = File::create(self.log_path())
            .with_context(|| format!("creating {}", self.log_path().display()))?;
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                self.0.dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{}", self.0.port))
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting prometheus (Debian package `prometheus`)")?;
        self.0.child.set("prometheus", child)
    }

    /// Waits until `/-/ready` answers. Fails, with its log, when it exits first or is not
    /// ready within 20 s.
    fn wait_ready(&self) -> Result<()> {
        let url = format!("{}/-/ready", self.url());
        self.0.child.wait_answering(
            "prometheus",
            READY_LIMIT,
            Duration::from_millis(100),
            || run("curl", &["-sSf", "--max-time", "1", &url]).is_ok(),
            || self.log(),
        )
    }

    /// The `data.result` of instant query `promql` (`/api/v1/query`): one object per series,
    /// with its `metric` labels and its `value`. Fails when Prometheus does not answer or
    /// refuses the query.
    pub fn query(&self, promql: &str) -> Result<Vec<Value>> {
        let reply = self.get("/api/v1/query", &[("query", promql)])?;
        Ok(reply["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// The `data.activeTargets` of `/api/v1/targets`: each with its `health` and `lastError`.
    /// Fails when Prometheus does not answer.
    pub fn targets(&self) -> Result<Vec<Value>> {
        let reply = self.get("/api/v1/targets", &[])?;
        Ok(reply["data"]["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// GETs `path` with the URL-encoded `params` and returns the JSON reply. Fails when curl
    /// does, or the reply's status is not `success`.
    fn get(&self, path: &str, params: &[(&str, &str)]) -> Result<Value> {
        let url = format!("{}{path}", self.url());
        let encoded: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut args = vec!["-sS", "--max-time", REQUEST_LIMIT, "-G", url.as_str()];
        for p in &encoded {
            args.extend(["--data-urlencode", p.as_str()]);
        }
        let out = run("curl", &args)?;
        let reply: Value = serde_json::from_slice(&out.stdout).with_context(|| {
            format!(
                "prometheus's reply to {path}: {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })?;
        if reply["status"] != "success" {
            bail!("prometheus refused {path} {params:?}: {reply}");
        }
        Ok(reply)
    }

    /// Kills it with SIGKILL and waits for it.
    pub fn kill(&self) {
        self.0.child.kill();
    }
}
