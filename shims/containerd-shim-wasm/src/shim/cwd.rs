//! The shim process's working directory is shared by all its threads, and libcontainer's
//! `start` changes it: it `chdir`s into the container's state directory to reach the notify
//! socket by a short relative name, then back. Two starts at once (a pod's containers) would
//! send one container's start to the other's socket (the first container never starts) and
//! leave the shim in a directory that is deleted later, where a create helper forked at that
//! moment fails with "failed to get cwd". Everything in the shim that changes the working
//! directory runs under [`serialized`], and helpers are started in an explicit directory.

use std::sync::Mutex;

static WORKING_DIRECTORY: Mutex<()> = Mutex::new(());

/// Runs `f`, which may change the working directory, with no other such call at the same
/// time, and puts the working directory back afterwards (libcontainer does not when the
/// notify socket cannot be reached).
pub fn serialized<T>(f: impl FnOnce() -> T) -> T {
    let _held = WORKING_DIRECTORY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let before = std::env::current_dir();
    let result = f();
    if let Ok(before) = before
        && std::env::current_dir().ok().as_ref() != Some(&before)
        && let Err(e) = std::env::set_current_dir(&before)
    {
        log::warn!(
            "return to the shim's working directory {}: {e}",
            before.display()
        );
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_working_directory_comes_back() {
        let before = std::env::current_dir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let seen = serialized(|| {
            std::env::set_current_dir(elsewhere.path()).unwrap();
            std::env::current_dir().unwrap()
        });
        assert_eq!(seen, elsewhere.path().canonicalize().unwrap());
        assert_eq!(std::env::current_dir().unwrap(), before);
    }
}
