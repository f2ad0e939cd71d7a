//! Guest profiles on request: with [`DIR_ANNOTATION`], wasmtime's guest profiler samples the
//! module's Wasm stack every [`TICK`] (from the epoch callback, so only while Wasm code runs)
//! and writes the profile, in the Firefox profiler's processed format, to that directory when
//! the module ends: it returns, exits, traps, or the container is stopped (SIGTERM, SIGINT).
//! Off by default: a profiled store is interrupted at every tick.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use containerd_shim_wasm::WasiContext;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use wasmtime::{GuestProfiler, Store, UpdateDeadline};

use crate::limits::{TICK, start_ticker};

/// The container annotation naming the directory (inside the container) profiles go to.
pub const DIR_ANNOTATION: &str = "io.containerd.wasm.profile-dir";

/// How long a stopped container waits for its module to reach Wasm code (where the sampler
/// sees the stop) before it ends without its profile, as an unprofiled one ends at once.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// The directory `annotations` name for profiles; `None` when the container asked for none.
pub fn dir(annotations: &BTreeMap<String, String>) -> anyhow::Result<Option<PathBuf>> {
    match annotations.get(DIR_ANNOTATION) {
        None => Ok(None),
        Some(dir) if dir.starts_with('/') => Ok(Some(PathBuf::from(dir))),
        Some(dir) => {
            bail!("the annotation {DIR_ANNOTATION}={dir:?}: an absolute path in the container")
        }
    }
}

/// A profiled run: the profiler lives in the store's data (the epoch callback reaches it
/// there), the directory here.
pub struct Profiling {
    dir: PathBuf,
}

/// The signal that stopped a profiled module, 0 while none did.
static STOPPED_BY: AtomicI32 = AtomicI32::new(0);

impl Profiling {
    /// Starts sampling `store` into `profiler`, which its data holds at `slot`, when `ctx`
    /// asks for a profile; `None` (and nothing changed) otherwise.
    pub fn start<T: 'static>(
        store: &mut Store<T>,
        ctx: &WasiContext,
        slot: fn(&mut T) -> &mut Option<GuestProfiler>,
        profiler: impl FnOnce(Duration) -> anyhow::Result<GuestProfiler>,
    ) -> anyhow::Result<Option<Self>> {
        let Some(dir) = dir(&ctx.annotations)? else {
            return Ok(None);
        };
        *slot(store.data_mut()) = Some(profiler(TICK).context("start the guest profiler")?);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |mut store| {
            if let Some(mut profiler) = slot(store.data_mut()).take() {
                profiler.sample(&store, TICK);
                *slot(store.data_mut()) = Some(profiler);
            }
            match STOPPED_BY.load(Ordering::Relaxed) {
                0 => Ok(UpdateDeadline::Continue(1)),
                signal => Err(wasmtime::format_err!("stopped by signal {signal}")),
            }
        });
        start_ticker(store.engine())?;
        stop_through_the_sampler()?;
        Ok(Some(Self { dir }))
    }

    /// Writes the profile `store` holds at `slot` as a new file of the directory, saying where
    /// (or why not) on the container's stderr and in the shim log; the status of the run
    /// becomes the stopping signal's when one stopped it.
    pub fn finish<T>(
        self,
        store: &mut Store<T>,
        slot: fn(&mut T) -> &mut Option<GuestProfiler>,
        ctx: &WasiContext,
        result: anyhow::Result<i32>,
    ) -> anyhow::Result<i32> {
        if let Some(profiler) = slot(store.data_mut()).take() {
            let path = self
                .dir
                .join(super::file_name(&ctx.container, "profile.json"));
            let written = std::fs::File::create_new(&path)
                .map_err(anyhow::Error::from)
                .and_then(|file| {
                    profiler
                        .finish(std::io::BufWriter::new(file))
                        .map_err(Into::into)
                })
                .with_context(|| format!("write {}", path.display()))
                .map(|()| path);
            super::report(ctx, "profile", &written);
        }
        match STOPPED_BY.load(Ordering::Relaxed) {
            0 => result,
            signal => Ok(128 + signal),
        }
    }
}

/// SIGTERM and SIGINT, which end an unprofiled module at once, only note the signal: the
/// sampler stops the module at its next tick so that the profile is written; a module that
/// does not reach Wasm code within [`STOP_GRACE`] (one blocked in a host call) ends then,
/// without it.
fn stop_through_the_sampler() -> anyhow::Result<()> {
    extern "C" fn note(signal: nix::libc::c_int) {
        STOPPED_BY.store(signal, Ordering::Relaxed);
    }
    let action = SigAction::new(SigHandler::Handler(note), SaFlags::empty(), SigSet::empty());
    for signal in [Signal::SIGTERM, Signal::SIGINT] {
        // SAFETY: the handler only stores to an atomic.
        unsafe { sigaction(signal, &action) }?;
    }
    std::thread::Builder::new()
        .name("profile-stop".into())
        .spawn(|| {
            loop {
                std::thread::sleep(TICK);
                let signal = STOPPED_BY.load(Ordering::Relaxed);
                if signal != 0 {
                    std::thread::sleep(STOP_GRACE);
                    eprintln!("profile not written: the module did not stop within {STOP_GRACE:?}");
                    // SAFETY: _exit ends the process at once, as the unprofiled handler does.
                    unsafe { nix::libc::_exit(128 + signal) }
                }
            }
        })
        .map(drop)
        .context("start the thread that ends a stopped module")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_are_off_unless_an_absolute_directory_is_named() {
        let annotations =
            |dir: &str| BTreeMap::from([(DIR_ANNOTATION.to_string(), dir.to_string())]);
        assert_eq!(dir(&BTreeMap::new()).unwrap(), None);
        assert_eq!(
            dir(&annotations("/profiles")).unwrap(),
            Some("/profiles".into())
        );
        let err = dir(&annotations("profiles")).unwrap_err().to_string();
        assert!(err.contains(DIR_ANNOTATION), "{err}");
    }
}
