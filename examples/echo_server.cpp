// echo_server - the seeds' asyncio echo server, in coio.
//
// What it shows: start_server with a handler coroutine per connection,
// read_chunk / write_all, and that one thread serves thousands of connections.
// read_chunk reads into a buffer the loop lends only once data is there
// (io_uring: a provided-buffer ring), so an idle connection holds no read
// buffer: its handler's frame is a few hundred bytes.
// Python's version:
//     async def handle(reader, writer): data = await reader.read(1024) ...
//     server = await asyncio.start_server(handle, host, port)
//
// Run:  ./build/examples/echo_server [--host 127.0.0.1] [--port 0] [--cpu N]
// It prints "listening on 127.0.0.1:PORT" and serves until SIGINT or SIGTERM,
// then exits 0 (coio::run closes the connections still open). --cpu pins
// the process to core N on Linux (the benchmarks pin server and load generator apart).
// COIO_BACKEND=epoll|io_uring picks the backend; --list-backends shows which
// can run here.
// Try:  ./build/examples/echo_client --port PORT --connections 100
//       or: printf 'hi\n' | nc -q1 127.0.0.1 PORT
#include <coio/coio.hpp>

#include <sched.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

namespace {

// tag::echo[]
coio::task<> echo(coio::socket s) {
    for (;;) {
        coio::chunk_result r = co_await s.read_chunk(); // a buffer lent by the loop
        if (!r) {
            co_return; // eof, reset: the client is gone
        }
        // Sent straight from the lent buffer; if the client does not read,
        // the rest is copied and the buffer goes back before the wait.
        if (!co_await s.write_all(std::move(r.data))) {
            co_return;
        }
    }
}

coio::task<> serve(std::string host, std::uint16_t port) {
    coio::server srv = co_await coio::start_server(echo, host, port);
    std::printf("listening on %s (backend %s)\n", srv.local_address().to_string().c_str(),
                coio::backend_name().c_str());
    std::fflush(stdout);
    co_await srv.serve_forever();
}
// end::echo[]

// serve() until SIGINT or SIGTERM: the signal handlers cancel the server's
// task, which closes the listener; coio::run then cancels the connections
// still open, which closes their sockets - so the process ends cleanly
// (exit 0) and a sanitizer build gets to run its leak check.
coio::task<int> serve_until_signal(std::string host, std::uint16_t port) {
    coio::task_handle<> server = coio::create_task(serve(std::move(host), port), "echo server");
    for (int sig : {SIGINT, SIGTERM}) {
        coio::add_signal_handler(sig, [server]() mutable { server.cancel(); });
    }
    std::exception_ptr failure;
    try {
        co_await server; // a bind error is thrown here
    } catch (const coio::cancelled_error&) {
        // stopped by a signal
    } catch (...) {
        failure = std::current_exception();
    }
    for (int sig : {SIGINT, SIGTERM}) {
        coio::remove_signal_handler(sig);
    }
    if (failure) {
        std::rethrow_exception(failure);
    }
    co_return 0;
}

} // namespace

int main(int argc, char** argv) {
    std::string host = "127.0.0.1";
    unsigned long port = 0;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
            host = argv[++i];
        } else if (std::strcmp(argv[i], "--list-backends") == 0) {
            for (const std::string& b : coio::available_backends()) {
                std::printf("%s\n", b.c_str());
            }
            return 0;
        } else if (std::strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            port = std::strtoul(argv[++i], nullptr, 10);
        } else if (std::strcmp(argv[i], "--cpu") == 0 && i + 1 < argc) {
#if defined(__linux__)
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(std::strtoul(argv[++i], nullptr, 10), &set);
            if (sched_setaffinity(0, sizeof set, &set) != 0) {
                std::perror("echo_server: sched_setaffinity");
                return 1;
            }
#else
            std::fprintf(stderr, "echo_server: --cpu needs Linux (sched_setaffinity)\n");
            return 2;
#endif
        } else {
            std::fprintf(stderr, "usage: %s [--host ADDR] [--port N] [--cpu N] | --list-backends\n",
                         argv[0]);
            return 2;
        }
    }
    try {
        return coio::run(serve_until_signal(host, static_cast<std::uint16_t>(port)));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "echo_server: %s\n", e.what());
        return 1;
    }
}
