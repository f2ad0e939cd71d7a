//! `tcp-echo`: listens on TCP port 8080 (or argv[1]) on every address and answers each
//! connection with `echo: ` and everything it read until the peer shut down its sending side.
//!
//! Built for wasm32-wasip2, where std's TcpListener uses wasi:sockets: WASI preview 1 has no
//! way to open a listening socket (it can only accept on sockets the host preopened), so a
//! Wasm module that serves TCP in a pod is a preview 2 component. The engine must give it
//! the network (annotation `io.containerd.wasm.network=allow` on the pod or the container).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

fn main() {
    let port = std::env::args().nth(1).unwrap_or_else(|| "8080".to_owned());
    let listener = match TcpListener::bind(format!("0.0.0.0:{port}")) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("tcp-echo: cannot listen on port {port}: {e}");
            std::process::exit(1);
        }
    };
    println!("listening on port {port}");
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                if let Err(e) = answer(stream) {
                    eprintln!("tcp-echo: connection failed: {e}");
                }
            }
            Err(e) => eprintln!("tcp-echo: accept failed: {e}"),
        }
    }
}

fn answer(mut stream: TcpStream) -> std::io::Result<()> {
    let mut request = Vec::new();
    stream.read_to_end(&mut request)?;
    stream.write_all(b"echo: ")?;
    stream.write_all(&request)?;
    stream.flush()
}
