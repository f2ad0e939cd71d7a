//! A container setting its engine cannot enforce is refused at create, naming the engine and
//! the setting, rather than ignored: a limit or a network rule that silently does nothing is
//! worse than none.

use anyhow::bail;
use wasmparser::{Parser, Payload};

use crate::config::{
    ALLOWED_OUTBOUND_HOSTS_ANNOTATION, ContainerSettings, DEADLINE_ANNOTATION,
    MAX_MEMORY_ANNOTATION, MAX_TABLE_ELEMENTS_ANNOTATION, REQUEST_DEADLINE_ANNOTATION,
};
use crate::engine::{Engine, NETWORK_ANNOTATION, Sockets, WasiContext};

/// Refuses the settings `E::CAPABILITIES` does not cover.
pub fn refuse_what_the_engine_cannot_enforce<E: Engine>(
    settings: &ContainerSettings,
) -> anyhow::Result<()> {
    let can = E::CAPABILITIES;
    let asked = [
        (
            MAX_MEMORY_ANNOTATION,
            settings.max_memory.is_some(),
            can.max_memory,
        ),
        (
            MAX_TABLE_ELEMENTS_ANNOTATION,
            settings.max_table_elements.is_some(),
            can.max_table_elements,
        ),
        (
            DEADLINE_ANNOTATION,
            settings.deadline.is_some(),
            can.deadline,
        ),
        (
            REQUEST_DEADLINE_ANNOTATION,
            settings.request_deadline.is_some(),
            can.request_deadline,
        ),
    ];
    if let Some((setting, _, _)) = asked.iter().find(|(_, asked, can)| *asked && !can) {
        bail!(
            "{setting} (an annotation, or its runtime option): the {} engine cannot enforce \
             it; docs/configuration.md lists what each engine enforces",
            E::NAME
        );
    }
    if settings.allowed_outbound_hosts.is_some() {
        match can.sockets {
            Sockets::ByHost | Sockets::NoSockets => {}
            Sockets::Unconfined => bail!(
                "{ALLOWED_OUTBOUND_HOSTS_ANNOTATION}: the {} engine cannot confine sockets to \
                 some hosts; allow every host ({NETWORK_ANNOTATION}=allow) or run the module \
                 with the wasmtime shim",
                E::NAME
            ),
        }
    }
    Ok(())
}

/// WASI preview 1 socket functions that create sockets or resolve names (WasmEdge's and
/// WAMR's extensions); `sock_accept`, `sock_recv`, `sock_send` and `sock_shutdown` only use
/// sockets the host handed over, and none is handed over.
fn opens_sockets(module: &str, name: &str) -> bool {
    module.starts_with("wasi")
        && name.starts_with("sock_")
        && !matches!(
            name,
            "sock_accept" | "sock_recv" | "sock_send" | "sock_shutdown"
        )
}

/// For an engine that cannot confine sockets: refuses a module that imports functions opening
/// sockets, unless the container allows the network to every host.
pub fn refuse_unconfined_sockets<E: Engine>(bytes: &[u8], ctx: &WasiContext) -> anyhow::Result<()> {
    let every_host = ctx.network && ctx.settings.allowed_outbound_hosts.is_none();
    if E::CAPABILITIES.sockets != Sockets::Unconfined || every_host {
        return Ok(());
    }
    let mut opening = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        // What does not parse is the engine's to name.
        let Ok(Payload::ImportSection(section)) = payload else {
            continue;
        };
        for import in section.into_imports().flatten() {
            if opens_sockets(import.module, import.name) {
                opening.push(format!("{}::{}", import.module, import.name));
            }
        }
    }
    if opening.is_empty() {
        return Ok(());
    }
    bail!(
        "the module imports socket functions ({}), and the {} engine cannot keep them from \
         the network: allow it with the annotation {NETWORK_ANNOTATION}=allow",
        opening.join(", "),
        E::NAME
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EngineConfig;
    use crate::engine::Capabilities;

    #[derive(Clone)]
    struct Unconfined;

    impl Engine for Unconfined {
        const NAME: &'static str = "unconfined";
        type Module = ();
        fn new(_: &EngineConfig) -> anyhow::Result<Self> {
            Ok(Self)
        }
        fn compile(&self, _: &[u8], _: &str) -> anyhow::Result<()> {
            Ok(())
        }
        fn run(&self, _: &(), _: &WasiContext) -> anyhow::Result<i32> {
            Ok(0)
        }
    }

    #[derive(Clone)]
    struct NoSockets;

    impl Engine for NoSockets {
        const NAME: &'static str = "no-sockets";
        const CAPABILITIES: Capabilities = Capabilities {
            deadline: true,
            sockets: Sockets::NoSockets,
            ..Capabilities::NONE
        };
        type Module = ();
        fn new(_: &EngineConfig) -> anyhow::Result<Self> {
            Ok(Self)
        }
        fn compile(&self, _: &[u8], _: &str) -> anyhow::Result<()> {
            Ok(())
        }
        fn run(&self, _: &(), _: &WasiContext) -> anyhow::Result<i32> {
            Ok(0)
        }
    }

    fn settings(pairs: &[(&str, &str)]) -> ContainerSettings {
        let annotations = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ContainerSettings::from_annotations(&annotations, &Default::default()).unwrap()
    }

    #[test]
    fn settings_an_engine_cannot_enforce_are_refused_with_its_name() {
        let deadline = settings(&[(DEADLINE_ANNOTATION, "1s")]);
        let error = refuse_what_the_engine_cannot_enforce::<Unconfined>(&deadline).unwrap_err();
        assert!(error.to_string().contains(DEADLINE_ANNOTATION), "{error}");
        assert!(error.to_string().contains("unconfined engine"), "{error}");
        refuse_what_the_engine_cannot_enforce::<NoSockets>(&deadline).unwrap();

        let hosts = settings(&[(ALLOWED_OUTBOUND_HOSTS_ANNOTATION, "*://10.0.0.0/8:*")]);
        refuse_what_the_engine_cannot_enforce::<NoSockets>(&hosts).unwrap();
        let error = refuse_what_the_engine_cannot_enforce::<Unconfined>(&hosts).unwrap_err();
        assert!(error.to_string().contains("unconfined engine"), "{error}");
        let memory = settings(&[(MAX_MEMORY_ANNOTATION, "1M")]);
        let error = refuse_what_the_engine_cannot_enforce::<NoSockets>(&memory).unwrap_err();
        assert!(error.to_string().contains(MAX_MEMORY_ANNOTATION), "{error}");
    }

    fn context(network: bool) -> WasiContext {
        WasiContext {
            args: vec![],
            env: vec![],
            preopens: vec![],
            entry: "_start".into(),
            network,
            container: "c".into(),
            settings: ContainerSettings::default(),
            annotations: Default::default(),
        }
    }

    #[test]
    fn socket_imports_need_the_whole_network_on_an_unconfined_engine() {
        let module = wat::parse_str(
            r#"(module
                 (import "wasi_snapshot_preview1" "sock_open" (func (param i32 i32 i32) (result i32)))
                 (import "wasi_snapshot_preview1" "sock_accept" (func (param i32 i32 i32) (result i32)))
                 (func (export "_start")))"#,
        )
        .unwrap();
        let error = refuse_unconfined_sockets::<Unconfined>(&module, &context(false)).unwrap_err();
        let error = error.to_string();
        assert!(
            error.contains("wasi_snapshot_preview1::sock_open"),
            "{error}"
        );
        assert!(!error.contains("sock_accept"), "{error}");
        refuse_unconfined_sockets::<Unconfined>(&module, &context(true)).unwrap();
        refuse_unconfined_sockets::<NoSockets>(&module, &context(false)).unwrap();
        let quiet = wat::parse_str(r#"(module (func (export "_start")))"#).unwrap();
        refuse_unconfined_sockets::<Unconfined>(&quiet, &context(false)).unwrap();
    }
}
