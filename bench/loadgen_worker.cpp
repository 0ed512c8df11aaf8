// loadgen_worker.cpp — the per-thread epoll client of loadgen: the load, its drain and
// the echo check; see loadgen_worker.hpp (opening connections: loadgen_setup.cpp).
#include "loadgen_connection.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>
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

constexpr int k_max_events = 512;
constexpr int k_max_reported_errors = 5;
constexpr double k_max_drain_s = 60; // keeps the run bounded even against a trickling server

} // namespace

void loadgen_worker::run(std::int64_t measure_from_ns, std::int64_t end_ns) {
    m_measure_from = measure_from_ns;
    m_measure_to = end_ns;
    for (connection& c : m_conns) {
        c.limit = m_opts.reconnect ? 1 : std::numeric_limits<std::uint64_t>::max();
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
    m_draining = true;
    for (connection& c : m_conns) {
        // --reconnect: a cycle still connecting finishes (handshake and echo), so the server
        // never sees a handshake cut short; then recycle closes it for good.
        const bool opening = m_opts.reconnect && !c.ready && !c.dead;
        c.limit = opening ? 1 : c.send_seq + (c.send_off > 0 ? 1 : 0);
        pump_send(c);
    }
    auto drained = [this] {
        return std::all_of(m_conns.begin(), m_conns.end(), [](const connection& c) {
            return c.dead || (c.ready && c.recv_seq == c.send_seq && c.recv_off == c.send_off);
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
        if (!c.dead && !c.ready) {
            std::fprintf(stderr, "loadgen: connection %llu: %s did not finish within %.1f s\n",
                         static_cast<unsigned long long>(c.id),
                         c.connected ? "TLS handshake" : "connect", m_opts.drain_timeout_s);
            hard_fail();
        }
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
        if (!c.ready) {
            step_handshake(c);
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
    if (!c.ready) {
        return; // still connecting or in its handshake: step_handshake sends when it is done
    }
    while (!c.dead) {
        // Gather the next bytes into one buffer, so a deep pipeline of small requests goes
        // out in one send() call.
        std::size_t len = 0;
        std::uint64_t seq = c.send_seq;
        std::uint64_t off = c.send_off;
        while (len < k_scratch_size) {
            if (off == 0 && seq * size >= c.retry_end &&
                (seq - c.recv_seq >= depth || seq >= c.limit)) {
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
        ssize_t sent = io_send(c, m_scratch.get(), len);
        if (sent < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                fail(c, "send", errno);
            } else if (c.ssl != nullptr) {
                c.retry_end = c.send_seq * size + c.send_off + len; // SSL_write's retry rule
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
        ssize_t n = io_recv(c, m_scratch.get(), k_scratch_size);
        if (n > 0) {
            verify(c, m_scratch.get(), static_cast<std::size_t>(n), now_ns());
            // Short read: the queue was empty, and later bytes raise a new edge (see
            // raw_epoll_echo.cpp); skip the recv() that would only say EAGAIN. (Not with
            // TLS: SSL_read returns one record at a time, and may hold more decrypted.)
            if (c.ssl == nullptr && static_cast<std::size_t>(n) < k_scratch_size) {
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
    if (m_opts.reconnect && !m_setup && c.recv_seq >= c.limit) {
        return recycle(c); // the cycle's echo is back
    }
    pump_send(c);
}

ssize_t loadgen_worker::io_send(connection& c, const void* data, std::size_t len) {
    m_tls_error.clear();
    return c.ssl != nullptr ? tls_send(c.ssl, data, len, m_tls_error)
                            : send(c.fd, data, len, MSG_NOSIGNAL);
}

ssize_t loadgen_worker::io_recv(connection& c, void* data, std::size_t len) {
    m_tls_error.clear();
    return c.ssl != nullptr ? tls_recv(c.ssl, data, len, m_tls_error) : recv(c.fd, data, len, 0);
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
                // --reconnect: a cycle's latency runs from its connect() (handshake included).
                const std::int64_t from = m_opts.reconnect ? c.opened_at : m_sent_at[slot];
                m_result.latency.record(static_cast<std::uint64_t>(now - from));
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
        // A TLS call names its own failure (OpenSSL's reason); a plain one gives errno.
        const bool tls = !m_tls_error.empty();
        std::fprintf(stderr, "loadgen: connection %llu to %s: %s%s%s\n",
                     static_cast<unsigned long long>(c.id), m_opts.addr_text.c_str(),
                     tls ? m_tls_error.c_str() : why, err && !tls ? ": " : "",
                     err && !tls ? std::strerror(err) : "");
    }
    if (m_setup) {
        hard_fail(); // during the idle round trip every connection must work
    }
    ++m_result.errors;
    c.dead = true;
    tls_client::finish(c.ssl, false);
    c.ssl = nullptr;
    close(c.fd);
    c.fd = -1;
}

} // namespace bench
