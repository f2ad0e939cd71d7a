//! The helper's life: install the shim log, read the one request, do it, answer with one
//! line on standard output and exit.

use std::fs::File;
use std::io::Write;
use std::os::fd::FromRawFd;

use anyhow::Context;
use log::error;

use crate::config::EngineConfig;
use crate::engine::Engine;
use crate::request::{Created, HelperRequest};

/// The descriptor the shim log has in the helper and in a Wasm container's init process.
pub const LOG_FD: i32 = 3;

/// The whole life of the helper process. `engine` is the zygote's, made before the fork with
/// the settings beside it; without one, or when the request's options ask for other
/// settings, the helper makes its own.
pub fn helper_main<E: Engine>(request_json: &str, engine: Option<(E, EngineConfig)>) -> ! {
    // Descriptor 3 becomes the log before anything else can take that number.
    // SAFETY: descriptors 2 and 3 are ours; dup2 does not touch memory.
    let log_ok = unsafe { libc::dup2(2, LOG_FD) } == LOG_FD;
    if log_ok {
        // SAFETY: LOG_FD was just created by dup2 and is owned by nobody else.
        let log = unsafe { File::from_raw_fd(LOG_FD) };
        crate::shim_log::ShimLogger::install(log);
    }
    let answer = match serde_json::from_str::<HelperRequest>(request_json) {
        Ok(request) => {
            crate::shim_log::set_filter(request.debug());
            crate::config::set_for_process(request.options());
            let wanted = request.options().engine_config().ok();
            let engine = engine
                .filter(|(_, config)| wanted.as_ref() == Some(config))
                .map(|(engine, _)| engine);
            let done = std::env::set_current_dir(request.working_dir())
                .with_context(|| format!("enter {}", request.working_dir().display()))
                .and_then(|()| match &request {
                    HelperRequest::Create(create_request) => {
                        super::create::create(create_request, engine)
                    }
                    HelperRequest::Exec(exec_request) => super::exec::exec(exec_request, engine),
                });
            match done {
                Ok((pid, kind)) => Created::Ok {
                    pid,
                    kind,
                    phases: super::phases::take(),
                },
                Err(e) => {
                    let message = format!("{e:#}");
                    let id = request.container_id();
                    error!(id; "{}: {message}", request.subject());
                    Created::Err { message }
                }
            }
        }
        Err(e) => Created::Err {
            message: format!("invalid helper request: {e}"),
        },
    };
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(
        stdout,
        "{}",
        serde_json::to_string(&answer).expect("serializable")
    );
    let _ = stdout.flush();
    std::process::exit(if matches!(answer, Created::Ok { .. }) {
        0
    } else {
        1
    })
}
