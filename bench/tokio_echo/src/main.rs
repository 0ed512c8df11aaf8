// tokio_echo - Tokio's echo server on a current_thread runtime: the shape of Tokio's own
// examples/echo.rs (one spawned task per connection, read into a buffer in the task, then
// write_all), with a 4 KiB buffer like bench/asio_echo.cpp and the 4 KiB frame buffer coio's
// echo example had before read_chunk, so the servers compare like for like.
//
// Same contract as the C++ servers in bench/ (server_common.hpp): --port P binds
// 127.0.0.1:P only (0 = kernel picks), --cpu C pins to core C, the soft RLIMIT_NOFILE is
// raised to the hard limit, the first stdout line is "listening on 127.0.0.1:PORT",
// SIGINT/SIGTERM end the process with status 0.
//
// Run:   build/bench/tokio/release/tokio_echo [--port 0] [--cpu 0]
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddrV4};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{signal, SignalKind};

async fn echo(mut s: TcpStream) {
    let mut buf = [0u8; 4096];
    loop {
        let n = match s.read(&mut buf).await {
            Ok(0) | Err(_) => return, // eof, reset: the client is gone
            Ok(n) => n,
        };
        if s.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

async fn serve(listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((s, _)) => {
                let _ = s.set_nodelay(true);
                tokio::spawn(echo(s));
            }
            // EMFILE and friends: keep serving, as the other servers do.
            Err(e) => eprintln!("tokio_echo: accept: {e}"),
        }
    }
}

fn usage(problem: &str) -> ! {
    eprintln!("tokio_echo: {problem}\nusage: tokio_echo [--port P] [--cpu C]");
    std::process::exit(2);
}

fn pin_to_cpu(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_setaffinity reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            eprintln!("tokio_echo: sched_setaffinity: {}", std::io::Error::last_os_error());
            std::process::exit(1);
        }
    }
}

fn raise_nofile_limit() {
    // SAFETY: getrlimit/setrlimit on a local struct.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

fn main() {
    let mut port: u16 = 0;
    let mut cpu: Option<usize> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_else(|| usage("missing value after option"));
        match arg.as_str() {
            "--port" => port = value.parse().unwrap_or_else(|_| usage("bad --port")),
            "--cpu" => {
                let c: i64 = value.parse().unwrap_or_else(|_| usage("bad --cpu"));
                cpu = if c < 0 { None } else { Some(c as usize) };
            }
            _ => usage("unknown argument"),
        }
    }
    if let Some(c) = cpu {
        pin_to_cpu(c);
    }
    raise_nofile_limit();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| {
        eprintln!("tokio_echo: runtime: {e}");
        std::process::exit(1);
    });
    rt.block_on(async move {
        let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
        let listener = TcpListener::bind(addr).await.unwrap_or_else(|e| {
            eprintln!("tokio_echo: bind {addr}: {e}");
            std::process::exit(1);
        });
        let local = listener.local_addr().expect("local_addr");
        println!("listening on 127.0.0.1:{}", local.port());
        std::io::stdout().flush().expect("stdout");
        let mut int = signal(SignalKind::interrupt()).expect("signal(SIGINT)");
        let mut term = signal(SignalKind::terminate()).expect("signal(SIGTERM)");
        let server = tokio::spawn(serve(listener));
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        server.abort();
    });
}
