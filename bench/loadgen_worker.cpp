// loadgen_worker.cpp — the per-thread epoll client of loadgen; see loadgen_worker.hpp.
#include "loadgen_worker.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace bench {
namespace {

constexpr std::size_t k_scratch_size = 64 * 1024;
constexpr std::uint32_t k_max_pending_connects = 256; // don't overflow the server's SYN queue
constexpr int k_max_events = 512;
constexpr int k_max_reported_errors = 5;
constexpr double k_max_drain_s = 60; // keeps the run bounded even against a trickling server

// Each worker process reports its failure itself and leaves at once: the other threads'
// state is of no use after a wrong echo, and the parent (if any) sees status 1.
[[noreturn]] void hard_fail() {
    std::fflush(stderr);
    std::_Exit(1);
}

} // namespace

std::int64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

struct loadgen_worker::connection {
    int fd = -1;
    std::uint64_t id = 0;
    // The byte stream is request 0, 1, 2, ... of `size` bytes each. (send_seq, send_off) is
    // the next byte to send, (recv_seq, recv_off) the next byte expected back.
    std::uint64_t send_seq = 0;
    std::uint64_t send_off = 0;
    std::uint64_t recv_seq = 0;
    std::uint64_t recv_off = 0;
    std::uint64_t limit = 0; // requests this connection may start
    bool connected = false;
    bool dead = false;
};

loadgen_worker::loadgen_worker(const loadgen_options& opts, const echo_pattern& pattern,
                               std::uint64_t first_id, std::uint32_t count, bool spread_sources)
    : m_opts(opts), m_pattern(pattern), m_spread_sources(spread_sources), m_conns(count),
      m_sent_at(std::size_t{count} * opts.depth),
      m_scratch(std::make_unique<unsigned char[]>(k_scratch_size)) {
    for (std::uint32_t i = 0; i < count; ++i) {
        m_conns[i].id = first_id + i;
    }
}

loadgen_worker::~loadgen_worker() {
    // Close with RST (linger 0) rather than FIN: a FIN close leaves each client socket in
    // TIME_WAIT for 60 s holding its ephemeral port, and a series of runs on loopback then
    // runs out of the ~28k ports, making connect() crawl. The server sees ECONNRESET
    // instead of EOF, which every echo server treats the same way.
    const linger abort_close{1, 0};
    for (connection& c : m_conns) {
        if (c.fd >= 0) {
            setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &abort_close, sizeof abort_close);
            close(c.fd);
        }
    }
    if (m_epfd >= 0) {
        close(m_epfd);
    }
}

void loadgen_worker::open_socket(connection& c) {
    int family = m_opts.addr.ss_family;
    c.fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) {
        std::fprintf(stderr, "loadgen: socket for connection %llu: %s\n",
                     static_cast<unsigned long long>(c.id), std::strerror(errno));
        hard_fail();
    }
    int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (m_spread_sources && family == AF_INET) {
        // One source address has ~28k ephemeral ports towards one server port, and the
        // kernel's search for a free one slows down as they fill up. So for large runs,
        // spread connections over 127.0.X.1 sources (still loopback); the port is picked at
        // connect() time thanks to IP_BIND_ADDRESS_NO_PORT.
        setsockopt(c.fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        sockaddr_in src{};
        src.sin_family = AF_INET;
        src.sin_addr.s_addr = htonl(0x7f000001u | static_cast<std::uint32_t>(1 + c.id % 250) << 8);
        if (bind(c.fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) {
            std::fprintf(stderr, "loadgen: bind source for connection %llu: %s\n",
                         static_cast<unsigned long long>(c.id), std::strerror(errno));
            hard_fail();
        }
    }
    epoll_event ev{};
    // Registered once for everything: EPOLLOUT reports the connect, then free send space.
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.u64 = static_cast<std::uint64_t>(&c - m_conns.data());
    if (epoll_ctl(m_epfd, EPOLL_CTL_ADD, c.fd, &ev) != 0) {
        std::perror("loadgen: epoll_ctl");
        hard_fail();
    }
    if (connect(c.fd, reinterpret_cast<const sockaddr*>(&m_opts.addr), m_opts.addr_len) == 0) {
        c.connected = true;
        ++m_connected;
    } else if (errno != EINPROGRESS) {
        std::fprintf(stderr, "loadgen: connect to %s (connection %llu): %s\n",
                     m_opts.addr_text.c_str(), static_cast<unsigned long long>(c.id),
                     std::strerror(errno));
        hard_fail();
    }
}

void loadgen_worker::finish_connect(connection& c) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
        std::fprintf(stderr, "loadgen: connect to %s (connection %llu): %s\n",
                     m_opts.addr_text.c_str(), static_cast<unsigned long long>(c.id),
                     std::strerror(err));
        hard_fail();
    }
    c.connected = true;
    ++m_connected;
}

void loadgen_worker::setup(bool round_trip) {
    m_epfd = epoll_create1(EPOLL_CLOEXEC);
    if (m_epfd < 0) {
        std::perror("loadgen: epoll_create1");
        hard_fail();
    }
    const std::int64_t deadline =
        now_ns() + static_cast<std::int64_t>(m_opts.setup_timeout_s * 1e9);
    auto check_deadline = [&](const char* phase, std::uint64_t done) {
        if (done < m_conns.size() && now_ns() > deadline) {
            std::fprintf(stderr, "loadgen: %s %s timed out after %.1f s: %llu of %zu done\n", phase,
                         m_opts.addr_text.c_str(), m_opts.setup_timeout_s,
                         static_cast<unsigned long long>(done), m_conns.size());
            hard_fail();
        }
    };
    std::size_t next = 0;
    while (m_connected < m_conns.size()) {
        while (next < m_conns.size() && next - m_connected < k_max_pending_connects) {
            open_socket(m_conns[next++]);
        }
        if (m_connected < m_conns.size()) {
            wait_events(100, false);
        }
        check_deadline("connecting to", m_connected);
    }
    if (!round_trip) {
        return;
    }
    m_setup = true; // record nothing; any failure is fatal
    for (connection& c : m_conns) {
        c.limit = 1;
        pump_send(c);
    }
    while (m_completed < m_conns.size()) {
        wait_events(100, true);
        check_deadline("round trip with", m_completed);
    }
    m_setup = false;
}

void loadgen_worker::run(std::int64_t measure_from_ns, std::int64_t end_ns) {
    m_measure_from = measure_from_ns;
    m_measure_to = end_ns;
    for (connection& c : m_conns) {
        c.limit = std::numeric_limits<std::uint64_t>::max();
        pump_send(c);
    }
    for (std::int64_t now = now_ns(); now < end_ns; now = now_ns()) {
        // Round up: a sub-millisecond rest must not become a 0 ms busy poll.
        wait_events(static_cast<int>((end_ns - now + 999'999) / 1'000'000), true);
    }
    drain();
}

// A server that loses bytes does not corrupt the stream, it stalls it: the client waits
// for an echo that never comes. So after the run, send no new requests (finish a request
// already half sent) and wait until every byte sent has come back. If nothing at all comes
// back for drain_timeout_s (or the drain passes k_max_drain_s), what is still missing is
// reported as lost and fails the run. Waiting for silence rather than a fixed time keeps a
// slow but working server (megabytes still in flight) from being called lossy.
void loadgen_worker::drain() {
    for (connection& c : m_conns) {
        c.limit = c.send_seq + (c.send_off > 0 ? 1 : 0);
        pump_send(c);
    }
    auto drained = [this] {
        return std::all_of(m_conns.begin(), m_conns.end(), [](const connection& c) {
            return c.dead || (c.recv_seq == c.send_seq && c.recv_off == c.send_off);
        });
    };
    const std::int64_t silence_ns = static_cast<std::int64_t>(m_opts.drain_timeout_s * 1e9);
    const std::int64_t cap = now_ns() + static_cast<std::int64_t>(k_max_drain_s * 1e9);
    m_last_progress = now_ns();
    for (std::int64_t now = m_last_progress; !drained(); now = now_ns()) {
        if (now - m_last_progress > silence_ns || now > cap) {
            break;
        }
        wait_events(100, true);
    }
    for (const connection& c : m_conns) {
        if (!c.dead && !(c.recv_seq == c.send_seq && c.recv_off == c.send_off)) {
            const std::uint64_t size = m_opts.size;
            std::fprintf(stderr,
                         "loadgen: connection %llu: echo stalled at stream offset %llu (request "
                         "%llu, byte %llu): %llu sent bytes not echoed back (no progress for "
                         "%.1f s)\n",
                         static_cast<unsigned long long>(c.id),
                         static_cast<unsigned long long>(c.recv_seq * size + c.recv_off),
                         static_cast<unsigned long long>(c.recv_seq),
                         static_cast<unsigned long long>(c.recv_off),
                         static_cast<unsigned long long>((c.send_seq * size + c.send_off) -
                                                         (c.recv_seq * size + c.recv_off)),
                         m_opts.drain_timeout_s);
            hard_fail();
        }
    }
}

// One epoll_wait and its dispatch. Before `running`, events only finish connects.
void loadgen_worker::wait_events(int timeout_ms, bool running) {
    epoll_event events[k_max_events];
    int n = epoll_wait(m_epfd, events, k_max_events, timeout_ms);
    if (n < 0 && errno != EINTR) {
        std::perror("loadgen: epoll_wait");
        hard_fail();
    }
    for (int i = 0; i < n; ++i) {
        connection& c = m_conns[events[i].data.u64];
        if (c.dead) {
            continue;
        }
        if (!c.connected) {
            finish_connect(c);
            continue;
        }
        if (!running) {
            continue; // ET: the send loop starts by trying anyway, no edge is lost
        }
        if (events[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
            pump_recv(c); // also refills the pipeline
        } else if (events[i].events & EPOLLOUT) {
            pump_send(c);
        }
    }
}

// Writes as much of the pipeline as the window and the socket allow.
void loadgen_worker::pump_send(connection& c) {
    const std::size_t size = m_opts.size;
    const std::uint32_t depth = m_opts.depth;
    while (!c.dead) {
        // Gather the next bytes into one buffer, so a deep pipeline of small requests goes
        // out in one send() call.
        std::size_t len = 0;
        std::uint64_t seq = c.send_seq;
        std::uint64_t off = c.send_off;
        while (len < k_scratch_size) {
            if (off == 0 && (seq - c.recv_seq >= depth || seq >= c.limit)) {
                break;
            }
            std::size_t avail = 0;
            const unsigned char* src = m_pattern.at(c.id, seq, off, avail);
            std::size_t n =
                std::min({static_cast<std::size_t>(size - off), avail, k_scratch_size - len});
            std::memcpy(m_scratch.get() + len, src, n);
            len += n;
            off += n;
            if (off == size) {
                ++seq;
                off = 0;
            }
        }
        if (len == 0) {
            return;
        }
        ssize_t sent = send(c.fd, m_scratch.get(), len, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                fail(c, "send", errno);
            }
            return; // EAGAIN: the EPOLLOUT edge brings us back
        }
        // A request's clock starts when its first byte is handed to the kernel.
        const std::int64_t now = now_ns();
        auto left = static_cast<std::size_t>(sent);
        while (left > 0) {
            if (c.send_off == 0) {
                m_sent_at[(&c - m_conns.data()) * depth + c.send_seq % depth] = now;
            }
            std::size_t n = std::min(static_cast<std::size_t>(size - c.send_off), left);
            c.send_off += n;
            left -= n;
            if (c.send_off == size) {
                ++c.send_seq;
                c.send_off = 0;
            }
        }
        if (static_cast<std::size_t>(sent) < len) {
            return; // socket buffer full
        }
    }
}

void loadgen_worker::pump_recv(connection& c) {
    for (;;) {
        ssize_t n = recv(c.fd, m_scratch.get(), k_scratch_size, 0);
        if (n > 0) {
            verify(c, m_scratch.get(), static_cast<std::size_t>(n), now_ns());
            // Short read: the queue was empty, and later bytes raise a new edge (see
            // raw_epoll_echo.cpp); skip the recv() that would only say EAGAIN.
            if (static_cast<std::size_t>(n) < k_scratch_size) {
                break;
            }
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        }
        return fail(c, n == 0 ? "server closed the connection" : "recv", n == 0 ? 0 : errno);
    }
    pump_send(c);
}

// Checks echoed bytes against what this connection sent; completes requests.
void loadgen_worker::verify(connection& c, const unsigned char* data, std::size_t len,
                            std::int64_t now) {
    const std::size_t size = m_opts.size;
    m_last_progress = now;
    while (len > 0) {
        const std::uint64_t stream_off = c.recv_seq * size + c.recv_off;
        const std::uint64_t sent_end = c.send_seq * size + c.send_off;
        if (stream_off >= sent_end) {
            std::fprintf(stderr,
                         "loadgen: connection %llu: server sent %zu bytes more than it was sent, "
                         "at stream offset %llu\n",
                         static_cast<unsigned long long>(c.id), len,
                         static_cast<unsigned long long>(stream_off));
            hard_fail();
        }
        std::size_t avail = 0;
        const unsigned char* want = m_pattern.at(c.id, c.recv_seq, c.recv_off, avail);
        std::size_t n = std::min({len, static_cast<std::size_t>(size - c.recv_off), avail,
                                  static_cast<std::size_t>(sent_end - stream_off)});
        if (std::memcmp(data, want, n) != 0) {
            std::size_t bad = 0;
            while (data[bad] == want[bad]) {
                ++bad;
            }
            std::fprintf(stderr,
                         "loadgen: echo mismatch on connection %llu at stream offset %llu "
                         "(request %llu, byte %llu): expected 0x%02x, got 0x%02x\n",
                         static_cast<unsigned long long>(c.id),
                         static_cast<unsigned long long>(stream_off + bad),
                         static_cast<unsigned long long>(c.recv_seq),
                         static_cast<unsigned long long>(c.recv_off + bad), want[bad], data[bad]);
            hard_fail();
        }
        data += n;
        len -= n;
        c.recv_off += n;
        if (c.recv_off == size) {
            const std::size_t slot = static_cast<std::size_t>(&c - m_conns.data()) * m_opts.depth +
                                     c.recv_seq % m_opts.depth;
            if (now >= m_measure_from && now < m_measure_to) {
                m_result.latency.record(static_cast<std::uint64_t>(now - m_sent_at[slot]));
                ++m_result.requests;
            }
            ++m_completed;
            ++c.recv_seq;
            c.recv_off = 0;
        }
    }
}

void loadgen_worker::fail(connection& c, const char* why, int err) {
    if (m_result.errors < k_max_reported_errors) {
        std::fprintf(stderr, "loadgen: connection %llu to %s: %s%s%s\n",
                     static_cast<unsigned long long>(c.id), m_opts.addr_text.c_str(), why,
                     err ? ": " : "", err ? std::strerror(err) : "");
    }
    if (m_setup) {
        hard_fail(); // during the idle round trip every connection must work
    }
    ++m_result.errors;
    c.dead = true;
    close(c.fd);
    c.fd = -1;
}

} // namespace bench
