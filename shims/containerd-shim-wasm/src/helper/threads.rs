//! The rule that makes the helper's forks safe: at a fork, the process has one thread.
//! `libcontainer` forks the container's processes from the helper, and the zygote forks
//! workers; a child forked from a multi-threaded process may only call async-signal-safe
//! functions (a lock another thread held stays locked forever in the child). The helper's
//! own code starts no thread; [`Engine::new`](crate::Engine::new) and
//! [`Engine::compile`](crate::Engine::compile) must not either, and this is where that is
//! checked, before each fork.

use anyhow::{Context, bail};

/// Fails, naming the engine, unless this process has exactly one thread.
pub fn ensure_single_threaded(engine: &str) -> anyhow::Result<()> {
    let threads = thread_count()?;
    if threads != 1 {
        bail!(
            "the {engine} engine left {threads} threads in the helper process: it must start \
             none in new or compile, because the helper forks next (a fork of a multi-threaded \
             process may deadlock)"
        );
    }
    Ok(())
}

/// The threads of this process: the entries of `/proc/self/task`.
fn thread_count() -> anyhow::Result<usize> {
    const TASKS: &str = "/proc/self/task";
    let entries = std::fs::read_dir(TASKS).with_context(|| format!("list {TASKS}"))?;
    Ok(entries.count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_thread_is_counted_and_refused() {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let extra = std::thread::spawn(move || stopped.recv());
        assert!(thread_count().unwrap() >= 2);
        let error = ensure_single_threaded("noop").unwrap_err();
        assert!(
            format!("{error}").contains("the noop engine left"),
            "{error}"
        );
        drop(stop);
        extra.join().unwrap().unwrap_err();
    }
}
