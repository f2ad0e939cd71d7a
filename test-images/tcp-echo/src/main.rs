//! `tcp-echo`: listens on TCP port 8080 (or argv[1]) on every address and answers each
//! connection with `echo: ` and everything it read until the peer shut down its sending side.
//! `tcp-echo connect ADDR TEXT` is the client side instead: it connects to ADDR, sends TEXT,
//! shuts down its sending side and prints everything it reads (exit 1 when it cannot connect).
//!
//! Built for wasm32-wasip2, where std's TcpListener uses wasi:sockets: WASI preview 1 has no
//! way to open a listening socket (it can only accept on sockets the host preopened), so a
//! Wasm module that serves TCP in a pod is a preview 2 component. The engine must give it
//! the network (annotation `io.containerd.wasm.network=allow` on the pod or the container).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, mode, addr, text] = args.as_slice()
        && mode == "connect"
    {
        match connect(addr, text) {
            Ok(reply) => print!("{reply}"),
            Err(e) => {
                eprintln!("tcp-echo: cannot reach {addr}: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
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

fn connect(addr: &str, text: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(addr)?;
    stream.write_all(text.as_bytes())?;
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    Ok(reply)
}

fn answer(mut stream: TcpStream) -> std::io::Result<()> {
    let mut request = Vec::new();
    stream.read_to_end(&mut request)?;
    stream.write_all(b"echo: ")?;
    stream.write_all(&request)?;
    stream.flush()
}
