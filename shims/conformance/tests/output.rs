//! What the program prints and what it is given: stdout, stderr, args, env, cwd, the
//! entry point.

use anyhow::{Result, bail};
use shim_conformance::container::Container;
use shim_conformance::images::WASI_DEMO_APP_WASI;
use shim_conformance::target::{all_targets, check_targets, wasm_targets};

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn greeting_without_a_sub_command() {
    check_targets(&all_targets(), |target, test| {
        target.run(test, &[])?.expect(0, target.workload.greeting())
    });
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn echo_prints_to_stdout() {
    check_targets(&all_targets(), |target, test| {
        target
            .run(test, &["echo", "hello", "world"])?
            .expect(0, "hello world\n")
    });
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn args_arrive_verbatim_with_args0_first() {
    check_targets(&all_targets(), |target, test| {
        let args = ["args", "one", "two words", "ünïcödé", "--flag=x"];
        let expected: String = target
            .args(&args)
            .iter()
            .map(|arg| format!("{arg}\n"))
            .collect();
        target.run(test, &args)?.expect(0, &expected)
    });
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn env_from_the_spec_reaches_the_program() {
    check_targets(&all_targets(), |target, test| {
        let out = target
            .container(test)
            .env("GREETING=hello world")
            .env("EMPTY=")
            .run(&target.args(&["env"]))?;
        out.success()?;
        let lines: Vec<&str> = out.stdout.lines().collect();
        // ctr's default PATH, then ours; runc adds HOME when the spec has none, so the
        // rest of the environment is not compared.
        for wanted in [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "GREETING=hello world",
            "EMPTY=",
        ] {
            if !lines.contains(&wanted) {
                bail!(
                    "`{}`: {wanted:?} missing; got {}",
                    out.command,
                    out.describe()
                );
            }
        }
        Ok(())
    });
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn cwd_from_the_spec_is_the_working_directory() {
    check_targets(&all_targets(), |target, test| {
        // Relative paths resolve against the spec's cwd, for every workload.
        target
            .container(test)
            .cwd("/data")
            .run(&target.args(&["cat", "hello.txt"]))?
            .expect(0, "hello from a file\n")?;
        let out = target
            .container(test)
            .cwd("/data")
            .run(&target.args(&["cwd"]))?;
        if target.is_wasm() {
            // WASI preview 1 has no working directory a host can set (WebAssembly/WASI#303):
            // wasi-libc always reports "/", and the shim preopens the cwd as "." instead.
            // So a module lists the right directory but cannot name it.
            let listing = out.stdout.split_once('\n').map(|(_, rest)| rest);
            if out.code != Some(0) || listing != Some("hello.txt\n") {
                bail!(
                    "`{}`: expected `.` to list /data; got {}",
                    out.command,
                    out.describe()
                );
            }
            Ok(())
        } else {
            out.expect(0, "/data\nhello.txt\n")
        }
    });
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn stderr_is_its_own_stream() {
    check_targets(&all_targets(), |target, test| {
        let out = target.run(test, &["stderr", "something went wrong"])?;
        out.expect(0, "")?;
        expect_line(&out.stderr, "something went wrong", &out.command)
    });
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn unknown_sub_command_prints_usage_and_exits_2() {
    check_targets(&all_targets(), |target, test| {
        let out = target.run(test, &["no-such-sub-command"])?;
        out.expect(2, "")?;
        if !out.stderr.contains("no-such-sub-command") {
            bail!(
                "`{}`: expected the usage error, naming the command, on stderr; got {}",
                out.command,
                out.describe()
            );
        }
        Ok(())
    });
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn entry_point_suffix_calls_that_export() {
    check_targets(&wasm_targets(), |target, test| {
        target
            .container(test)
            .run(&["/wasi-demo-app.wasm#greet"])?
            .expect(0, "hello from greet\n")
    });
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn image_with_platform_wasi_wasm32_runs() {
    check_targets(&wasm_targets(), |target, test| {
        Container::new(test, target.runtime, &WASI_DEMO_APP_WASI)
            .run(&["/wasi-demo-app.wasm", "echo", "old platform name"])?
            .expect(0, "old platform name\n")
    });
}

fn expect_line(text: &str, line: &str, command: &str) -> Result<()> {
    if !text.lines().any(|l| l == line) {
        bail!("`{command}`: expected the line {line:?} in {text:?}");
    }
    Ok(())
}
