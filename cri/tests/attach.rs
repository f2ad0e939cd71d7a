//! Attach (`kubectl attach -i`), as critest's "runtime should support attach" checks it: CRI
//! Attach answers a streaming URL for a running container that keeps its stdin open, and
//! through that stream what is written to the container's stdin reaches it and what it
//! prints comes back, on stdout, with nothing on stderr or the error channel. The container
//! runs the demo's `stdin` (copy stdin to stdout), Wasm and native; runc is the reference.

use std::time::Duration;

use anyhow::{Result, ensure};
use cri_conformance::cases::{Kind, for_each_kind, logged_output};
use cri_conformance::check_on;
use cri_conformance::pod::Pod;
use cri_conformance::streaming::{self, ChannelStream, ERROR, STDERR, STDOUT};
use k8s_cri::v1::ContainerState;

const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the echo of a line written to stdin may take to come back.
const ECHO_TIMEOUT: Duration = Duration::from_secs(10);

check_on!(attach_streams_stdin_and_stdout: wasmtime, wamr, wasmedge, runc);

fn attach_streams_stdin_and_stdout(handler: &str) -> Result<()> {
    for_each_kind("attach", handler, attach_one)
}

fn attach_one(pod: &mut Pod, kind: Kind, containers: &mut Vec<String>) -> Result<()> {
    let name = format!("attach-{kind}");
    let spec = kind.demo(&name, &["stdin"]).with_stdin();
    let id = pod.create_container(&spec)?;
    containers.push(id.clone());
    pod.start_container(&id)?;
    pod.wait_for_state(&id, ContainerState::ContainerRunning, START_TIMEOUT)?;

    let url = streaming::attach_url(pod, &id)?;
    ensure!(
        url.starts_with("http://") && url.contains("/attach/"),
        "Attach answered the URL {url:?}, expected http://<streaming server>/attach/<token>"
    );
    let mut stream = ChannelStream::connect(&url)?;
    // The server says the stream is up with an empty message on the lowest output channel.
    let hello = stream.collect_until(Duration::from_secs(5), |c| !c.messages.is_empty())?;
    ensure!(
        hello.messages.first() == Some(&(STDOUT, 0)),
        "expected an empty message on stdout when the attach stream opened; saw {hello:?}"
    );

    let mut echoed = String::new();
    for line in ["hello through attach\n", "and a second line\n"] {
        stream.send(streaming::STDIN, line.as_bytes())?;
        let expected = format!("{echoed}{line}");
        let seen = stream.collect_until(ECHO_TIMEOUT, |c| c.text(STDOUT).len() >= line.len())?;
        echoed.push_str(&seen.text(STDOUT));
        ensure!(
            echoed == expected && seen.text(STDERR).is_empty() && seen.text(ERROR).is_empty(),
            "after writing {line:?} to stdin: expected stdout {expected:?} and nothing on \
             stderr or the error channel; saw stdout {echoed:?}, stderr {:?}, error {:?}, \
             closed: {}",
            seen.text(STDERR),
            seen.text(ERROR),
            seen.closed
        );
    }
    // Nothing else comes (critest: "should not contain other things").
    let rest = stream.collect_until(Duration::from_secs(2), |c| !c.messages.is_empty())?;
    ensure!(
        rest.channels.values().all(Vec::is_empty),
        "the attach stream sent more than the echo: {rest:?}"
    );
    stream.close();

    // The container goes on, and what it printed is in its CRI log as well.
    let status = pod.container_status(&id)?;
    ensure!(
        status.state == ContainerState::ContainerRunning as i32,
        "the container is {:?} after the attach stream closed, expected running: {status:?}",
        ContainerState::try_from(status.state)
    );
    let (stdout, _) = logged_output(&pod.log_path(&name))?;
    ensure!(
        stdout == echoed,
        "the CRI log has stdout {stdout:?}, expected what came through attach, {echoed:?}"
    );
    Ok(())
}
