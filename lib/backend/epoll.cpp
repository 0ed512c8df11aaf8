// lib/backend/epoll.cpp - the readiness backend for Linux.
//
// Discipline (tokio's registration.rs, seastar's reactor_backend_epoll): every
// operation first tries its syscall; only on EAGAIN is it parked on the fd and
// the fd registered - once, edge-triggered, for both directions - so a socket
// costs one epoll_ctl for its whole life. When an edge arrives, the parked
// operation retries; EAGAIN again just waits for the next edge. Trying before
// parking makes edge-triggering race-free: data that arrived before the park
// is found by the try, data after it raises a new edge.
//
// Readiness bits (issue #6): trying first costs an EAGAIN recv per request
// when the last recv already emptied the socket. So each fd keeps a readable
// and a writable bit: set by an edge (EPOLLIN / EPOLLRDHUP / EPOLLOUT, and
// EPOLLERR / EPOLLHUP for both), cleared by EAGAIN, and by a short transfer
// on a stream socket (recv or send that moved less than asked: TCP and Unix
// stream sockets move all there is, so the queue was empty or the send buffer
// full then). An operation whose bit is clear parks without the trial
// syscall. No edge is lost: bits are only cleared by a syscall that saw the
// socket drained, and with EPOLLET any data, FIN, error or send space that
// comes after that raises a new edge (for an fd registered after the clear,
// EPOLL_CTL_ADD reports the readiness it finds). One exception: a FIN or an
// error that came with the data. Its edge is the one that announced the data
// (the reported mask carries EPOLLRDHUP / EPOLLHUP / EPOLLERR), the short read
// stops at it, and the EOF or error that the next recv would return raises no
// new edge. So once such an edge was seen on the fd, reads clear the bit only
// on EAGAIN. (A FIN that comes after the edge was reported raises its own.)
// Datagram sockets and accept clear only on EAGAIN (a short datagram says
// nothing about the next one); connect always tries. Unknown socket types
// count as datagram until the fd is registered (SO_TYPE is read once, then).
//
// recv_pooled takes a buffer from the loop's pool (buffer_pool.hpp) only for
// the recv itself, and gives it back at once on EAGAIN, so a parked reader
// holds none. If the pool is empty (every buffer lent), the reader stays
// parked and tries again when release_buffer() brings one back.
#include "backend/backend.hpp"
#include "backend/buffer_pool.hpp"
#include "backend/fd_table.hpp"
#include "backend/readiness_ops.hpp"
#include "sys/fd.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <vector>

namespace coio::detail {
namespace {

// epoll_event.data.u64 packs the fd with a generation counter that close()
// bumps. A readiness event for an fd number that was closed and reused (the
// old registration can outlive close() when a forked child shares the socket)
// carries the old generation and is ignored.
constexpr std::uint64_t wake_tag = ~std::uint64_t{0};
std::uint64_t pack(int fd, std::uint32_t gen) noexcept {
    return (std::uint64_t{gen} << 32) | static_cast<std::uint32_t>(fd);
}

using readiness::is_write_side;
using readiness::perform;

bool is_stream_socket(int fd) noexcept {
    int type = 0;
    socklen_t len = sizeof type;
    return ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
}

class epoll_backend final : public backend {
public:
    explicit epoll_backend(completion_sink& sink)
        : m_sink(sink), m_events(1024), m_pool(pool_max_buffers()) {
        m_ep.reset(::epoll_create1(EPOLL_CLOEXEC));
        if (!m_ep) {
            throw std::runtime_error(sys::errno_message("epoll_create1", errno));
        }
        m_wake.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
        if (!m_wake) {
            throw std::runtime_error(sys::errno_message("eventfd", errno));
        }
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = wake_tag;
        if (::epoll_ctl(m_ep.get(), EPOLL_CTL_ADD, m_wake.get(), &ev) != 0) {
            throw std::runtime_error(sys::errno_message("epoll_ctl(eventfd)", errno));
        }
    }

    [[nodiscard]] std::string_view name() const noexcept override { return "epoll"; }

    bool submit(io_op& op) override {
        op.m_state = 0;
        if (op.m_fd < 0) {
            op.m_result = -EBADF;
            return true;
        }
        entry& e = m_fds.slot_for(op.m_fd);
        const bool writes = is_write_side(op.m_code);
        int r = -EAGAIN;
        if (op.m_code == op_code::connect || (writes ? e.writable : e.readable)) {
            r = attempt(op, e);
            if (r != -EAGAIN && r != -ENOBUFS) {
                op.m_result = r;
                return true;
            }
        }
        io_op*& parked = writes ? e.writer : e.reader;
        if (parked != nullptr) {
            op.m_result = -EBUSY; // another op of the same direction is waiting
            return true;
        }
        if (!e.registered) {
            epoll_event ev{};
            ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
            ev.data.u64 = pack(op.m_fd, e.gen);
            if (::epoll_ctl(m_ep.get(), EPOLL_CTL_ADD, op.m_fd, &ev) != 0) {
                op.m_result = -errno;
                return true;
            }
            e.registered = true;
            e.stream = is_stream_socket(op.m_fd);
            ++m_registered;
        }
        parked = &op;
        if (r == -ENOBUFS) {
            starve(op.m_fd, e);
        }
        return false;
    }

    void cancel(io_op& op) noexcept override {
        if (unpark(op)) {
            op.m_result = -ECANCELED;
            m_sink.complete(op);
        }
    }

    void forget(io_op& op) noexcept override { unpark(op); }

    void close(int fd) noexcept override {
        if (fd < 0) {
            return;
        }
        if (entry* e = m_fds.find(fd)) {
            m_fds.cancel_parked(*e, m_sink);
            if (e->registered) {
                e->registered = false;
                --m_registered;
            }
            ++e->gen;
            e->readable = e->writable = true;
            e->stream = e->hangup = false;
        }
        ::close(fd);
    }

    void wait(std::chrono::nanoseconds timeout) override {
        const int n = timeout.count() < 0 ? wait_events(-1) : wait_timed(timeout);
        if (n < 0) {
            if (errno == EINTR) {
                return;
            }
            throw std::runtime_error(sys::errno_message("epoll_wait", errno));
        }
        for (int i = 0; i < n; ++i) {
            const epoll_event& ev = m_events[static_cast<std::size_t>(i)];
            if (ev.data.u64 == wake_tag) {
                std::uint64_t v = 0;
                [[maybe_unused]] ssize_t r = ::read(m_wake.get(), &v, sizeof v);
                continue;
            }
            dispatch(ev.data.u64, ev.events);
        }
    }

    void wake() noexcept override {
        std::uint64_t one = 1;
        [[maybe_unused]] ssize_t r = ::write(m_wake.get(), &one, sizeof one);
    }

    [[nodiscard]] std::size_t registrations() const noexcept override { return m_registered; }

    // A buffer came back: a reader starved of buffers (the pool was empty when
    // its socket was readable) tries again, the longest-waiting first.
    void release_buffer(std::uint32_t id) noexcept override {
        m_pool.give_back(id);
        m_fds.retry_starved([this](entry& e) { return retry(e, e.reader); });
    }

    [[nodiscard]] std::size_t buffers_out() const noexcept override { return m_pool.out(); }

private:
    struct entry {
        io_op* reader = nullptr;
        io_op* writer = nullptr;
        std::uint32_t gen = 0;
        bool registered = false;
        bool readable = true; // see "Readiness bits" above
        bool writable = true;
        bool stream = false;  // SOCK_STREAM, known once registered
        bool starved = false; // in m_fds' starved FIFO: a recv_pooled found the pool empty
        bool hangup = false;  // an edge reported EPOLLRDHUP, EPOLLHUP or EPOLLERR
    };

    void starve(int fd, entry& e) noexcept { m_fds.starve(fd, e, "epoll"); }

    int wait_events(int timeout_ms) noexcept {
        return ::epoll_wait(m_ep.get(), m_events.data(), static_cast<int>(m_events.size()),
                            timeout_ms);
    }

    // epoll_pwait2 takes nanoseconds, so a 100 us timer is not rounded to
    // 1 ms (nor, as mio warns, truncated to 0 and a busy loop). Kernels
    // before 5.11 and valgrind 3.19 answer ENOSYS: from then on epoll_wait,
    // with the timeout rounded up to whole milliseconds.
    int wait_timed(std::chrono::nanoseconds timeout) noexcept {
        if (m_have_pwait2) {
            timespec ts{};
            ts.tv_sec = static_cast<time_t>(timeout.count() / 1'000'000'000);
            ts.tv_nsec = static_cast<long>(timeout.count() % 1'000'000'000);
            const int n = ::epoll_pwait2(m_ep.get(), m_events.data(),
                                         static_cast<int>(m_events.size()), &ts, nullptr);
            if (n >= 0 || errno != ENOSYS) {
                return n;
            }
            m_have_pwait2 = false;
        }
        const auto ms = std::chrono::ceil<std::chrono::milliseconds>(timeout).count();
        return wait_events(static_cast<int>(std::min<std::int64_t>(ms, INT_MAX)));
    }

    // One try of op's syscall; keeps e's readiness bits.
    int attempt(io_op& op, entry& e) noexcept {
        std::size_t asked = op.m_len;
        int r = 0;
        if (op.m_code == op_code::recv_pooled) {
            asked = pool_buffer_size;
            r = recv_into_pool(op, m_pool, *this);
        } else {
            r = perform(op);
        }
        const bool writes = is_write_side(op.m_code);
        const bool transfer = op.m_code == op_code::recv || op.m_code == op_code::recv_pooled ||
                              op.m_code == op_code::send;
        // After a FIN or an error was reported, a short read may leave the
        // EOF or the error behind with no edge to come: only EAGAIN clears.
        const bool short_clears = e.stream && transfer && (writes || !e.hangup);
        if (r == -EAGAIN || (short_clears && r > 0 && static_cast<std::size_t>(r) < asked)) {
            (writes ? e.writable : e.readable) = false;
        }
        return r;
    }

    bool unpark(io_op& op) noexcept { return m_fds.unpark(op); }

    void dispatch(std::uint64_t data, std::uint32_t events) noexcept {
        entry* found = m_fds.find(static_cast<std::size_t>(data & 0xffffffffU));
        if (found == nullptr) {
            return;
        }
        entry& e = *found;
        if (!e.registered || e.gen != static_cast<std::uint32_t>(data >> 32)) {
            return; // stale: the fd was closed since this registration
        }
        constexpr std::uint32_t errs = EPOLLHUP | EPOLLERR;
        if ((events & (EPOLLRDHUP | errs)) != 0) {
            e.hangup = true;
        }
        if ((events & (EPOLLIN | EPOLLRDHUP | errs)) != 0) {
            e.readable = true;
            if (e.reader != nullptr) {
                retry(e, e.reader);
            }
        }
        if ((events & (EPOLLOUT | errs)) != 0) {
            e.writable = true;
            if (e.writer != nullptr) {
                retry(e, e.writer);
            }
        }
    }

    // Tries a parked op again; completes it unless it must go on waiting.
    int retry(entry& e, io_op*& slot) noexcept {
        io_op& op = *slot;
        const int r = attempt(op, e);
        if (r == -EAGAIN) {
            return r;
        }
        if (r == -ENOBUFS) {
            starve(op.m_fd, e); // retried by release_buffer()
            return r;
        }
        slot = nullptr;
        op.m_result = r;
        m_sink.complete(op);
        return r;
    }

    completion_sink& m_sink;
    sys::unique_fd m_ep;
    sys::unique_fd m_wake;
    std::vector<epoll_event> m_events;
    fd_table<entry> m_fds;
    std::size_t m_registered = 0;
    buffer_freelist m_pool;
    bool m_have_pwait2 = true; // see wait_timed()
};

} // namespace

std::unique_ptr<backend> make_epoll_backend(completion_sink& sink) {
    return std::make_unique<epoll_backend>(sink);
}

} // namespace coio::detail
