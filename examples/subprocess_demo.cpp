// subprocess_demo - runs a command and prints its output line by line as it
// comes, each line with the time since the start; stops it after a timeout.
//
// What it shows: create_subprocess_exec with stdout piped (stderr joined to
// it), a stream_reader on the pipe, wait_for around the reading, and what a
// timeout does - SIGTERM, one second's grace, then SIGKILL - and the exit
// status. Exits with the command's exit code (128 + the signal if one ended
// it), 124 after a timeout (as timeout(1) does), 127 if it cannot be run.
//
// Run:  ./build/examples/subprocess_demo [--timeout SECONDS] [COMMAND [ARGS...]]
// Try:  ./build/examples/subprocess_demo --timeout 2 ping -i 0.5 127.0.0.1
//       ./build/examples/subprocess_demo sh -c 'echo out; echo err >&2; exit 3'
// Without a command it runs a shell loop that prints a line every 0.4 s.
#include <coio/coio.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

using namespace std::chrono_literals;

namespace {

using clock_type = std::chrono::steady_clock;

double since(clock_type::time_point start) {
    return std::chrono::duration<double>(clock_type::now() - start).count();
}

// tag::lines[]
// Prints the command's output as it comes, then waits for it to exit.
// (Parameters by value: the reader is a shared handle, `exit` is p.wait().)
coio::task<coio::exit_status> follow(coio::stream_reader out, coio::task<coio::exit_status> exit,
                                     clock_type::time_point start) {
    for (;;) {
        std::string line = co_await out.readline();
        if (line.empty()) {
            break; // EOF: the command closed its stdout (usually: it exited)
        }
        std::printf("[%6.2f s] %s", since(start), line.c_str());
        if (line.back() != '\n') {
            std::printf("\n");
        }
        std::fflush(stdout);
    }
    co_return co_await std::move(exit);
}

coio::task<int> run_command(std::vector<std::string> cmd, std::chrono::milliseconds timeout) {
    const auto start = clock_type::now();
    const std::string program = cmd.front();
    cmd.erase(cmd.begin());
    const coio::process_options opts{.out = coio::redirect::pipe, .err = coio::redirect::to_stdout};
    coio::process p = coio::create_subprocess_exec(program, cmd, opts);
    std::printf("[%6.2f s] started %s (pid %ld)\n", since(start), program.c_str(), p.pid());
    std::optional<coio::exit_status> st;
    bool timed_out = false;
    try {
        st = co_await coio::wait_for(follow(p.stdout_reader(), p.wait(), start), timeout);
    } catch (const coio::timeout_error&) {
        timed_out = true;
    }
    if (timed_out) {
        std::printf("[%6.2f s] timed out: SIGTERM\n", since(start));
        p.terminate();
        try {
            st = co_await coio::wait_for(p.wait(), 1s); // a grace second
        } catch (const coio::timeout_error&) {
            std::printf("[%6.2f s] still running: SIGKILL\n", since(start));
            p.kill();
        }
    }
    if (!st) {
        st = co_await p.wait();
    }
    std::printf("[%6.2f s] %s: %s\n", since(start), program.c_str(), st->to_string().c_str());
    if (timed_out) {
        co_return 124;
    }
    co_return st->signal != 0 ? 128 + st->signal : st->code;
}
// end::lines[]

} // namespace

int main(int argc, char** argv) {
    std::chrono::milliseconds timeout = 10s;
    std::vector<std::string> cmd;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--timeout" && i + 1 < argc && cmd.empty()) {
            timeout = std::chrono::milliseconds(static_cast<long>(std::atof(argv[++i]) * 1000));
        } else if (a == "--help" && cmd.empty()) {
            std::printf("usage: %s [--timeout SECONDS] [COMMAND [ARGS...]]\n", argv[0]);
            return 0;
        } else {
            cmd.push_back(a);
        }
    }
    if (cmd.empty()) {
        cmd = {"sh", "-c", "for i in 1 2 3 4 5; do echo \"line $i\"; sleep 0.4; done"};
    }
    try {
        return coio::run(run_command(cmd, timeout));
    } catch (const std::system_error& e) {
        std::fprintf(stderr, "subprocess_demo: %s\n", e.what());
        return 127;
    }
}
