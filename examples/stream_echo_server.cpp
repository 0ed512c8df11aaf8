// stream_echo_server - asyncio's stream echo server with a graceful shutdown.
//
// What it shows: start_server with a (reader, writer) handler, readline /
// write / drain, and Ctrl-C (SIGINT) or SIGTERM handled on the loop: stop
// accepting, let the connections in flight finish (a connection ends after
// its next line, with a goodbye), wait at most 5 s for that, then exit 0 -
// coio::run cancels whatever is still running, which closes those sockets.
//
// Run:  ./build/examples/stream_echo_server [--port 0]
// Try:  nc 127.0.0.1 PORT   (type lines; they come back), then Ctrl-C the server.
#include <coio/coio.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

using namespace std::chrono_literals;

namespace {

bool g_stopping = false; // loop thread only

// tag::handler[]
coio::task<> echo_lines(coio::stream_reader reader, coio::stream_writer writer) {
    for (;;) {
        std::string line = co_await reader.readline();
        if (line.empty() || g_stopping) {
            break; // EOF, or the server is shutting down
        }
        writer.write(line);
        co_await writer.drain(); // back-pressure: wait if the client reads slowly
    }
    if (g_stopping) {
        writer.write("server shutting down, bye\n");
        co_await writer.drain();
    }
    writer.close();
    co_await writer.wait_closed();
}
// end::handler[]

coio::task<> closer(coio::server* srv) {
    co_await srv->wait_closed();
}

coio::task<int> serve(std::uint16_t port) {
    coio::signal_set stop{SIGINT, SIGTERM};
    coio::server srv = co_await coio::start_server(echo_lines, "127.0.0.1", port);
    std::printf("listening on %s\n", srv.local_address().to_string().c_str());
    std::fflush(stdout);

    int sig = co_await stop.wait();
    std::printf("got %s: closing the listener, finishing %llu connection(s)\n",
                sig == SIGINT ? "SIGINT" : "SIGTERM",
                static_cast<unsigned long long>(srv.stats().active));
    std::fflush(stdout); // say it now, not when the buffer fills or the process ends
    g_stopping = true;
    srv.close();
    try {
        // Connections end at their next line; give idle ones 5 s.
        co_await coio::wait_for(closer(&srv), 5s);
    } catch (const coio::timeout_error&) {
        std::printf("some connections were still open after 5 s; exiting anyway\n");
    }
    std::printf("bye\n");
    co_return 0;
}

} // namespace

int main(int argc, char** argv) {
    unsigned long port = 0;
    if (argc == 3 && std::strcmp(argv[1], "--port") == 0) {
        port = std::strtoul(argv[2], nullptr, 10);
    } else if (argc != 1) {
        std::fprintf(stderr, "usage: %s [--port N]\n", argv[0]);
        return 2;
    }
    try {
        return coio::run(serve(static_cast<std::uint16_t>(port)));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "stream_echo_server: %s\n", e.what());
        return 1;
    }
}
