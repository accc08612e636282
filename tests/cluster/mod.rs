//! A throwaway PostgreSQL cluster for the tests, through `scripts/postgres`.
//!
//! The conformance suite runs on `CHATKIT_TEST_POSTGRES_URL` (which `scripts/test` exports), or
//! else on a cluster the test binary starts once and that `scripts/postgres --watch` destroys
//! when the binary exits. Fault tests stop and freeze a server, so each starts its own.
//! Under `CI` a PostgreSQL test fails, never skips, when it has no database.
#![allow(dead_code)]

use std::time::Duration;

use tokio::process::Command;
use tokio::sync::OnceCell;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/postgres");

/// The variable `scripts/test` exports.
pub const URL_VARIABLE: &str = "CHATKIT_TEST_POSTGRES_URL";

/// A cluster this test process started; destroyed when dropped.
pub struct Cluster {
    pub url: String,
    dir: String,
}

async fn script(args: &[&str]) -> Result<String, String> {
    let run = Command::new(SCRIPT).args(args).kill_on_drop(true).output();
    let out = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .map_err(|_| format!("scripts/postgres {args:?} did not finish in 60 s"))?
        .map_err(|e| format!("cannot run scripts/postgres: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "scripts/postgres {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// `None` means skip: not in CI, and no PostgreSQL here. In CI, a failure.
fn usable(cluster: Result<Cluster, String>) -> Option<Cluster> {
    match cluster {
        Ok(cluster) => Some(cluster),
        Err(err) if in_ci() => panic!("CI needs PostgreSQL for this test: {err}"),
        Err(err) => {
            eprintln!("skipped: no PostgreSQL here ({err}); scripts/test installs it");
            None
        }
    }
}

impl Cluster {
    /// A new cluster of this test's own, or `None` (skip) outside CI when PostgreSQL is missing.
    pub async fn start() -> Option<Cluster> {
        usable(Self::try_start().await)
    }

    async fn try_start() -> Result<Cluster, String> {
        let pid = std::process::id().to_string();
        let out = script(&["start", "--watch", &pid]).await?;
        let mut lines = out.lines();
        match (lines.next(), lines.next()) {
            (Some(url), Some(dir)) => Ok(Cluster {
                url: url.to_owned(),
                dir: dir.to_owned(),
            }),
            _ => Err(format!("scripts/postgres start printed {out:?}")),
        }
    }

    /// `pg_ctl stop -m immediate`: the server dies, as in a crash.
    pub async fn kill(&self) {
        script(&["stop", &self.dir, "immediate"]).await.unwrap();
    }

    /// Start the stopped server again, on the same port.
    pub async fn restart(&self) {
        script(&["restart", &self.dir]).await.unwrap();
    }

    /// SIGSTOP the server and its backends: connections stay open, nothing answers.
    pub async fn freeze(&self) {
        script(&["freeze", &self.dir]).await.unwrap();
    }

    /// SIGCONT them.
    pub async fn thaw(&self) {
        script(&["thaw", &self.dir]).await.unwrap();
    }

    /// Run SQL as the superuser on the `chatkit` database; its rows, unaligned.
    pub async fn psql(&self, sql: &str) -> Result<String, String> {
        script(&["psql", &self.dir, "-At", "-c", sql]).await
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new(SCRIPT)
            .args(["destroy", &self.dir])
            .status();
    }
}

static SHARED: OnceCell<Option<String>> = OnceCell::const_new();

/// The database the conformance suite shares: `CHATKIT_TEST_POSTGRES_URL`, or a cluster started
/// once for this test binary. `None` (skip) only outside CI.
pub async fn shared_url() -> Option<String> {
    SHARED
        .get_or_init(|| async {
            if let Some(url) = std::env::var(URL_VARIABLE).ok().filter(|v| !v.is_empty()) {
                return Some(url);
            }
            if in_ci() {
                panic!("{URL_VARIABLE} is unset under CI: run the tests through scripts/test");
            }
            let cluster = usable(Cluster::try_start().await)?;
            let url = cluster.url.clone();
            // Lives as long as the process; the watcher destroys it after.
            std::mem::forget(cluster);
            Some(url)
        })
        .await
        .clone()
}
