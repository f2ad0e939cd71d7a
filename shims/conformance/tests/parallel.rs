//! Many containers at once on one runtime. Each is created with ctr and its task run through
//! containerd's API with its output read to the end: under this load ctr 1.6's own `run --rm`
//! sometimes loses a fast task's output, under runc too (see `fifo.rs`).

use anyhow::{Result, bail};
use shim_conformance::target::{all_targets, check_targets_in_turn};

const CONTAINERS: usize = 20;

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn twenty_containers_started_together_all_succeed() {
    // One target after the other: 20 containers at once is the load under test.
    check_targets_in_turn(&all_targets(), |target, test| {
        let failures: Vec<String> = std::thread::scope(|scope| {
            let runs: Vec<_> = (0..CONTAINERS)
                .map(|i| {
                    scope.spawn(move || -> Result<()> {
                        let word = format!("container-{i}");
                        let container = target.container(test);
                        container.create(&target.args(&["echo", &word]))?;
                        let out = container.start_task()?;
                        container.delete()?;
                        out.expect(0, &format!("{word}\n"))
                    })
                })
                .collect();
            runs.into_iter()
                .filter_map(|run| match run.join() {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(format!("{e:#}")),
                    Err(_) => Some("a run panicked".to_owned()),
                })
                .collect()
        });
        if !failures.is_empty() {
            bail!(
                "{} of {CONTAINERS} parallel containers failed:\n{}",
                failures.len(),
                failures.join("\n")
            );
        }
        Ok(())
    });
}
