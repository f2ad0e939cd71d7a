//! One container driven through `ctr`, with a unique id and best-effort cleanup on drop.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::api::Api;
use crate::ctr::{CmdOutput, Ctr, DEFAULT_TIMEOUT, RunningCtr};
use crate::engines::Runtime;
use crate::fifo::{FifoReader, make_fifo};
use crate::images::TestImage;

/// The annotation that names a container's pod (its sandbox's id), as CRI sets it: our shims
/// and runc's group a pod's containers in one shim by it.
pub const SANDBOX_ID_ANNOTATION: &str = "io.kubernetes.cri.sandbox-id";
/// CRI's `sandbox` or `container`.
pub const CONTAINER_TYPE_ANNOTATION: &str = "io.kubernetes.cri.container-type";

/// Task status as `ctr task ls` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Stopped,
    Paused,
    Other,
}

/// A row of `ctr task ls`: the task's pid (in containerd's pid namespace) and status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskInfo {
    pub pid: u32,
    pub status: Status,
}

/// ctr's default `--fifo-dir`. Each container gets its own directory below it, removed on
/// drop, so that the FIFOs of a ctr killed at its deadline do not pile up.
const CTR_FIFO_ROOT: &str = "/run/containerd/fifo";

/// A container id unique in this run: `<label>-<runtime>-<test process id>-<counter>`.
pub fn unique_id(label: &str, runtime: &Runtime) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // containerd ids: alphanumerics joined by single `-`, `_` or `.`, at most 76 characters.
    let label: String = label
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    let label: String = label.chars().take(40).collect();
    let label = label.trim_end_matches('-');
    format!("{label}-{}-{}-{n}", runtime.name, std::process::id())
}

/// A container of `image` on `runtime`, created by the first `run*`/`create` call.
#[derive(Debug)]
pub struct Container {
    id: String,
    runtime: &'static Runtime,
    image: &'static TestImage,
    env: Vec<String>,
    cwd: Option<String>,
    annotations: Vec<String>,
    read_only: bool,
    flags: Vec<String>,
    net_host: bool,
}

impl Container {
    pub fn new(label: &str, runtime: &'static Runtime, image: &'static TestImage) -> Self {
        Self {
            id: unique_id(label, runtime),
            runtime,
            image,
            env: Vec::new(),
            cwd: None,
            annotations: Vec::new(),
            read_only: false,
            flags: Vec::new(),
            net_host: false,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn runtime(&self) -> &'static Runtime {
        self.runtime
    }

    /// Adds `K=V` to the process environment (`ctr run --env`).
    pub fn env(mut self, var: &str) -> Self {
        self.env.push(var.to_owned());
        self
    }

    /// Sets the process's working directory (`ctr run --cwd`).
    pub fn cwd(mut self, dir: &str) -> Self {
        self.cwd = Some(dir.to_owned());
        self
    }

    /// Mounts the rootfs read-only (`ctr run --read-only`, `root.readonly` in the spec).
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }

    /// Shares the network namespace of containerd (`ctr run --net-host`): the private
    /// containerd's own, reached through [`crate::http`].
    pub fn net_host(mut self) -> Self {
        self.net_host = true;
        self
    }

    /// Adds an OCI annotation (`ctr run --annotation K=V`).
    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.annotations.push(format!("{key}={value}"));
        self
    }

    /// Adds a `ctr run` / `ctr container create` flag with its value, e.g.
    /// `--memory-limit 67108864`.
    pub fn flag(mut self, flag: &str, value: &str) -> Self {
        self.flags.extend([flag.to_owned(), value.to_owned()]);
        self
    }

    /// Adds a `ctr run` / `ctr container create` flag without a value, e.g. `--seccomp`.
    pub fn switch(mut self, flag: &str) -> Self {
        self.flags.push(flag.to_owned());
        self
    }

    /// Makes this container join the shim of container `sandbox_id`, as CRI does for a pod.
    pub fn in_sandbox(self, sandbox_id: &str) -> Self {
        self.annotation(SANDBOX_ID_ANNOTATION, sandbox_id)
    }

    /// `ctr run ... IMAGE ID ARGS` (or `ctr container create`), with this container's options.
    fn ctr_command(&self, verb: &[&str], args: &[&str]) -> Result<Ctr> {
        self.image.ensure_imported()?;
        let mut command: Vec<String> = verb.iter().map(|s| s.to_string()).collect();
        command.extend(["--runtime".into(), self.runtime.runtime_type.into()]);
        // `ctr run` picks the image's platform with --platform; `ctr container create` has no
        // such flag and takes the image as imported, and no FIFOs.
        if verb[0] == "run" {
            command.extend(["--platform".into(), self.image.platform.into()]);
            command.extend(["--fifo-dir".into(), self.fifo_dir()]);
        }
        for var in &self.env {
            command.extend(["--env".into(), var.clone()]);
        }
        if let Some(cwd) = &self.cwd {
            command.extend(["--cwd".into(), cwd.clone()]);
        }
        for annotation in &self.annotations {
            command.extend(["--annotation".into(), annotation.clone()]);
        }
        if self.read_only {
            command.push("--read-only".into());
        }
        command.extend(self.flags.iter().cloned());
        if self.net_host {
            command.push("--net-host".into());
        }
        command.push(self.image.reference.into());
        command.push(self.id.clone());
        command.extend(args.iter().map(|s| s.to_string()));
        Ok(Ctr::new(command))
    }

    /// `ctr run --rm`: runs `args` (process.args, args[0] included) to completion.
    pub fn run(&self, args: &[&str]) -> Result<CmdOutput> {
        self.run_within(args, DEFAULT_TIMEOUT)
    }

    /// [`Container::run`] for a run that may take up to `timeout`: the first run of a large
    /// component compiles it.
    pub fn run_within(&self, args: &[&str], timeout: Duration) -> Result<CmdOutput> {
        self.ctr_command(&["run", "--rm"], args)?
            .timeout(timeout)
            .output()
    }

    /// `ctr run --rm` with `stdin` piped in; ctr closes the container's stdin (CloseIO) when
    /// its own reaches EOF.
    ///
    /// The data is sent once the task runs: ctr 1.6 arms its CloseIO only after creating
    /// the task, and an EOF that comes earlier is never passed on (the container would wait
    /// for more input forever, under runc too).
    pub fn run_with_stdin(&self, args: &[&str], stdin: &[u8]) -> Result<CmdOutput> {
        let mut running = self
            .ctr_command(&["run", "--rm"], args)?
            .stdin_open()
            .spawn()?;
        self.wait_for_status(Status::Running, DEFAULT_TIMEOUT)
            .with_context(|| format!("`{}` did not start the task", running.command()))?;
        running.send_stdin(stdin);
        running.wait(DEFAULT_TIMEOUT)
    }

    /// `ctr run --rm` in the background, for containers that are killed or waited on later.
    pub fn spawn(&self, args: &[&str]) -> Result<RunningCtr> {
        self.ctr_command(&["run", "--rm"], args)?
            .timeout(Duration::from_secs(120))
            .spawn()
    }

    /// `ctr run -d`: starts the task and returns; stdio goes to /dev/null.
    pub fn run_detached(&self, args: &[&str]) -> Result<()> {
        self.ctr_command(&["run", "-d", "--null-io"], args)?
            .output()?
            .success()?;
        Ok(())
    }

    /// `ctr container create`: the container and its snapshot, without a task.
    pub fn create(&self, args: &[&str]) -> Result<()> {
        self.ctr_command(&["container", "create"], args)?
            .output()?
            .success()?;
        Ok(())
    }

    /// What `ctr task start` does in the foreground on a created container: runs a new task
    /// with the container's current spec to completion, then deletes the task (not the
    /// container). Through containerd's API with the output read to the end (ctr 1.6 may
    /// lose a fast task's output: see `fifo.rs`). A failed create or start is an error.
    pub fn start_task(&self) -> Result<CmdOutput> {
        let api = Api::connect()?;
        let command = format!("task of {} (Create, Start, Wait, Delete)", self.id);
        let dir = PathBuf::from(self.fifo_dir()).join("task");
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let stdout = make_fifo(&dir.join("stdout"))?;
        let stderr = make_fifo(&dir.join("stderr"))?;
        let (out, err) = (FifoReader::start(&stdout)?, FifoReader::start(&stderr)?);
        let text = |p: &std::path::Path| p.to_string_lossy().into_owned();
        api.create_task_with_stdio(&self.id, ["", &text(&stdout), &text(&stderr)])
            .with_context(|| command.clone())?;
        let status = api
            .start_task(&self.id)
            .and_then(|_| api.wait_task(&self.id));
        // The task goes whatever happened, as with ctr.
        let deleted = api.delete_task(&self.id);
        let status = status.with_context(|| command.clone())?;
        deleted.with_context(|| command.clone())?;
        Ok(CmdOutput {
            command,
            code: Some(status as i32),
            stdout: out.finish(),
            stderr: err.finish(),
        })
    }

    fn fifo_dir(&self) -> String {
        format!("{CTR_FIFO_ROOT}/{}", self.id)
    }

    /// The task's row in `ctr task ls`, if there is a task.
    pub fn task(&self) -> Result<Option<TaskInfo>> {
        let out = Ctr::new(["task", "ls"]).output()?;
        out.success()?;
        for line in out.stdout.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if let [id, pid, status] = fields[..]
                && id == self.id
            {
                let pid = pid
                    .parse()
                    .with_context(|| format!("bad pid in `ctr task ls` line {line:?}"))?;
                let status = match status {
                    "CREATED" => Status::Created,
                    "RUNNING" => Status::Running,
                    "STOPPED" => Status::Stopped,
                    "PAUSED" => Status::Paused,
                    _ => Status::Other,
                };
                return Ok(Some(TaskInfo { pid, status }));
            }
        }
        Ok(None)
    }

    /// Polls `ctr task ls` until the task has `status`; fails with the last status seen.
    pub fn wait_for_status(&self, status: Status, timeout: Duration) -> Result<TaskInfo> {
        let deadline = Instant::now() + timeout;
        loop {
            let task = self.task()?;
            if let Some(info) = task
                && info.status == status
            {
                return Ok(info);
            }
            if Instant::now() > deadline {
                bail!(
                    "task {} did not reach {status:?} within {timeout:?}; last seen: {task:?}",
                    self.id
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Polls `ctr task ls` until the task is not running any more (stopped or deleted).
    pub fn wait_until_not_running(&self, timeout: Duration) -> Result<Duration> {
        let start = Instant::now();
        loop {
            match self.task()? {
                Some(info) if info.status == Status::Running => {}
                _ => return Ok(start.elapsed()),
            }
            if start.elapsed() > timeout {
                bail!("task {} still RUNNING after {timeout:?}", self.id);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `ctr task kill -s SIGNAL`.
    pub fn kill(&self, signal: &str) -> Result<()> {
        Ctr::new(["task", "kill", "-s", signal, &self.id])
            .output()?
            .success()?;
        Ok(())
    }

    /// `ctr task pause`: freezes every process of the container.
    pub fn pause(&self) -> Result<()> {
        Ctr::new(["task", "pause", &self.id]).output()?.success()?;
        Ok(())
    }

    /// `ctr task resume`: thaws what [`Container::pause`] froze.
    pub fn resume(&self) -> Result<()> {
        Ctr::new(["task", "resume", &self.id]).output()?.success()?;
        Ok(())
    }

    /// `ctr task kill --all -s SIGNAL`: every process of the container.
    pub fn kill_all(&self, signal: &str) -> Result<()> {
        Ctr::new(["task", "kill", "--all", "-s", signal, &self.id])
            .output()?
            .success()?;
        Ok(())
    }

    /// Runs `args` (args[0] included) as exec process `exec_id` in the running task, to
    /// completion, through containerd's API (Exec, Start, Wait, Delete) with its output read
    /// to the end (see `fifo.rs` for why not `ctr task exec`). A failed Exec or Start is an
    /// error.
    pub fn exec(&self, exec_id: &str, args: &[&str]) -> Result<CmdOutput> {
        self.spawn_exec_in(exec_id, None, args)?.wait()
    }

    /// [`Container::exec`] with the exec's working directory set to `cwd`.
    pub fn exec_in(&self, exec_id: &str, cwd: &str, args: &[&str]) -> Result<CmdOutput> {
        self.spawn_exec_in(exec_id, Some(cwd), args)?.wait()
    }

    /// Starts exec process `exec_id` and returns while it runs.
    pub fn spawn_exec(&self, exec_id: &str, args: &[&str]) -> Result<ExecRun> {
        self.spawn_exec_in(exec_id, None, args)
    }

    fn spawn_exec_in(&self, exec_id: &str, cwd: Option<&str>, args: &[&str]) -> Result<ExecRun> {
        let api = Api::connect()?;
        // As ctr and CRI do: the container's process, with the exec's args (and cwd).
        let spec: serde_json::Value = serde_json::from_slice(&api.spec(&self.id)?)?;
        let mut process = spec["process"].clone();
        process["args"] = serde_json::json!(args);
        process["terminal"] = serde_json::json!(false);
        if let Some(cwd) = cwd {
            process["cwd"] = serde_json::json!(cwd);
        }
        let dir = PathBuf::from(self.fifo_dir()).join(format!("exec-{exec_id}"));
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let stdout = make_fifo(&dir.join("stdout"))?;
        let stderr = make_fifo(&dir.join("stderr"))?;
        let run = ExecRun {
            command: format!("exec {exec_id} in {}: {}", self.id, args.join(" ")),
            container_id: self.id.clone(),
            exec_id: exec_id.to_owned(),
            stdout: FifoReader::start(&stdout)?,
            stderr: FifoReader::start(&stderr)?,
        };
        let text = |p: &std::path::Path| p.to_string_lossy().into_owned();
        api.exec_process(
            &self.id,
            exec_id,
            &process,
            ["", &text(&stdout), &text(&stderr)],
        )
        .with_context(|| run.command.clone())?;
        if let Err(e) = api.start_process(&self.id, exec_id) {
            let _ = api.delete_process(&self.id, exec_id);
            return Err(e.context(run.command));
        }
        Ok(run)
    }

    /// `ctr run --rm -t` from a terminal of its own (see [`Ctr::in_terminal`]).
    pub fn run_in_terminal(&self, setup: &str, args: &[&str]) -> Result<Ctr> {
        Ok(self
            .ctr_command(&["run", "--rm", "-t"], args)?
            .in_terminal(setup))
    }

    /// `ctr task exec -t` from a terminal of its own.
    pub fn exec_in_terminal(&self, exec_id: &str, args: &[&str]) -> Ctr {
        let fifo_dir = self.fifo_dir();
        let mut command = vec!["task", "exec", "-t", "--exec-id", exec_id];
        command.extend(["--fifo-dir", &fifo_dir, &self.id]);
        command.extend(args);
        Ctr::new(command).in_terminal("true")
    }

    /// `ctr task kill --exec-id EXEC -s SIGNAL`.
    pub fn kill_exec(&self, exec_id: &str, signal: &str) -> Result<()> {
        Ctr::new(["task", "kill", "--exec-id", exec_id, "-s", signal, &self.id])
            .output()?
            .success()?;
        Ok(())
    }

    /// `ctr task metrics --format json`, parsed.
    pub fn metrics(&self) -> Result<serde_json::Value> {
        let out = Ctr::new(["task", "metrics", "--format", "json", &self.id]).output()?;
        out.success()?;
        serde_json::from_str(&out.stdout)
            .with_context(|| format!("`{}` printed no JSON: {}", out.command, out.describe()))
    }

    /// Memory the task's cgroup uses now, from `ctr task metrics` (cgroup v1 or v2 layout).
    pub fn memory_usage(&self) -> Result<u64> {
        let metrics = self.metrics()?;
        let usage = &metrics["memory"]["usage"];
        // v1: memory.usage.usage; v2: memory.usage.
        usage["usage"]
            .as_u64()
            .or_else(|| usage.as_u64())
            .with_context(|| format!("no memory usage in the metrics of {}: {metrics}", self.id))
    }

    /// Pids listed by `ctr task ps`.
    pub fn ps(&self) -> Result<Vec<u32>> {
        let out = Ctr::new(["task", "ps", &self.id]).output()?;
        out.success()?;
        out.stdout
            .lines()
            .skip(1)
            .filter_map(|line| line.split_whitespace().next())
            .map(|pid| {
                pid.parse().with_context(|| {
                    format!("bad pid {pid:?} in `{}`: {:?}", out.command, out.stdout)
                })
            })
            .collect()
    }

    /// `ctr task delete` (the task must have stopped).
    pub fn delete_task(&self) -> Result<CmdOutput> {
        let out = Ctr::new(["task", "delete", &self.id]).output()?;
        out.success()?;
        Ok(out)
    }

    /// `ctr container delete` (with its snapshot).
    pub fn delete(&self) -> Result<()> {
        Ctr::new(["container", "delete", &self.id])
            .output()?
            .success()?;
        Ok(())
    }
}

impl Drop for Container {
    /// Whatever the test did, leave nothing running: kill and delete the task, delete the
    /// container. Errors are expected here (usually there is nothing left to delete).
    fn drop(&mut self) {
        let quick = Duration::from_secs(10);
        let _ = Ctr::new(["task", "delete", "--force", &self.id])
            .timeout(quick)
            .output();
        let _ = Ctr::new(["container", "delete", &self.id])
            .timeout(quick)
            .output();
        let _ = std::fs::remove_dir_all(self.fifo_dir());
    }
}

/// An exec process started by [`Container::spawn_exec`].
pub struct ExecRun {
    command: String,
    container_id: String,
    exec_id: String,
    stdout: FifoReader,
    stderr: FifoReader,
}

impl ExecRun {
    /// Waits until the exec process has printed `needle`.
    pub fn wait_for_stdout(&self, needle: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while !self.stdout.so_far().contains(needle) {
            if Instant::now() > deadline {
                bail!(
                    "{}: no {needle:?} on stdout within {timeout:?}; so far {:?}",
                    self.command,
                    self.stdout.so_far()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Waits for the exit, deletes the exec process and returns its status and output.
    pub fn wait(self) -> Result<CmdOutput> {
        let api = Api::connect()?;
        let status = api.wait_process(&self.container_id, &self.exec_id)?;
        api.delete_process(&self.container_id, &self.exec_id)?;
        Ok(CmdOutput {
            command: self.command,
            code: Some(status as i32),
            stdout: self.stdout.finish(),
            stderr: self.stderr.finish(),
        })
    }
}
