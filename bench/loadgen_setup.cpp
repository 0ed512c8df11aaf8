// loadgen_setup.cpp — loadgen_worker's connections: opening them (TCP, then the TLS
// handshake with --tls), the setup phase, and --reconnect's close-and-reopen. See
// loadgen_worker.hpp.
#include "loadgen_connection.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace bench {
namespace {

constexpr std::uint32_t k_max_pending_connects = 256; // don't overflow the server's SYN queue

// Close with RST (linger 0) rather than FIN: a FIN close leaves each client socket in
// TIME_WAIT for 60 s holding its ephemeral port, and a series of runs on loopback (or
// --reconnect's thousands of connections per second) then runs out of the ~28k ports,
// making connect() crawl. The server sees ECONNRESET instead of EOF, which every echo
// server treats the same way.
void abort_close(int fd) {
    const linger abort{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
    close(fd);
}

} // namespace

void hard_fail() {
    std::fflush(stderr);
    std::_Exit(1);
}

std::int64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

loadgen_worker::loadgen_worker(const loadgen_options& opts, const echo_pattern& pattern,
                               std::uint64_t first_id, std::uint32_t count, bool spread_sources)
    : m_opts(opts), m_pattern(pattern), m_spread_sources(spread_sources), m_conns(count),
      m_sent_at(std::size_t{count} * opts.depth),
      m_scratch(std::make_unique<unsigned char[]>(k_scratch_size)) {
    for (std::uint32_t i = 0; i < count; ++i) {
        m_conns[i].id = first_id + i;
    }
    if (opts.tls) {
        m_tls = std::make_unique<tls_client>(opts);
    }
}

loadgen_worker::~loadgen_worker() {
    for (connection& c : m_conns) {
        tls_client::finish(c.ssl, true);
        if (c.fd >= 0) {
            abort_close(c.fd);
        }
    }
    if (m_epfd >= 0) {
        close(m_epfd);
    }
}

void loadgen_worker::open_socket(connection& c) {
    int family = m_opts.addr.ss_family;
    c.opened_at = now_ns();
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
        on_connected(c);
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
    on_connected(c);
}

// TCP is up: a plain connection is ready, a TLS one starts its handshake.
void loadgen_worker::on_connected(connection& c) {
    c.connected = true;
    if (!m_tls) {
        c.ready = true;
        ++m_connected;
        return;
    }
    c.ssl = m_tls->start(c.fd);
    step_handshake(c);
}

// Drives the handshake as far as the socket allows; the next epoll edge continues it. A
// failed handshake is fatal: the server under test refused a client it must accept.
void loadgen_worker::step_handshake(connection& c) {
    if (tls_handshake(c.ssl, m_tls_error) < 0) {
        if (errno == EAGAIN) {
            return;
        }
        std::fprintf(stderr, "loadgen: %s with %s (connection %llu)\n", m_tls_error.c_str(),
                     m_opts.addr_text.c_str(), static_cast<unsigned long long>(c.id));
        hard_fail();
    }
    c.ready = true;
    ++m_connected;
    if (m_measure_to != 0) {
        pump_send(c); // --reconnect during the run (or its drain): the cycle's echo goes out
    }
}

// --reconnect: the connection had its echo; close it (a close_notify, then RST) and start
// the next cycle on a fresh socket, unless the run is draining.
void loadgen_worker::recycle(connection& c) {
    if (m_tls) {
        m_tls->keep_session(c.ssl);
        tls_client::finish(c.ssl, true);
        c.ssl = nullptr;
    }
    abort_close(c.fd);
    const std::uint64_t limit = c.limit;
    const std::uint64_t id = c.id;
    c = connection{};
    c.id = id;
    c.limit = limit;
    if (m_draining) {
        c.dead = true; // finished, not failed: errors are counted by fail() only
        return;
    }
    open_socket(c);
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
        check_deadline(m_tls ? "connecting (TLS) to" : "connecting to", m_connected);
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

} // namespace bench
