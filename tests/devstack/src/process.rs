//! A child process in its own process group, with stdout and stderr in log files, killed with
//! its whole group on drop (cargo lambda watch starts cargo, which starts the function: all of
//! them go).

use anyhow::Context;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct ManagedProcess {
    name: String,
    child: Child,
    pub stdout_log: PathBuf,
    pub stderr_log: PathBuf,
}

impl ManagedProcess {
    /// Spawns `cmd` as `name`; logs go to `<log_dir>/<name>.stdout.log` and `.stderr.log`.
    pub fn spawn(name: &str, mut cmd: Command) -> anyhow::Result<Self> {
        let dir = crate::paths::log_dir();
        let unique = format!("{name}-{}", uuid::Uuid::new_v4().simple());
        let stdout_log = dir.join(format!("{unique}.stdout.log"));
        let stderr_log = dir.join(format!("{unique}.stderr.log"));
        let out = std::fs::File::create(&stdout_log)?;
        let err = std::fs::File::create(&stderr_log)?;
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .env("PATH", crate::paths::tool_path())
            .process_group(0);
        let child = cmd
            .spawn()
            .with_context(|| format!("start {name} ({:?})", cmd.get_program()))?;
        Ok(Self {
            name: name.to_string(),
            child,
            stdout_log,
            stderr_log,
        })
    }

    /// Spawns `cmd` as `name` and waits (30 s at most) for the line `<prefix><url>` it prints on
    /// stdout once it listens (`SANDBOX_LISTENING http://...`); answers the process and the url.
    /// A process that exits first fails with its stderr's tail.
    pub async fn spawn_listening(
        name: &str,
        cmd: Command,
        prefix: &str,
    ) -> anyhow::Result<(Self, String)> {
        let mut process = Self::spawn(name, cmd)?;
        let url = crate::wait::until(
            &format!("{name}'s {} line", prefix.trim()),
            Duration::from_secs(30),
            || {
                let ready = process.ensure_running().map(|_| {
                    process
                        .stdout()
                        .lines()
                        .find_map(|l| l.strip_prefix(prefix).map(|u| u.trim().to_string()))
                });
                async move { ready.ok().flatten() }
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}; stderr: {}", process.stderr_tail(1000)))?;
        Ok((process, url))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails if the process has exited (with the tail of its stderr, for the test's message).
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            anyhow::bail!(
                "{} exited with {status}; stderr tail:\n{}",
                self.name,
                self.stderr_tail(2000)
            );
        }
        Ok(())
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout_log).unwrap_or_default()
    }

    pub fn stderr_tail(&self, max: usize) -> String {
        let all = std::fs::read_to_string(&self.stderr_log).unwrap_or_default();
        let start = all.len().saturating_sub(max);
        let start = (start..all.len())
            .find(|i| all.is_char_boundary(*i))
            .unwrap_or(all.len());
        all[start..].to_string()
    }

    /// SIGTERM to the group, a short grace period, then SIGKILL to the group.
    pub fn stop(&mut self) {
        let pgid = self.child.id() as i32;
        if self.child.try_wait().ok().flatten().is_none() {
            signal_group(pgid, libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline {
                if self.child.try_wait().ok().flatten().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        }
        // Grandchildren (cargo, the function binaries) may outlive the leader: kill the group.
        signal_group(pgid, libc::SIGKILL);
        let _ = self.child.wait();
    }
}

fn signal_group(pgid: i32, signal: i32) {
    // SAFETY: kill(2) with a negative pid signals the process group we created for this child.
    unsafe {
        libc::kill(-pgid, signal);
    }
}

impl Drop for ManagedProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
