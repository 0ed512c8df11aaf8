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
// Run:  ./build/examples/echo_server [--host 127.0.0.1] [--port 0] [--cpu N] [--loops N]
// It prints "listening on 127.0.0.1:PORT" and serves until SIGINT or SIGTERM,
// then exits 0 (coio::run closes the connections still open). --cpu pins
// the process to core N on Linux (the benchmarks pin server and load generator apart).
// --loops N serves on N loops, one thread each (0: one per allowed CPU), each
// with its own listening socket on the same port (SO_REUSEPORT): the kernel
// spreads the connections and every loop serves its own (docs/multicore.md).
// COIO_BACKEND=epoll|io_uring picks the backend; --list-backends shows which
// can run here.
// Try:  ./build/examples/echo_client --port PORT --connections 100
//       or: printf 'hi\n' | nc -q1 127.0.0.1 PORT
#include <coio/coio.hpp>

#include <sched.h>

#include <csignal>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <optional>
#include <string>
#include <vector>

namespace {

// Connections served by the loop running on this thread (printed per loop
// with --loops).
thread_local unsigned long t_connections = 0;

// tag::echo[]
coio::task<> echo(coio::socket s) {
    ++t_connections;
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

// Prints, when a loop's server task ends, how many connections that loop
// served (what tests and benchmarks check to see the kernel spread them).
struct served_report {
    served_report() = default;
    served_report(const served_report&) = delete;
    served_report& operator=(const served_report&) = delete;
    ~served_report() {
        std::fprintf(stderr, "loop %zu served %lu connections\n", coio::loop_ref::running().index(),
                     t_connections);
    }
};

// tag::every_core[]
// Every loop gets its own listening socket on one port (SO_REUSEPORT).
coio::server_options on_every_loop() {
    coio::server_options o;
    o.reuse_port = true;
    return o;
}

// Runs on every other loop: listens on the port loop 0 got, tells loop 0 so
// (then drops its sender), and serves until cancelled.
coio::task<> serve_here(std::string host, std::uint16_t port,
                        coio::channel_sender<std::size_t> listening) {
    served_report report; // prints this loop's connection count when it ends
    coio::server srv = co_await coio::start_server(echo, host, port, on_every_loop());
    {
        coio::channel_sender<std::size_t> tell = std::move(listening);
        co_await tell.send(coio::loop_ref::running().index());
    }
    co_await srv.serve_forever();
}

// Runs on loop 0: binds first (port 0 picks one), has every other loop
// listen on the same port, and prints "listening" once all do. A failure on
// any loop cancels the others; cancelling this task (SIGTERM) stops every
// loop's server.
coio::task<> serve_every_loop(std::string host, std::uint16_t port) {
    served_report report;
    coio::server srv = co_await coio::start_server(echo, host, port, on_every_loop());
    const std::vector<coio::loop_ref> loops = coio::loop_ref::all();
    auto [tell, listening] = coio::channel<std::size_t>(loops.size());
    coio::task_group g;
    for (std::size_t i = 1; i < loops.size(); ++i) {
        g.create_task(loops[i].spawn(serve_here(host, srv.port(), tell)));
    }
    {
        // Loop 0's sender goes: recv() ends once each other loop's is gone too
        // (after it sent, or when its task failed).
        coio::channel_sender<std::size_t> mine = std::move(tell);
    }
    std::size_t ready = 1;
    for (;;) {
        std::optional<std::size_t> loop = co_await listening.recv();
        if (!loop) {
            break;
        }
        ++ready;
    }
    if (ready == loops.size()) {
        std::printf("listening on %s (backend %s, %zu loops)\n",
                    srv.local_address().to_string().c_str(), coio::backend_name().c_str(),
                    loops.size());
        std::fflush(stdout);
        g.create_task(srv.serve_forever());
    }
    co_await g.wait(); // throws what failed
}
// end::every_core[]

// serve() until SIGINT or SIGTERM: the signal handlers cancel the server's
// task, which closes the listener; coio::run then cancels the connections
// still open, which closes their sockets - so the process ends cleanly
// (exit 0) and a sanitizer build gets to run its leak check.
coio::task<int> serve_until_signal(std::string host, std::uint16_t port, bool every_loop) {
    coio::task<> body =
        every_loop ? serve_every_loop(std::move(host), port) : serve(std::move(host), port);
    coio::task_handle<> server = coio::create_task(std::move(body), "echo server");
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

coio::task<> loop0_main(std::string host, std::uint16_t port) {
    co_await serve_until_signal(std::move(host), port, true);
}

coio::task<> other_loop_main() {
    co_return;
}

} // namespace

int main(int argc, char** argv) {
    std::string host = "127.0.0.1";
    unsigned long port = 0;
    unsigned long loops = 1;
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
        } else if (std::strcmp(argv[i], "--loops") == 0 && i + 1 < argc) {
            char* end = nullptr;
            loops = std::strtoul(argv[++i], &end, 10);
            if (*end != '\0' || loops > 1024) {
                std::fprintf(stderr, "echo_server: --loops wants a number 0..1024, got %s\n",
                             argv[i]);
                return 2;
            }
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
            std::fprintf(
                stderr,
                "usage: %s [--host ADDR] [--port N] [--cpu N] [--loops N] | --list-backends\n",
                argv[0]);
            return 2;
        }
    }
    try {
        const auto p = static_cast<std::uint16_t>(port);
        if (loops == 1) {
            return coio::run(serve_until_signal(host, p, false));
        }
        // Loop 0 runs the servers and handles the signals; the other loops'
        // main tasks end at once, and those loops go on serving what loop 0
        // hands them until its main task ends.
        auto main_of = [&host, p](std::size_t i) {
            return i == 0 ? loop0_main(host, p) : other_loop_main();
        };
        coio::run_loops(loops, main_of);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "echo_server: %s\n", e.what());
        return 1;
    }
}
