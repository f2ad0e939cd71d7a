//! The task state machine. Every transition is explicit; an illegal one is an error that the
//! task service reports as FAILED_PRECONDITION.

use std::time::SystemTime;

/// Where a container's init process is in its life.
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
#[error("cannot {action} container {id}: it is {status}")]
pub struct IllegalTransition {
    pub id: String,
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
    pub fn start(&mut self, id: &str) -> Result<(), IllegalTransition> {
        self.require(id, "start", matches!(self, Status::Created))?;
        *self = Status::Running;
        Ok(())
    }

    /// running -> paused.
    pub fn pause(&mut self, id: &str) -> Result<(), IllegalTransition> {
        self.require(id, "pause", matches!(self, Status::Running))?;
        *self = Status::Paused;
        Ok(())
    }

    /// paused -> running.
    pub fn resume(&mut self, id: &str) -> Result<(), IllegalTransition> {
        self.require(id, "resume", matches!(self, Status::Paused))?;
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
    pub fn check_kill(&self, id: &str) -> Result<(), IllegalTransition> {
        self.require(id, "signal", !matches!(self, Status::Stopped { .. }))
    }

    /// A running or paused container must be stopped before it is deleted.
    pub fn check_delete(&self, id: &str) -> Result<(), IllegalTransition> {
        self.require(
            id,
            "delete",
            !matches!(self, Status::Running | Status::Paused),
        )
    }

    fn require(
        &self,
        id: &str,
        action: &'static str,
        allowed: bool,
    ) -> Result<(), IllegalTransition> {
        if allowed {
            return Ok(());
        }
        Err(IllegalTransition {
            id: id.to_string(),
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
        s.check_delete("c").unwrap();
        s.start("c").unwrap();
        assert_eq!(s, Status::Running);
        assert_eq!(
            s.start("c").unwrap_err().to_string(),
            "cannot start container c: it is running"
        );
        assert_eq!(
            s.check_delete("c").unwrap_err().to_string(),
            "cannot delete container c: it is running"
        );
        s.check_kill("c").unwrap();
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
        assert!(s.check_kill("c").is_err());
        assert!(s.start("c").is_err());
        s.check_delete("c").unwrap();
    }

    #[test]
    fn pause_and_resume() {
        let mut s = Status::Created;
        assert_eq!(
            s.pause("c").unwrap_err().to_string(),
            "cannot pause container c: it is created"
        );
        s.start("c").unwrap();
        s.pause("c").unwrap();
        assert_eq!(s.name(), "paused");
        assert!(s.pause("c").is_err());
        assert!(s.check_delete("c").is_err());
        s.check_kill("c").unwrap();
        s.resume("c").unwrap();
        assert_eq!(s, Status::Running);
        assert!(s.resume("c").is_err());
        s.pause("c").unwrap();
        assert!(
            s.exit(137, SystemTime::now()),
            "a paused process can die (SIGKILL)"
        );
        assert!(s.resume("c").is_err());
    }

    #[test]
    fn a_created_container_can_be_killed_and_exit() {
        let mut s = Status::Created;
        s.check_kill("c").unwrap();
        assert!(s.exit(137, SystemTime::now()));
        assert_eq!(s.name(), "stopped");
    }
}
