"""python-cli: a wasi:cli/command component built by componentize-py (CPython inside).

It is one of the test images that check the shims run components from other toolchains than
Rust's (issue #15). It prints `hello from python` and its arguments after argv[0] on one line,
then exits 0; with the arguments `exit N` it prints the same line and exits with status N through
WASI's `exit-with-code`.
"""

from wit_world import exports
from wit_world.imports import environment, exit as wasi_exit


class Run(exports.Run):
    def run(self) -> None:
        # The arguments come from the host at run time; sys.argv would be the ones of the build,
        # since componentize-py snapshots the interpreter after importing this module.
        args = environment.get_arguments()[1:]
        # Flushed by hand: exit-with-code ends the instance without running Python's shutdown.
        print(" ".join(["hello from python", *args]), flush=True)
        if len(args) == 2 and args[0] == "exit":
            wasi_exit.exit_with_code(int(args[1]))
