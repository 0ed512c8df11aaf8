// frame_size — how many heap bytes coio really allocates: coroutine frames, a task started
// with create_task, one idle connection of the echo server, and one echoed request. The
// seeds say "a coroutine costs ~2 KB"; this prints what a coio coroutine costs.
//
// How: this binary replaces the global operator new/delete with a counting version (a
// 16-byte header keeps each block's size, so live bytes are known at any time). Each
// scenario turns counting on, does one thing, and reports the allocations it made.
//
//   echo_frame       creating a task of the echo handler (examples/echo_server.cpp's
//                    `echo`, copied below): the frame, nothing else (tasks are lazy).
//   child_frame      creating a trivial task<int> that just co_returns.
//   create_task      create_task(child()) on a running loop: task frame + root frame.
//   idle_connection  live heap bytes per idle connection of a start_server(echo) server,
//                    averaged over N connections that each did one round trip (as
//                    loadgen --idle does), with the sizes of one connection's allocations.
//   echo_request     allocations per echoed 64-byte request on those connections.
//
// Run:  COIO_BACKEND=epoll ./frame_size [--connections 1000]
// Output: one JSON line per scenario, each with "backend".
#include <coio/coio.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

// --- counting allocator --------------------------------------------------------------------

namespace {

constexpr std::size_t k_header = 16; // keeps the 16-byte alignment operator new promises
constexpr std::size_t k_max_sizes = 32;

struct alloc_counters {
    bool on = false;
    std::size_t count = 0;
    std::size_t bytes = 0;
    long long live = 0; // bytes allocated minus bytes freed, counted or not
    std::array<std::size_t, k_max_sizes> sizes{};
};
alloc_counters g_alloc;

void* counted_alloc(std::size_t n) {
    auto* p = static_cast<unsigned char*>(std::malloc(n + k_header));
    if (p == nullptr) {
        throw std::bad_alloc();
    }
    std::memcpy(p, &n, sizeof n);
    g_alloc.live += static_cast<long long>(n);
    if (g_alloc.on) {
        if (g_alloc.count < k_max_sizes) {
            g_alloc.sizes[g_alloc.count] = n;
        }
        ++g_alloc.count;
        g_alloc.bytes += n;
    }
    return p + k_header;
}

void counted_free(void* q) noexcept {
    if (q == nullptr) {
        return;
    }
    auto* p = static_cast<unsigned char*>(q) - k_header;
    std::size_t n = 0;
    std::memcpy(&n, p, sizeof n);
    g_alloc.live -= static_cast<long long>(n);
    std::free(p);
}

} // namespace

void* operator new(std::size_t n) {
    return counted_alloc(n);
}
void* operator new[](std::size_t n) {
    return counted_alloc(n);
}
void operator delete(void* p) noexcept {
    counted_free(p);
}
void operator delete[](void* p) noexcept {
    counted_free(p);
}
void operator delete(void* p, std::size_t /*n*/) noexcept {
    counted_free(p);
}
void operator delete[](void* p, std::size_t /*n*/) noexcept {
    counted_free(p);
}

// --- scenarios -----------------------------------------------------------------------------

namespace {

struct counted {
    std::size_t count;
    std::size_t bytes;
    std::string sizes; // "[a,b,...]"
};

void start_counting() {
    g_alloc.count = 0;
    g_alloc.bytes = 0;
    g_alloc.on = true;
}

counted stop_counting() {
    g_alloc.on = false;
    std::string sizes = "[";
    for (std::size_t i = 0; i < std::min(g_alloc.count, k_max_sizes); ++i) {
        sizes += (i == 0 ? "" : ",") + std::to_string(g_alloc.sizes[i]);
    }
    sizes += "]";
    return {g_alloc.count, g_alloc.bytes, sizes};
}

void print(const char* scenario, const counted& c, const std::string& extra = {}) {
    std::printf("{\"scenario\":\"%s\",\"backend\":\"%s\",\"allocations\":%zu,\"bytes\":%zu,"
                "\"sizes\":%s%s}\n",
                scenario, coio::backend_name().c_str(), c.count, c.bytes, c.sizes.c_str(),
                extra.c_str());
}

// The handler of examples/echo_server.cpp, verbatim (tag::echo there).
coio::task<> echo(coio::socket s) {
    for (;;) {
        coio::chunk_result r = co_await s.read_chunk(); // a buffer lent by the loop
        if (!r) {
            co_return; // eof, reset: the client is gone
        }
        if (!co_await s.write_all(r.data.view())) {
            co_return;
        }
    } // r.data goes back to the loop's pool here
}

coio::task<int> child(int v) {
    co_return v + 1;
}

// Blocking loopback client sockets, opened outside coio so that the client side allocates
// nothing on the heap the counters watch.
int raw_connect(std::uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        std::perror("frame_size: connect");
        std::exit(1);
    }
    return fd;
}

// Sends `len` bytes on every client, lets the loop run until every echo is back. The
// buffers come from the caller and the task is created before counting starts, so the
// counters see the server's allocations only.
coio::task<> round_trip(const std::vector<int>* clients, std::size_t len) {
    static std::array<char, 64> out{};
    static std::array<char, 64> in{};
    for (int fd : *clients) {
        if (::send(fd, out.data(), len, MSG_NOSIGNAL) != static_cast<ssize_t>(len)) {
            std::perror("frame_size: send");
            std::exit(1);
        }
    }
    for (int fd : *clients) {
        std::size_t got = 0;
        while (got < len) {
            ssize_t n = ::recv(fd, in.data() + got, len - got, MSG_DONTWAIT);
            if (n > 0) {
                got += static_cast<std::size_t>(n);
            } else {
                co_await coio::sleep(std::chrono::microseconds(200)); // the server runs here
            }
        }
    }
}

coio::task<> measure(std::size_t connections) {
    start_counting();
    { auto t = echo(coio::socket{}); }
    print("echo_frame", stop_counting());

    start_counting();
    { auto t = child(1); }
    print("child_frame", stop_counting());

    {
        coio::task<int> t = child(1);
        start_counting();
        coio::task_handle<int> h = coio::create_task(std::move(t));
        counted c = stop_counting();
        print("create_task", c, ",\"note\":\"root frame only; the task frame existed already\"");
        (void)co_await h;
    }

    coio::server srv = co_await coio::start_server(echo, "127.0.0.1", 0);
    const std::uint16_t port = srv.port();
    // Warm-up: one connection through the whole path, so containers that grow once (the
    // ready queue, the backend's fd table) do not charge their first growth to the sample.
    std::vector<int> clients{raw_connect(port)};
    co_await round_trip(&clients, 1);

    // One connection alone: which allocations an accepted connection makes.
    clients.push_back(raw_connect(port));
    std::vector<int> one{clients.back()};
    coio::task<> rt = round_trip(&one, 1);
    start_counting();
    co_await std::move(rt);
    counted first = stop_counting();
    print("connection_allocations", first,
          ",\"note\":\"allocations made while accepting one connection and echoing 1 byte\"");

    const long long before = g_alloc.live;
    std::vector<int> batch;
    for (std::size_t i = 0; i < connections; ++i) {
        batch.push_back(raw_connect(port));
    }
    co_await round_trip(&batch, 1);
    const long long after = g_alloc.live;
    char extra[160];
    std::snprintf(extra, sizeof extra, ",\"connections\":%zu,\"live_bytes_per_connection\":%.1f",
                  connections,
                  static_cast<double>(after - before) / static_cast<double>(connections));
    print("idle_connection", {0, 0, "[]"}, extra);

    constexpr int k_rounds = 10;
    co_await round_trip(&batch, 64); // the first round grows the ready queue: not counted
    std::vector<coio::task<>> rounds;
    for (int r = 0; r < k_rounds; ++r) {
        rounds.push_back(round_trip(&batch, 64));
    }
    start_counting();
    for (coio::task<>& r : rounds) {
        co_await std::move(r);
    }
    counted req = stop_counting();
    const double requests = static_cast<double>(k_rounds) * static_cast<double>(connections);
    std::snprintf(extra, sizeof extra,
                  ",\"requests\":%.0f,\"allocations_per_request\":%.3f,\"bytes_per_request\":%.1f",
                  requests, static_cast<double>(req.count) / requests,
                  static_cast<double>(req.bytes) / requests);
    print("echo_request", req, extra);

    for (int fd : batch) {
        ::close(fd);
    }
    for (int fd : clients) {
        ::close(fd);
    }
    srv.close();
    co_await srv.wait_closed();
}

} // namespace

int main(int argc, char** argv) {
    std::size_t connections = 1000;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--connections") == 0 && i + 1 < argc) {
            connections = std::strtoul(argv[++i], nullptr, 10);
        } else {
            std::fprintf(stderr, "usage: %s [--connections N]\n", argv[0]);
            return 2;
        }
    }
    try {
        coio::run(measure(connections));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "frame_size: %s\n", e.what());
        return 1;
    }
}
