//! The binary's command line outside the shim protocol: `-v`, containerd 2's `-info`, and the
//! create helper's refusal of a request it cannot read.

use std::process::Command;

use containerd_shim::protos::protobuf::Message;
use containerd_shim::protos::types::introspection::RuntimeInfo;

const SHIM: &str = env!("CARGO_BIN_EXE_containerd-shim-wasmtime-v1");

#[test]
fn version_names_the_binary_and_the_engine() {
    let out = Command::new(SHIM).arg("-v").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("containerd-shim-wasmtime-v1:\n"), "{text}");
    assert!(
        text.contains(&format!("Version:  {}", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    assert!(text.contains("Engine:   wasmtime 48"), "{text}");
}

#[test]
fn info_is_a_runtime_info_message() {
    let out = Command::new(SHIM).arg("-info").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let info = RuntimeInfo::parse_from_bytes(&out.stdout).unwrap();
    assert_eq!(info.name, "io.containerd.wasmtime.v1");
    assert_eq!(info.version.version, env!("CARGO_PKG_VERSION"));
}

#[test]
fn the_create_helper_answers_a_bad_request_with_an_error() {
    let out = Command::new(SHIM)
        .args(["create-container", "{not json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let answer = String::from_utf8(out.stdout).unwrap();
    assert!(
        answer.starts_with(r#"{"Err":{"message":"invalid helper request: "#),
        "{answer}"
    );
}
