// selectors_echo — the seeds' second server model, Python's `selectors` callback loop,
// written in C++ on raw level-triggered epoll so its cost can be compared with coio and with
// the hand-tuned servers. It keeps the seed's shape on purpose, overheads included:
//
//   sel.register(sock, EVENT_READ, accept)       registry: fd -> (events, callback)
//   for key, mask in sel.select(): key.data(key.fileobj)
//   read(conn): data = conn.recv(1024); conn.sendall(data) or unregister + close
//
// One change: the seed's sendall() on a non-blocking socket raises when the socket buffer
// is full. Here the unsent rest is kept and the fd is re-registered for EVENT_WRITE with a
// write callback, then back to EVENT_READ once drained, so no echoed byte is ever lost.
//
// Run:   ./selectors_echo [--port 0] [--cpu 0]
//        prints "listening on 127.0.0.1:PORT"; stop with SIGINT/SIGTERM (exit 0).
// Try:   ./loadgen --port PORT --connections 100 --duration 2
#include "server_common.hpp"

#include <sys/epoll.h>

#include <algorithm>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace {

constexpr std::uint32_t event_read = EPOLLIN;
constexpr std::uint32_t event_write = EPOLLOUT;
constexpr std::size_t k_recv_size = 1024; // the seed's conn.recv(1024)

using callback = std::function<void(int fd)>;

// Python's SelectorKey: the fd, the events it waits for, and the callback (key.data).
struct selector_key {
    int fd;
    std::uint32_t events;
    callback data;
    bool alive = true;
};

// A C++ selectors.EpollSelector: level-triggered, a map from fd to key, select() returns
// (key, events) pairs. Keys unregistered during dispatch stay allocated until the next
// select(), because the callback running at that moment may be the one being dropped.
class epoll_selector {
public:
    epoll_selector() {
        m_epfd = epoll_create1(EPOLL_CLOEXEC);
        if (m_epfd < 0) {
            bench::die_errno("epoll_create1");
        }
    }
    ~epoll_selector() { close(m_epfd); }
    epoll_selector(const epoll_selector&) = delete;
    epoll_selector& operator=(const epoll_selector&) = delete;

    void register_fd(int fd, std::uint32_t events, callback cb) {
        auto key = std::make_unique<selector_key>(selector_key{fd, events, std::move(cb)});
        ctl(EPOLL_CTL_ADD, key.get());
        m_keys[fd] = std::move(key);
    }

    void modify(int fd, std::uint32_t events, callback cb) {
        selector_key& key = *m_keys.at(fd);
        // The old callback may be the one running right now: retire it, don't destroy it.
        m_retired.push_back(std::exchange(key.data, std::move(cb)));
        if (key.events != events) {
            key.events = events;
            ctl(EPOLL_CTL_MOD, &key);
        }
    }

    void unregister(int fd) {
        auto it = m_keys.find(fd);
        epoll_ctl(m_epfd, EPOLL_CTL_DEL, fd, nullptr);
        it->second->alive = false;
        m_graveyard.push_back(std::move(it->second));
        m_keys.erase(it);
    }

    // Blocks until some registered fd is ready, like sel.select() with no timeout.
    const std::vector<std::pair<selector_key*, std::uint32_t>>& select() {
        m_graveyard.clear();
        m_retired.clear();
        m_ready.clear();
        // Python asks for up to one event per registered fd (EpollSelector.select).
        m_events.resize(std::max<std::size_t>(m_keys.size(), 1));
        int n = epoll_wait(m_epfd, m_events.data(), static_cast<int>(m_events.size()), -1);
        if (n < 0 && errno != EINTR) {
            bench::die_errno("epoll_wait");
        }
        for (int i = 0; i < n; ++i) {
            const epoll_event& ev = m_events[static_cast<std::size_t>(i)];
            std::uint32_t mask = ev.events; // a copy: epoll_event is packed on x86-64
            m_ready.emplace_back(static_cast<selector_key*>(ev.data.ptr), mask);
        }
        return m_ready;
    }

private:
    void ctl(int operation, selector_key* key) {
        epoll_event ev{};
        ev.events = key->events;
        ev.data.ptr = key;
        if (epoll_ctl(m_epfd, operation, key->fd, &ev) != 0) {
            bench::die_errno("epoll_ctl");
        }
    }

    int m_epfd;
    std::unordered_map<int, std::unique_ptr<selector_key>> m_keys;
    std::vector<std::unique_ptr<selector_key>> m_graveyard;
    std::vector<callback> m_retired;
    std::vector<epoll_event> m_events;
    std::vector<std::pair<selector_key*, std::uint32_t>> m_ready;
};

// The seed's module-level functions, with the selector they share.
class echo_app {
public:
    explicit echo_app(int listen_fd) {
        m_sel.register_fd(listen_fd, event_read, [this](int fd) { accept(fd); });
    }

    void add_stop_fd(int stop_fd) {
        m_sel.register_fd(stop_fd, event_read, [this](int) { m_running = false; });
    }

    void run() {
        while (m_running) {
            for (auto [key, mask] : m_sel.select()) {
                if (key->alive && m_running) {
                    key->data(key->fd); // callback = key.data; callback(key.fileobj)
                }
            }
        }
    }

    ~echo_app() {
        for (int fd : m_open) {
            close(fd);
        }
    }

private:
    void accept(int sock) {
        int conn = accept4(sock, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (conn < 0) {
            return; // EAGAIN (another wakeup took it) or a transient error: keep serving
        }
        bench::set_nodelay(conn);
        m_open.insert(conn);
        m_sel.register_fd(conn, event_read, [this](int fd) { read(fd); });
    }

    void read(int conn) {
        char data[k_recv_size];
        ssize_t n = recv(conn, data, sizeof data, 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            return;
        }
        if (n <= 0) {
            return drop(conn);
        }
        ssize_t sent = send(conn, data, static_cast<std::size_t>(n), MSG_NOSIGNAL);
        if (sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            return drop(conn);
        }
        sent = sent < 0 ? 0 : sent;
        if (sent < n) {
            auto rest = std::make_shared<std::string>(data + sent, data + n);
            m_sel.modify(conn, event_write, [this, rest](int fd) { write(fd, *rest); });
        }
    }

    void write(int conn, std::string& rest) {
        ssize_t sent = send(conn, rest.data(), rest.size(), MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                drop(conn);
            }
            return;
        }
        rest.erase(0, static_cast<std::size_t>(sent));
        if (rest.empty()) {
            m_sel.modify(conn, event_read, [this](int fd) { read(fd); });
        }
    }

    void drop(int conn) {
        m_sel.unregister(conn); // sel.unregister(conn); conn.close()
        close(conn);
        m_open.erase(conn);
    }

    bool m_running = true;
    epoll_selector m_sel;
    std::unordered_set<int> m_open; // to close what is left at exit
};

} // namespace

int main(int argc, char** argv) {
    bench::server_options opts = bench::parse_server_options(argc, argv);
    bench::pin_to_cpu(opts.cpu);
    bench::raise_nofile_limit();
    int stop_fd = bench::make_stop_fd();
    int listen_fd = bench::open_listener(opts.port, true);
    {
        echo_app app(listen_fd);
        app.add_stop_fd(stop_fd);
        app.run();
    }
    close(listen_fd);
    close(stop_fd);
    return 0;
}
