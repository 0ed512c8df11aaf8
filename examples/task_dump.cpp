// task_dump - a line-echo server that prints what each of its tasks is doing
// when it gets SIGUSR1, like `python -m asyncio pstree PID`.
//
// What it shows: coio::current_task() and set_name (each connection's task
// names itself), coio::add_signal_handler running a callback on
// the loop thread, and coio::dump_tasks writing every task with its name,
// state and the chain of awaits it is suspended in. SIGINT/SIGTERM stop it.
//
// Run:  ./build/examples/task_dump --listen 0
// Try:  nc 127.0.0.1 PORT in two terminals, then kill -USR1 PID: the dump
//       shows 'client N' tasks waiting in handle -> read_request ->
//       readline -> ..., and the ticker in sleep.
#include <coio/coio.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unistd.h>

using namespace std::chrono_literals;

namespace {

std::uint64_t g_clients = 0; // loop thread only

// One more layer, so that the dump shows a chain: handle -> read_request.
coio::task<std::string> read_request(coio::stream_reader r) {
    co_return co_await r.readline();
}

coio::task<> handle(coio::stream_reader r, coio::stream_writer w) {
    coio::task_ref me = co_await coio::current_task();
    me.set_name("client " + std::to_string(++g_clients));
    for (;;) {
        std::string line = co_await read_request(r);
        if (line.empty()) {
            co_return;
        }
        w.write(line);
        co_await w.drain();
    }
}

// A background task, so that the dump shows a timer too.
coio::task<> ticker() {
    for (;;) {
        co_await coio::sleep(1h);
    }
}

coio::task<int> serve(std::uint16_t port) {
    coio::signal_set stop{SIGINT, SIGTERM};
    // The callback runs on the loop thread, between steps: dump_tasks is
    // safe there (never from a C signal handler).
    coio::add_signal_handler(SIGUSR1, [] { coio::dump_tasks(stdout); });
    coio::task_handle<void> tick = coio::create_task(ticker(), "ticker");
    coio::server srv = co_await coio::start_server(handle, "127.0.0.1", port);
    std::printf("listening on %s, pid %d; kill -USR1 %d prints the tasks\n",
                srv.local_address().to_string().c_str(), static_cast<int>(getpid()),
                static_cast<int>(getpid()));
    std::fflush(stdout);
    co_await stop.wait();
    coio::remove_signal_handler(SIGUSR1);
    tick.cancel();
    srv.close();
    srv.close_clients();
    co_await coio::wait_for(srv.wait_closed(), 5s);
    std::printf("bye\n");
    co_return 0;
}

} // namespace

int main(int argc, char** argv) {
    unsigned long port = 0;
    if (argc == 3 && std::strcmp(argv[1], "--listen") == 0) {
        port = std::strtoul(argv[2], nullptr, 10);
    } else if (argc != 1) {
        std::fprintf(stderr, "usage: %s [--listen PORT]\n", argv[0]);
        return 2;
    }
    try {
        return coio::run(serve(static_cast<std::uint16_t>(port)));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "task_dump: %s\n", e.what());
        return 1;
    }
}
