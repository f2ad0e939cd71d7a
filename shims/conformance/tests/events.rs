//! containerd's events for a container, as a subscriber sees them: each task event once,
//! in the order of the task's life, the exit event with the program's exit status.

use std::time::Duration;

use anyhow::{Result, bail};
use shim_conformance::api::{Api, Subscription};
use shim_conformance::events::{TASK_TOPICS, TaskEvent, task_events_of, topics_are};
use shim_conformance::expect::EXIT_SIGKILL;
use shim_conformance::target::{Target, all_targets, check_targets};

/// The task events of a container run with `ctr run --rm`, in order.
const TASK_LIFE: [&str; 4] = [
    "/tasks/create",
    "/tasks/start",
    "/tasks/exit",
    "/tasks/delete",
];

/// How long a container's events may take to arrive after `ctr run` returns.
const EVENTS_TIMEOUT: Duration = Duration::from_secs(10);

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn events_arrive_in_order() {
    check_targets(&all_targets(), |target, test| {
        let api = Api::connect()?;
        let mut events = api.subscribe(TASK_TOPICS)?;

        let exits = target.container(&format!("{test}-exits"));
        exits
            .run(&target.args(&["echo", "hi"]))?
            .expect(0, "hi\n")?;
        expect_task_life(target, &mut events, exits.id(), 0)?;

        let killed = target.container(&format!("{test}-killed"));
        let mut running = killed.spawn(&target.args(&["sleep", "600"]))?;
        running.wait_for_stdout("sleeping 600", Duration::from_secs(20))?;
        killed.kill("SIGKILL")?;
        running
            .wait(Duration::from_secs(10))?
            .expect(EXIT_SIGKILL, "sleeping 600\n")?;
        expect_task_life(target, &mut events, killed.id(), EXIT_SIGKILL as u32)
    });
}

/// Container `id`'s task events are [`TASK_LIFE`], each once, about one process, and the
/// exit event carries `exit_status` (the delete may be missing where [`topics_are`] says so).
fn expect_task_life(
    target: &Target,
    events: &mut Subscription,
    id: &str,
    exit_status: u32,
) -> Result<()> {
    let seen = task_events_of(events, id, EVENTS_TIMEOUT)?;
    let topics: Vec<&str> = seen.iter().map(|event| event.topic.as_str()).collect();
    let pids: Vec<Option<u32>> = seen.iter().map(|event| event.pid).collect();
    let exit = seen.iter().find(|event| event.topic == "/tasks/exit");
    let problem = if !topics_are(target, &topics, &TASK_LIFE) {
        format!("expected the topics {TASK_LIFE:?}")
    } else if pids.iter().any(|pid| *pid != pids[0] || *pid == Some(0)) {
        "expected every event about the same, non-zero pid".to_owned()
    } else if exit.and_then(|event| event.exit_status) != Some(exit_status) {
        format!("expected /tasks/exit with exit status {exit_status}")
    } else {
        return Ok(());
    };
    bail!(
        "task events of container {id}: {problem}; got [{}]",
        seen.iter()
            .map(TaskEvent::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    )
}
