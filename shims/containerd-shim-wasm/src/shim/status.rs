//! The task state machine. Every transition is explicit; an illegal one is an error that the
//! task service reports as FAILED_PRECONDITION.

use std::time::SystemTime;

/// Where a process (a container's init, or an exec process) is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Set up and waiting for `start`.
    Created,
    /// The workload runs.
    Running,
    /// Frozen by `pause` (cgroup freezer).
    Paused,
    /// The process is gone; its exit status is final.
    Stopped {
        exit_status: u32,
        exited_at: SystemTime,
    },
}

/// A transition that the current status does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {action} {what}: it is {status}")]
pub struct IllegalTransition {
    /// What was asked to move, e.g. `container c1` or `exec process e1 of container c1`.
    pub what: String,
    pub action: &'static str,
    pub status: &'static str,
}

impl Status {
    pub fn name(&self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped { .. } => "stopped",
        }
    }

    /// created -> running.
    pub fn start(&mut self, what: &str) -> Result<(), IllegalTransition> {
        self.require(what, "start", matches!(self, Status::Created))?;
        *self = Status::Running;
        Ok(())
    }

    /// running -> paused.
    pub fn pause(&mut self, what: &str) -> Result<(), IllegalTransition> {
        self.require(what, "pause", matches!(self, Status::Running))?;
        *self = Status::Paused;
        Ok(())
    }

    /// paused -> running.
    pub fn resume(&mut self, what: &str) -> Result<(), IllegalTransition> {
        self.require(what, "resume", matches!(self, Status::Paused))?;
        *self = Status::Running;
        Ok(())
    }

    /// created | running | paused -> stopped. Returns false when already stopped, so an exit is
    /// recorded (and reported) exactly once.
    pub fn exit(&mut self, exit_status: u32, exited_at: SystemTime) -> bool {
        if matches!(self, Status::Stopped { .. }) {
            return false;
        }
        *self = Status::Stopped {
            exit_status,
            exited_at,
        };
        true
    }

    /// Signals go to created and running processes only.
    pub fn check_kill(&self, what: &str) -> Result<(), IllegalTransition> {
        self.require(what, "signal", !matches!(self, Status::Stopped { .. }))
    }

    /// A running or paused container must be stopped before it is deleted.
    pub fn check_delete(&self, what: &str) -> Result<(), IllegalTransition> {
        self.require(
            what,
            "delete",
            !matches!(self, Status::Running | Status::Paused),
        )
    }

    fn require(
        &self,
        what: &str,
        action: &'static str,
        allowed: bool,
    ) -> Result<(), IllegalTransition> {
        if allowed {
            return Ok(());
        }
        Err(IllegalTransition {
            what: what.to_string(),
            action,
            status: self.name(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle() {
        let mut s = Status::Created;
        s.check_delete("container c").unwrap();
        s.start("container c").unwrap();
        assert_eq!(s, Status::Running);
        assert_eq!(
            s.start("container c").unwrap_err().to_string(),
            "cannot start container c: it is running"
        );
        assert_eq!(
            s.check_delete("container c").unwrap_err().to_string(),
            "cannot delete container c: it is running"
        );
        s.check_kill("container c").unwrap();
        let at = SystemTime::now();
        assert!(s.exit(3, at));
        assert!(!s.exit(9, SystemTime::now()), "a second exit is ignored");
        assert_eq!(
            s,
            Status::Stopped {
                exit_status: 3,
                exited_at: at
            }
        );
        assert!(s.check_kill("container c").is_err());
        assert!(s.start("container c").is_err());
        s.check_delete("container c").unwrap();
    }

    #[test]
    fn pause_and_resume() {
        let mut s = Status::Created;
        assert_eq!(
            s.pause("container c").unwrap_err().to_string(),
            "cannot pause container c: it is created"
        );
        s.start("container c").unwrap();
        s.pause("container c").unwrap();
        assert_eq!(s.name(), "paused");
        assert!(s.pause("container c").is_err());
        assert!(s.check_delete("container c").is_err());
        s.check_kill("container c").unwrap();
        s.resume("container c").unwrap();
        assert_eq!(s, Status::Running);
        assert!(s.resume("container c").is_err());
        s.pause("container c").unwrap();
        assert!(
            s.exit(137, SystemTime::now()),
            "a paused process can die (SIGKILL)"
        );
        assert!(s.resume("container c").is_err());
    }

    #[test]
    fn a_created_container_can_be_killed_and_exit() {
        let mut s = Status::Created;
        s.check_kill("container c").unwrap();
        assert!(s.exit(137, SystemTime::now()));
        assert_eq!(s.name(), "stopped");
    }
}
