//! containerd restarted while Wasm and native containers run (`scripts/containerd.sh
//! restart`: containerd alone is replaced, shims and containers keep running). Afterwards the
//! tasks are still listed and running, their output keeps flowing, and Wait, Kill, Delete,
//! metrics and events work on them. runc is the reference.
//!
//! This file holds one test: a restart would disturb any other test running beside it.

use std::fs::File;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Barrier, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use nix::sys::stat::Mode;
use shim_conformance::api::Api;
use shim_conformance::container::{Container, Status};
use shim_conformance::environment::containerd;
use shim_conformance::events::{TASK_TOPICS, task_events_of, topics_are};
use shim_conformance::expect::EXIT_SIGKILL;
use shim_conformance::leftovers::expect_no_leftovers;
use shim_conformance::target::{Target, all_targets, check_targets};

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn containers_survive_a_containerd_restart() {
    let targets = all_targets();
    let barrier = Barrier::new(targets.len());
    let restarted: OnceLock<Result<(), String>> = OnceLock::new();
    check_targets(&targets, |target, test| {
        let running = Running::start(target, test);
        // Every target's containers run before the one restart, which all then check.
        if barrier.wait().is_leader() {
            let _ = restarted.set(containerd().restart().map_err(|e| format!("{e:#}")));
        }
        barrier.wait();
        let running = running?;
        restarted
            .get()
            .expect("the leader restarted containerd")
            .clone()
            .map_err(|e| anyhow!(e))?;
        running.check_after_restart(target)
    });
}

/// A target's two containers: one copying stdin to stdout through FIFOs this test holds,
/// one sleeping (started with `ctr run -d`).
struct Running {
    echo: Container,
    io: TaskIo,
    sleeper: Container,
    sleeper_pid: u32,
}

impl Running {
    fn start(target: &Target, test: &str) -> Result<Self> {
        let echo = target.container(&format!("{test}-echo"));
        echo.create(&target.args(&["stdin"]))?;
        let io = TaskIo::create(echo.id())?;
        let api = Api::connect()?;
        let [stdin, stdout, stderr] = io.paths();
        api.create_task_with_stdio(echo.id(), [&stdin, &stdout, &stderr])?;
        api.start_task(echo.id())?;
        io.send("before the restart\n")?;
        io.expect_output("before the restart\n")?;

        let sleeper = target.container(&format!("{test}-sleeper"));
        sleeper.run_detached(&target.args(&["sleep", "600"]))?;
        let sleeper_pid = sleeper
            .wait_for_status(Status::Running, Duration::from_secs(10))?
            .pid;
        Ok(Self {
            echo,
            io,
            sleeper,
            sleeper_pid,
        })
    }

    fn check_after_restart(self, target: &Target) -> Result<()> {
        let Self {
            echo,
            io,
            sleeper,
            sleeper_pid,
        } = self;
        // Listed and running, with the same process.
        let task = sleeper.task()?;
        ensure!(
            task.is_some_and(|t| t.status == Status::Running && t.pid == sleeper_pid),
            "after the restart {} is {task:?}, expected RUNNING with pid {sleeper_pid}",
            sleeper.id()
        );
        ensure!(
            echo.task()?.is_some_and(|t| t.status == Status::Running),
            "after the restart {} is not running",
            echo.id()
        );
        // Output keeps flowing.
        io.send("after the restart\n")?;
        io.expect_output("before the restart\nafter the restart\n")?;
        // Metrics and processes.
        ensure!(
            sleeper.memory_usage()? > 0,
            "no memory usage for {}",
            sleeper.id()
        );
        ensure!(
            sleeper.ps()?.contains(&sleeper_pid),
            "`ctr task ps {}` does not list {sleeper_pid}",
            sleeper.id()
        );
        // Kill, Wait, the exit event, Delete.
        let api = Api::connect()?;
        let mut events = api.subscribe(TASK_TOPICS)?;
        // One container at a time: reading one's events skips the others'.
        for container in [&sleeper, &echo] {
            container.kill("SIGKILL")?;
            let status = api.wait_task(container.id())?;
            ensure!(
                status == EXIT_SIGKILL as u32,
                "Wait on {} after SIGKILL returned {status}",
                container.id()
            );
            api.delete_task(container.id())?;
            let seen = task_events_of(&mut events, container.id(), Duration::from_secs(10))?;
            let topics: Vec<&str> = seen.iter().map(|e| e.topic.as_str()).collect();
            ensure!(
                topics_are(target, &topics, &["/tasks/exit", "/tasks/delete"]),
                "after the restart {} published {topics:?}, expected /tasks/exit then /tasks/delete",
                container.id()
            );
            container.delete()?;
            expect_no_leftovers(container.id())?;
        }
        Ok(())
    }
}

/// A task's stdin and stdout as FIFOs under ctr's FIFO directory (which the private
/// containerd shares), held open by this test across the restart.
struct TaskIo {
    dir: PathBuf,
    stdin: File,
    /// Held so that a shim opening it for writing does not wait for a reader.
    _stderr: File,
    output: Arc<Mutex<Vec<u8>>>,
}

impl TaskIo {
    fn create(id: &str) -> Result<Self> {
        let dir = PathBuf::from("/run/containerd/fifo").join(format!("{id}-io"));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        for name in ["stdin", "stdout", "stderr"] {
            let path = dir.join(name);
            let _ = std::fs::remove_file(&path);
            nix::unistd::mkfifo(&path, Mode::from_bits_truncate(0o600))
                .with_context(|| format!("mkfifo {}", path.display()))?;
        }
        // Read-write opens never block and never see EOF while the other side comes and goes.
        let open = |name: &str| {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(dir.join(name))
                .with_context(|| format!("open {}/{name}", dir.display()))
        };
        let stdin = open("stdin")?;
        let mut stdout = open("stdout")?;
        let stderr = open("stderr")?;
        let output = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&output);
        // The reader never sees EOF (it holds a writer too): it ends with the test process.
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        });
        Ok(Self {
            dir,
            stdin,
            _stderr: stderr,
            output,
        })
    }

    fn paths(&self) -> [String; 3] {
        ["stdin", "stdout", "stderr"].map(|name| self.dir.join(name).display().to_string())
    }

    fn send(&self, text: &str) -> Result<()> {
        (&self.stdin)
            .write_all(text.as_bytes())
            .context("write to the task's stdin FIFO")
    }

    fn expect_output(&self, expected: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let seen = String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned();
            if seen == expected {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the task's stdout is {seen:?}, expected {expected:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TaskIo {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
