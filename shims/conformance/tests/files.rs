//! The container's rootfs: files from the image, directories, and files the program writes.

use anyhow::{Context, bail};
use shim_conformance::api::Api;
use shim_conformance::target::{all_targets, check_targets};

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn reads_a_file_from_the_image() {
    check_targets(&all_targets(), |target, test| {
        target
            .run(test, &["cat", "/data/hello.txt"])?
            .expect(0, "hello from a file\n")
    });
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn lists_a_directory_of_the_image() {
    check_targets(&all_targets(), |target, test| {
        target.run(test, &["ls", "/data"])?.expect(0, "hello.txt\n")
    });
}

/// With `root.readonly`, writing into the rootfs fails (the module is refused, or the
/// kernel refuses the read-only mount) while reading still works.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn a_read_only_rootfs_refuses_writes() {
    check_targets(&all_targets(), |target, test| {
        let container = || target.container(test).read_only();
        let out = container().run(&target.args(&["write", "/data/refused.txt", "x"]))?;
        if out.code == Some(0) {
            bail!(
                "`{}` wrote into a read-only rootfs: {}",
                out.command,
                out.describe()
            );
        }
        container()
            .run(&target.args(&["cat", "/data/hello.txt"]))?
            .expect(0, "hello from a file\n")
    });
}

/// One task writes a file, the next task of the same container (same rootfs snapshot,
/// args changed through the API) reads it back.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn a_written_file_stays_in_the_rootfs() {
    check_targets(&all_targets(), |target, test| {
        let container = target.container(test);
        container.create(&target.args(&["write", "/data/note.txt", "written by a task"]))?;
        container
            .start_task()?
            .expect(0, "wrote 17 bytes to /data/note.txt\n")?;
        Api::connect()?
            .set_process_args(container.id(), &target.args(&["cat", "/data/note.txt"]))
            .context("cannot switch the container to reading the file")?;
        container.start_task()?.expect(0, "written by a task")
    });
}
