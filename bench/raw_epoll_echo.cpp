// raw_epoll_echo — the smallest fast epoll echo server we know how to write by hand: one
// thread, edge-triggered epoll, non-blocking sockets, one recv per readiness into a 64 KiB
// buffer, the echo sent straight back from it, EPOLLOUT acted on only after a send came up
// short, no epoll_ctl and no allocation per request. It is the "limit" line in the echo
// benchmarks: coio's epoll backend should get close to it, never past it.
//
// Run:   ./raw_epoll_echo [--port 0] [--cpu 0]
//        prints "listening on 127.0.0.1:PORT"; stop with SIGINT/SIGTERM (exit 0).
// Try:   ./loadgen --port PORT --connections 100 --duration 2
#include "server_common.hpp"

#include <sys/epoll.h>

#include <memory>
#include <vector>

namespace {

constexpr std::size_t k_buffer_size = 64 * 1024;
constexpr int k_max_events = 512;

struct connection {
    // Bytes the peer sent that the socket would not take yet. While non-empty we stop
    // reading: the peer gets TCP backpressure instead of the server buffering without bound.
    std::vector<char> pending;
    std::size_t pending_off = 0;
};

class server {
public:
    server(int listen_fd, int stop_fd) : m_listen_fd(listen_fd), m_stop_fd(stop_fd) {
        m_epfd = epoll_create1(EPOLL_CLOEXEC);
        if (m_epfd < 0) {
            bench::die_errno("epoll_create1");
        }
        // The listener and the stop fd stay level-triggered: one accept4 loop or one check
        // per wakeup is enough, and nothing is lost if we leave work for the next turn.
        add(m_listen_fd, EPOLLIN);
        add(m_stop_fd, EPOLLIN);
    }

    void run() {
        epoll_event events[k_max_events];
        for (;;) {
            int n = epoll_wait(m_epfd, events, k_max_events, -1);
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                bench::die_errno("epoll_wait");
            }
            for (int i = 0; i < n; ++i) {
                int fd = events[i].data.fd;
                if (fd == m_stop_fd) {
                    return;
                }
                if (fd == m_listen_fd) {
                    accept_all();
                } else {
                    on_event(fd, events[i].events);
                }
            }
        }
    }

    ~server() {
        for (std::size_t fd = 0; fd < m_conns.size(); ++fd) {
            if (m_conns[fd]) {
                close(static_cast<int>(fd));
            }
        }
        close(m_epfd);
    }

private:
    void add(int fd, std::uint32_t events) {
        epoll_event ev{};
        ev.events = events;
        ev.data.fd = fd;
        if (epoll_ctl(m_epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            bench::die_errno("epoll_ctl(ADD)");
        }
    }

    void accept_all() {
        for (;;) {
            int fd = accept4(m_listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno == EINTR || errno == ECONNABORTED) {
                    continue;
                }
                if (errno != EAGAIN && errno != EWOULDBLOCK) {
                    std::perror("raw_epoll_echo: accept4"); // EMFILE and friends: keep serving
                }
                return;
            }
            bench::set_nodelay(fd);
            if (static_cast<std::size_t>(fd) >= m_conns.size()) {
                m_conns.resize(static_cast<std::size_t>(fd) + 1024);
            }
            m_conns[static_cast<std::size_t>(fd)] = std::make_unique<connection>();
            // Registered once for both directions: with EPOLLET there is no epoll_ctl per
            // request, and EPOLLOUT only fires after a send actually hit a full buffer.
            add(fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
        }
    }

    void on_event(int fd, std::uint32_t events) {
        connection& c = *m_conns[static_cast<std::size_t>(fd)];
        if ((events & EPOLLOUT) && !c.pending.empty() && !flush(fd, c)) {
            return close_conn(fd);
        }
        if (!c.pending.empty()) {
            return; // still blocked; the socket keeps the unread input for us
        }
        // Read even without EPOLLIN: after a flush there may be input we left unread when
        // the output blocked, and an edge for it will not come again.
        echo(fd, c, (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0);
    }

    // `closing`: the edge also announced a FIN or an error, which no later edge repeats,
    // so read on until recv says so (0 or an error) instead of stopping at a short read.
    void echo(int fd, connection& c, bool closing) {
        for (;;) {
            ssize_t n = recv(fd, m_buf, sizeof m_buf, 0);
            if (n > 0) {
                ssize_t sent = send(fd, m_buf, static_cast<std::size_t>(n), MSG_NOSIGNAL);
                if (sent < 0) {
                    if (errno != EAGAIN && errno != EWOULDBLOCK) {
                        return close_conn(fd);
                    }
                    sent = 0;
                }
                if (sent < n) {
                    c.pending.assign(m_buf + sent, m_buf + n);
                    c.pending_off = 0;
                    return;
                }
                // A short read means the receive queue was empty a moment ago. Any byte
                // arriving after that queues a fresh edge-triggered event, so we can skip
                // the recv() that would only say EAGAIN: one syscall saved per request.
                if (static_cast<std::size_t>(n) < sizeof m_buf && !closing) {
                    return;
                }
                continue;
            }
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                return;
            }
            return close_conn(fd); // 0 = peer closed, or a real error (ECONNRESET ...)
        }
    }

    // Sends what the socket takes; false on a fatal error.
    static bool flush(int fd, connection& c) {
        while (c.pending_off < c.pending.size()) {
            ssize_t sent = send(fd, c.pending.data() + c.pending_off,
                                c.pending.size() - c.pending_off, MSG_NOSIGNAL);
            if (sent < 0) {
                if (errno == EINTR) {
                    continue;
                }
                return errno == EAGAIN || errno == EWOULDBLOCK;
            }
            c.pending_off += static_cast<std::size_t>(sent);
        }
        c.pending.clear();
        c.pending_off = 0;
        return true;
    }

    void close_conn(int fd) {
        close(fd); // also drops it from the epoll set: nobody else holds this file
        m_conns[static_cast<std::size_t>(fd)].reset();
    }

    int m_listen_fd;
    int m_stop_fd;
    int m_epfd = -1;
    std::vector<std::unique_ptr<connection>> m_conns; // indexed by fd
    char m_buf[k_buffer_size];
};

} // namespace

int main(int argc, char** argv) {
    bench::server_options opts = bench::parse_server_options(argc, argv);
    bench::pin_to_cpu(opts.cpu);
    bench::raise_nofile_limit();
    int stop_fd = bench::make_stop_fd();
    int listen_fd = bench::open_listener(opts.port, true);
    {
        auto srv = std::make_unique<server>(listen_fd, stop_fd);
        srv->run();
    }
    close(listen_fd);
    close(stop_fd);
    return 0;
}
