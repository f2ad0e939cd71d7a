//! containerd's task events (`/tasks/...`) for one container, as a subscriber sees them.

use std::fmt;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use containerd_client::events::{
    TaskCheckpointed, TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskOom,
    TaskPaused, TaskResumed, TaskStart,
};
use containerd_client::types::Envelope;
use prost::{Message, Name};
use prost_types::Any;

use crate::api::Subscription;
use crate::results::CONTAINERD_VERSION_ENV;
use crate::target::Target;

/// The topics of task events, as a regular expression for [`crate::api::Api::subscribe`].
pub const TASK_TOPICS: &str = "^/tasks/";

/// How long to keep listening after a container's `/tasks/delete`, for events that come
/// after it (a duplicate exit, say) and would otherwise go unseen.
const LATE_EVENTS: Duration = Duration::from_secs(1);

/// Whether the task events `topics` a target published are the `expected` ones. The runc
/// shim of containerd 2.x may never publish the `/tasks/delete` that ends them: its Delete
/// only queues the event, and containerd's Shutdown call right after it ends the shim before
/// the queue is sent (`cmd/containerd-shim-runc-v2/task/service.go`; seen on 2.1.9, never on
/// 1.6 and 1.7). That loss is the reference's on that containerd, so runc there may end
/// without it; the Wasm shims publish it on every containerd.
pub fn topics_are(target: &Target, topics: &[&str], expected: &[&str]) -> bool {
    if topics == expected {
        return true;
    }
    let runc_on_2x = !target.runtime.runs_wasm
        && std::env::var(CONTAINERD_VERSION_ENV).is_ok_and(|v| v.starts_with("2."));
    runc_on_2x
        && expected.last() == Some(&"/tasks/delete")
        && topics == &expected[..expected.len() - 1]
}

/// A task event, with what the tests compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskEvent {
    pub topic: String,
    pub container_id: String,
    /// The process's pid, for events that carry one.
    pub pid: Option<u32>,
    /// The exit status, for `/tasks/exit` and `/tasks/delete`.
    pub exit_status: Option<u32>,
}

impl TaskEvent {
    /// Decodes a `/tasks/...` event; fails on other topics and on a payload whose type is
    /// not its topic's.
    pub fn decode(envelope: &Envelope) -> Result<Self> {
        let topic = envelope.topic.as_str();
        let payload = envelope
            .event
            .as_ref()
            .with_context(|| format!("event {topic} has no payload"))?;
        let (container_id, pid, exit_status) = match topic {
            "/tasks/create" => {
                let event: TaskCreate = decode(topic, payload)?;
                (event.container_id, Some(event.pid), None)
            }
            "/tasks/start" => {
                let event: TaskStart = decode(topic, payload)?;
                (event.container_id, Some(event.pid), None)
            }
            "/tasks/exit" => {
                let event: TaskExit = decode(topic, payload)?;
                (event.container_id, Some(event.pid), Some(event.exit_status))
            }
            "/tasks/delete" => {
                let event: TaskDelete = decode(topic, payload)?;
                (event.container_id, Some(event.pid), Some(event.exit_status))
            }
            "/tasks/exec-started" => {
                let event: TaskExecStarted = decode(topic, payload)?;
                (event.container_id, Some(event.pid), None)
            }
            _ => (container_of(topic, payload)?, None, None),
        };
        Ok(Self {
            topic: topic.to_owned(),
            container_id,
            pid,
            exit_status,
        })
    }
}

impl fmt::Display for TaskEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.topic)?;
        if let Some(pid) = self.pid {
            write!(f, " pid {pid}")?;
        }
        if let Some(status) = self.exit_status {
            write!(f, " status {status}")?;
        }
        Ok(())
    }
}

/// The container of a task event whose other fields the tests do not look at.
fn container_of(topic: &str, payload: &Any) -> Result<String> {
    Ok(match topic {
        "/tasks/oom" => decode::<TaskOom>(topic, payload)?.container_id,
        "/tasks/exec-added" => decode::<TaskExecAdded>(topic, payload)?.container_id,
        "/tasks/paused" => decode::<TaskPaused>(topic, payload)?.container_id,
        "/tasks/resumed" => decode::<TaskResumed>(topic, payload)?.container_id,
        "/tasks/checkpointed" => decode::<TaskCheckpointed>(topic, payload)?.container_id,
        other => bail!("{other} is not a task event this suite knows"),
    })
}

/// `payload` as `M`, if its type URL names `M` (containerd writes the bare type name).
fn decode<M: Message + Name + Default>(topic: &str, payload: &Any) -> Result<M> {
    let type_name = payload.type_url.rsplit('/').next().unwrap_or_default();
    if type_name != M::full_name() {
        bail!(
            "event {topic} carries a {:?}, not a {}",
            payload.type_url,
            M::full_name()
        );
    }
    M::decode(payload.value.as_slice())
        .with_context(|| format!("cannot decode the {} of event {topic}", M::full_name()))
}

/// The task events of container `id` from `events` (subscribed to [`TASK_TOPICS`]), up to
/// its `/tasks/delete` and [`LATE_EVENTS`] after it; what came by `timeout` if the delete
/// does not come.
pub fn task_events_of(
    events: &mut Subscription,
    id: &str,
    timeout: Duration,
) -> Result<Vec<TaskEvent>> {
    let mut seen: Vec<TaskEvent> = Vec::new();
    let mut deadline = Instant::now() + timeout;
    loop {
        // Checked here too: a busy stream would otherwise keep this going past the deadline.
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let Some(envelope) = events.next(left)? else {
            break;
        };
        let event = TaskEvent::decode(&envelope)?;
        if event.container_id != id {
            continue;
        }
        let deleted = event.topic == "/tasks/delete";
        seen.push(event);
        // The first delete ends the wait; a later one shows up as a duplicate.
        if deleted && seen.iter().filter(|e| e.topic == "/tasks/delete").count() == 1 {
            deadline = Instant::now() + LATE_EVENTS;
        }
    }
    Ok(seen)
}
