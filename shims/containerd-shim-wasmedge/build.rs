//! containerd starts the shim without the installer's environment (`~/.wasmedge/env` sets
//! `LD_LIBRARY_PATH`), so the binary and the unit tests record where libwasmedge is: the
//! directory wasmedge-sys linked against when `WASMEDGE_LIB_DIR` names it
//! (`scripts/build-wasmedge.sh` always sets it). The binary also exports its `epoll_wait`,
//! which libwasmedge's calls must reach (see `src/epoll_restart.rs`).

fn main() {
    println!("cargo:rustc-link-arg-bins=-Wl,--export-dynamic-symbol=epoll_wait");
    println!("cargo:rerun-if-env-changed=WASMEDGE_LIB_DIR");
    if let Some(dir) = std::env::var_os("WASMEDGE_LIB_DIR") {
        let dir = dir.to_string_lossy();
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
