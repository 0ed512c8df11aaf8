// thread_echo_server — the seeds' first server model in C++: one blocking thread per
// connection. It mirrors the Python notes the project grew from:
//
//   conn, addr = server.accept()
//   Thread(target=handle_client, args=(conn,)).start()   # handle_client: recv(1024) / sendall
//
// Why it exists: it is the baseline of the echo benchmarks. coio's claim is that one thread
// with an event loop beats a thread per connection in memory (an idle thread keeps its
// stack and a kernel task) and at high connection counts; this server is what that claim
// is measured against, so it stays as plain as the seed. It uses no coio and no shared
// bench code, so it builds on its own:
//
//   g++ -std=c++20 -O2 -Wall -Wextra -Wpedantic -Werror -pthread thread_echo_server.cpp
//
// Two deliberate differences from the seed: handle_client loops until the peer closes (the
// seed's first version answers once and hangs up, which cannot carry a benchmark), and
// TCP_NODELAY is set, as in every server of the benchmark, so Nagle's algorithm does not
// add delayed-ACK stalls to small echoes.
//
// Run:   ./thread_echo_server [--port 0] [--cpu 0]
//        prints "listening on 127.0.0.1:PORT" (loopback only); SIGINT/SIGTERM exit 0.
// Try:   printf hello | nc -q1 127.0.0.1 PORT
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <system_error>
#include <thread>

namespace {

constexpr std::size_t k_recv_size = 1024; // the seed's conn.recv(1024)

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "thread_echo_server: %s: %s\n", what, std::strerror(errno));
    std::exit(1);
}

// Blocking recv/send until the peer closes or the connection fails; owns `conn`.
void handle_client(int conn) {
    char data[k_recv_size];
    for (;;) {
        ssize_t n = recv(conn, data, sizeof data, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        // sendall(): a blocking send may still return short, so loop.
        ssize_t off = 0;
        while (off < n) {
            ssize_t sent = send(conn, data + off, static_cast<std::size_t>(n - off), MSG_NOSIGNAL);
            if (sent < 0 && errno == EINTR) {
                continue;
            }
            if (sent < 0) {
                close(conn);
                return;
            }
            off += sent;
        }
    }
    close(conn);
}

bool parse_int(const char* text, int lo, int hi, int& out) {
    std::string_view s = text;
    int v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || end != s.data() + s.size() || v < lo || v > hi) {
        return false;
    }
    out = v;
    return true;
}

int open_listener(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        die("socket");
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK); // the seed binds 0.0.0.0; we never do
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        die("bind 127.0.0.1");
    }
    if (listen(fd, 65535) != 0) {
        die("listen");
    }
    socklen_t len = sizeof addr;
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    std::printf("listening on 127.0.0.1:%u\n", static_cast<unsigned>(ntohs(addr.sin_port)));
    std::fflush(stdout);
    return fd;
}

} // namespace

int main(int argc, char** argv) {
    int port = 0;
    int cpu = -1;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        bool ok = i + 1 < argc;
        if (arg == "--port" && ok) {
            ok = parse_int(argv[++i], 0, 65535, port);
        } else if (arg == "--cpu" && ok) {
            ok = parse_int(argv[++i], -1, CPU_SETSIZE - 1, cpu);
        } else {
            ok = false;
        }
        if (!ok) {
            std::fprintf(stderr, "usage: %s [--port P] [--cpu C]\n", argv[0]);
            return 2;
        }
    }
    if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(static_cast<unsigned>(cpu), &set);
        if (sched_setaffinity(0, sizeof set, &set) != 0) { // threads started later inherit it
            die("sched_setaffinity");
        }
    }

    // One fd per connection: take the hard RLIMIT_NOFILE, whatever the shell's soft one is.
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0) {
        lim.rlim_cur = lim.rlim_max;
        setrlimit(RLIMIT_NOFILE, &lim);
    }

    // Every thread inherits this mask, so SIGINT/SIGTERM reach only sigwait() below.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    signal(SIGPIPE, SIG_IGN);

    int server = open_listener(port);
    // shutdown() on a listening socket wakes the blocked accept() with EINVAL: that is how
    // the signal turns into a clean end of the accept loop below.
    std::atomic<bool> stopping{false};
    std::thread stopper([&] {
        int sig = 0;
        sigwait(&stop_signals, &sig);
        stopping = true;
        shutdown(server, SHUT_RDWR);
    });

    for (;;) {
        int conn = accept4(server, nullptr, nullptr, SOCK_CLOEXEC);
        if (conn < 0) {
            if (errno == EINTR || errno == ECONNABORTED) {
                continue;
            }
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                std::perror("thread_echo_server: accept");
                std::this_thread::sleep_for(std::chrono::milliseconds(10)); // let fds free up
                continue;
            }
            if (stopping) {
                break; // EINVAL after the stopper's shutdown()
            }
            die("accept");
        }
        int one = 1;
        setsockopt(conn, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        try {
            std::thread(handle_client, conn).detach();
        } catch (const std::system_error& e) { // out of threads or memory: refuse this one
            std::fprintf(stderr, "thread_echo_server: cannot start a thread: %s\n", e.what());
            close(conn);
        }
    }
    stopper.join();
    close(server);
    // Detached handlers may still sit in recv(); returning from main ends them with the
    // process, which is what a benchmark harness stopping us by PID expects.
    return 0;
}
