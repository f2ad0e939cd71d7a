//! Pausing a container must not end a module's sleep in failure.
//!
//! WasmEdge's WASI `poll_oneoff` (the host side of `thread::sleep`, `nanosleep`, `poll`)
//! arms timerfds and waits for them in `epoll_wait` with no timeout, and when that wait
//! returns `EINTR` it gives the module `EINTR` as the result of every subscription. The
//! cgroup freezer behind `ctr task pause` and `docker pause` interrupts such a wait without
//! any signal, so after `resume` a Rust module's `thread::sleep` panicked ("unexpected
//! result of poll_oneoff") and the container exited instead of sleeping on.
//!
//! libwasmedge is a C++ library we cannot change here, so the shim binary defines
//! `epoll_wait` itself: the dynamic linker binds the library's calls to the executable's
//! definition first (symbol interposition; `build.rs` exports it), and this one waits again
//! after an interruption when the caller asked to wait with no timeout. Nothing is lost by
//! that: a timerfd keeps counting while the process is frozen, so the sleep ends when it
//! would have; the signals that end a container exit in their handler (the library's
//! executor) or cannot be caught; and the shim's own event loops, which take `EINTR` as
//! "wait again" anyway, are not otherwise affected. Waits with a timeout still return
//! `EINTR`, as their caller has to recompute what is left.

use std::io;

use libc::{c_int, epoll_event};

/// `epoll_wait(2)` that restarts an untimed wait interrupted by the freezer or a signal.
///
/// # Safety
///
/// The contract of `epoll_wait(2)`: `events` points to room for `max_events` entries.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn epoll_wait(
    epoll_fd: c_int,
    events: *mut epoll_event,
    max_events: c_int,
    timeout: c_int,
) -> c_int {
    loop {
        // `epoll_pwait` with no signal mask is `epoll_wait` (and a name we do not replace).
        // SAFETY: the caller's contract, passed on unchanged.
        let ready =
            unsafe { libc::epoll_pwait(epoll_fd, events, max_events, timeout, std::ptr::null()) };
        let interrupted =
            ready < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted;
        if !(interrupted && timeout < 0) {
            return ready;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::time::{Duration, Instant};

    use super::*;

    /// An untimed wait survives a signal whose handler returns (as the freezer's wake-up
    /// does) and ends when its timerfd fires, on time.
    #[test]
    fn an_interrupted_untimed_wait_waits_on_for_its_timer() {
        extern "C" fn ignore(_: c_int) {}
        // SAFETY: a handler that does nothing; SIGUSR1 is not used elsewhere in the tests.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = ignore as *const () as usize;
            assert_eq!(
                libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()),
                0
            );
        }
        // SAFETY: plain system calls on descriptors this test owns.
        let (epoll, timer) = unsafe {
            let epoll = OwnedFd::from_raw_fd(libc::epoll_create1(libc::EPOLL_CLOEXEC));
            let timer = OwnedFd::from_raw_fd(libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_CLOEXEC,
            ));
            let due = libc::itimerspec {
                it_interval: libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                },
                it_value: libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 300_000_000,
                },
            };
            assert_eq!(
                libc::timerfd_settime(timer.as_raw_fd(), 0, &due, std::ptr::null_mut()),
                0
            );
            let mut interest = epoll_event {
                events: libc::EPOLLIN as u32,
                u64: 7,
            };
            assert_eq!(
                libc::epoll_ctl(
                    epoll.as_raw_fd(),
                    libc::EPOLL_CTL_ADD,
                    timer.as_raw_fd(),
                    &mut interest
                ),
                0
            );
            (epoll, timer)
        };
        // SAFETY: pthread_self is always safe; the thread is joined before the test returns.
        let waiter = unsafe { libc::pthread_self() };
        let start = Instant::now();
        let interrupter = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            // SAFETY: the waiting thread outlives this one (it joins it).
            unsafe { libc::pthread_kill(waiter, libc::SIGUSR1) };
        });
        let mut ready = [epoll_event { events: 0, u64: 0 }];
        // SAFETY: room for one event.
        let count = unsafe { epoll_wait(epoll.as_raw_fd(), ready.as_mut_ptr(), 1, -1) };
        let waited = start.elapsed();
        interrupter.join().unwrap();
        assert_eq!(count, 1, "{}", io::Error::last_os_error());
        assert_eq!({ ready[0].u64 }, 7);
        assert!(
            waited >= Duration::from_millis(290),
            "woke after {waited:?}"
        );
        drop(timer);
    }
}
