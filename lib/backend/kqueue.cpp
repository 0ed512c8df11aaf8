// lib/backend/kqueue.cpp - the readiness backend for macOS and the BSDs.
//
// Same discipline as epoll.cpp (contract: backend.hpp): every operation first
// tries its syscall; only on EAGAIN is it parked on the fd, and the fd's filter
// for that direction is registered - once per fd lifetime - with EV_CLEAR.
// When the filter fires, the parked operation retries; EAGAIN again just waits
// for the next event.
//
// EV_CLEAR (edge-style), not EV_ONESHOT/EV_DISPATCH with a re-arm per wait:
//  - a socket costs at most two kevent() registrations for its whole life
//    (EVFILT_READ when a reader first parks, EVFILT_WRITE when a writer does),
//    where one-shot would need a change (or a changelist entry) per wait;
//  - it is race-free for the same reason as edge-triggered epoll: EV_ADD
//    evaluates the filter at once, so data that arrived between the failed try
//    and the registration is reported; later data raises a new event; events
//    for an fd with nothing parked are ignored, and the next op's try finds
//    whatever they announced.
// Registering each direction lazily means a read-mostly socket never gets the
// write filter, which with EV_CLEAR would fire on every ACK that frees buffer
// space.
//
// recv_pooled (read_chunk) takes a buffer from the loop's pool
// (buffer_pool.hpp) only for the recv itself, as epoll.cpp does, so a parked
// reader holds none; with the pool empty it waits for a buffer to come back.
//
// Stale events: kevent.ident is the fd and kevent.udata carries the fd's
// generation, which close() bumps. An event already fetched for an fd that was
// closed and reused since (within one kevent() batch) carries the old
// generation and is ignored. (The kernel itself drops the knotes of a closed
// fd.) Only the generation goes in udata, so it fits a 32-bit pointer too.
//
// wake(): EVFILT_USER with NOTE_TRIGGER (macOS, FreeBSD, DragonFly, NetBSD 10).
// Where EVFILT_USER is missing (OpenBSD, older NetBSD) - or when built with
// COIO_KQUEUE_WAKE_PIPE, which scripts/check-macos uses to compile that path -
// a non-blocking pipe watched with EVFILT_READ does the same.
//
// Timeouts go to kevent() as a timespec in nanoseconds: nothing is rounded, so
// a 100 us timer neither becomes 1 ms nor 0 (a busy loop).
//
// A kqueue is not inherited across fork(); a child must make its own loop.
#include "backend/backend.hpp"
#include "backend/buffer_pool.hpp"
#include "backend/fd_table.hpp"
#include "backend/readiness_ops.hpp"
#include "sys/fd.hpp"

#include <sys/types.h> // before <sys/event.h>: older BSDs need it first

#include <fcntl.h>
#include <sys/event.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(EVFILT_USER) && !defined(COIO_KQUEUE_WAKE_PIPE)
#define COIO_KQUEUE_WAKE_USER 1
#else
#define COIO_KQUEUE_WAKE_USER 0
#endif

namespace coio::detail {
namespace {

// kevent.udata is void* on macOS and FreeBSD, intptr_t on NetBSD before 10.
// (Templates, so that the branch for the other kind is discarded.)
using udata_t = decltype(std::declval<struct kevent&>().udata);

template <class U = udata_t>
U to_udata(std::uintptr_t v) noexcept {
    if constexpr (std::is_pointer_v<U>) {
        return reinterpret_cast<U>(v);
    } else {
        return static_cast<U>(v);
    }
}

template <class U>
std::uintptr_t from_udata(U u) noexcept {
    if constexpr (std::is_pointer_v<U>) {
        return reinterpret_cast<std::uintptr_t>(u);
    } else {
        return static_cast<std::uintptr_t>(u);
    }
}

struct kevent make_change(std::uintptr_t ident, int filter, unsigned flags, unsigned fflags,
                          std::uintptr_t udata) noexcept {
    struct kevent ev {};
    ev.ident = ident;
    ev.filter = static_cast<decltype(ev.filter)>(filter);
    ev.flags = static_cast<decltype(ev.flags)>(flags);
    ev.fflags = static_cast<decltype(ev.fflags)>(fflags);
    ev.udata = to_udata(udata);
    return ev;
}

using readiness::is_write_side;
using readiness::perform;

// Bits of entry::filters: which filters are registered for the fd.
constexpr std::uint8_t read_filter = 1;
constexpr std::uint8_t write_filter = 2;

#if COIO_KQUEUE_WAKE_USER
constexpr std::uintptr_t wake_ident = 0; // EVFILT_USER idents are not fds
#endif

// kevent() rejects or overflows on huge timeouts on some systems; waking up
// spuriously after three years is harmless (the loop just waits again).
constexpr std::int64_t max_wait_seconds = 100'000'000;

class kqueue_backend final : public backend {
public:
    explicit kqueue_backend(completion_sink& sink)
        : m_sink(sink), m_events(1024), m_pool(pool_max_buffers()) {
        m_kq.reset(::kqueue());
        if (!m_kq) {
            throw std::runtime_error(sys::errno_message("kqueue", errno));
        }
        // kqueue() takes no flags (FreeBSD 14's kqueuex does); a kqueue is not
        // inherited by fork, but its fd number would be across exec.
        if (::fcntl(m_kq.get(), F_SETFD, FD_CLOEXEC) != 0) {
            throw std::runtime_error(sys::errno_message("fcntl(kqueue, FD_CLOEXEC)", errno));
        }
#if COIO_KQUEUE_WAKE_USER
        struct kevent ch = make_change(wake_ident, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0);
        if (::kevent(m_kq.get(), &ch, 1, nullptr, 0, nullptr) != 0) {
            throw std::runtime_error(sys::errno_message("kevent(EVFILT_USER)", errno));
        }
#else
        int p[2];
        if (::pipe(p) != 0) {
            throw std::runtime_error(sys::errno_message("pipe (kqueue wake)", errno));
        }
        m_wake_read.reset(p[0]);
        m_wake_write.reset(p[1]);
        for (int fd : p) {
            int fl = ::fcntl(fd, F_GETFL);
            if (fl < 0 || ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 ||
                ::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
                throw std::runtime_error(sys::errno_message("fcntl (kqueue wake pipe)", errno));
            }
        }
        struct kevent ch =
            make_change(static_cast<std::uintptr_t>(p[0]), EVFILT_READ, EV_ADD | EV_CLEAR, 0, 0);
        if (::kevent(m_kq.get(), &ch, 1, nullptr, 0, nullptr) != 0) {
            throw std::runtime_error(sys::errno_message("kevent(wake pipe)", errno));
        }
#endif
    }

    [[nodiscard]] std::string_view name() const noexcept override {
        return "kqueue";
    }

    bool submit(io_op& op) override {
        op.m_state = 0;
        if (op.m_fd < 0) {
            op.m_result = -EBADF;
            return true;
        }
        int r = attempt(op);
        if (r != -EAGAIN && r != -ENOBUFS) {
            op.m_result = r;
            return true;
        }
        entry& e = m_fds.slot_for(op.m_fd);
        const bool writes = is_write_side(op.m_code);
        io_op*& parked = writes ? e.writer : e.reader;
        if (parked != nullptr) {
            op.m_result = -EBUSY; // another op of the same direction is waiting
            return true;
        }
        const std::uint8_t bit = writes ? write_filter : read_filter;
        if ((e.filters & bit) == 0) {
            struct kevent ch =
                make_change(static_cast<std::uintptr_t>(op.m_fd),
                            writes ? EVFILT_WRITE : EVFILT_READ, EV_ADD | EV_CLEAR, 0, e.gen);
            if (::kevent(m_kq.get(), &ch, 1, nullptr, 0, nullptr) != 0) {
                op.m_result = -errno;
                return true;
            }
            if (e.filters == 0) {
                ++m_registered;
            }
            e.filters |= bit;
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

    // Nothing is in the kernel between two tries, so unparking is enough.
    void forget(io_op& op) noexcept override {
        unpark(op);
    }

    void close(int fd) noexcept override {
        if (fd < 0) {
            return;
        }
        if (entry* e = m_fds.find(fd)) {
            m_fds.cancel_parked(*e, m_sink);
            if (e->filters != 0) {
                e->filters = 0;
                --m_registered;
            }
            ++e->gen;
        }
        ::close(fd); // removes the fd's knotes from the kqueue
    }

    void wait(std::chrono::nanoseconds timeout) override {
        timespec ts{};
        timespec* tsp = nullptr;
        if (timeout.count() >= 0) {
            const std::int64_t ns = timeout.count();
            const std::int64_t s = std::min<std::int64_t>(ns / 1'000'000'000, max_wait_seconds);
            ts.tv_sec = static_cast<time_t>(s);
            ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
            tsp = &ts;
        }
        int n = ::kevent(m_kq.get(), nullptr, 0, m_events.data(), static_cast<int>(m_events.size()),
                         tsp);
        if (n < 0) {
            if (errno == EINTR) {
                return;
            }
            throw std::runtime_error(sys::errno_message("kevent", errno));
        }
        for (int i = 0; i < n; ++i) {
            dispatch(m_events[static_cast<std::size_t>(i)]);
        }
    }

    void wake() noexcept override {
#if COIO_KQUEUE_WAKE_USER
        struct kevent ch = make_change(wake_ident, EVFILT_USER, 0, NOTE_TRIGGER, 0);
        ::kevent(m_kq.get(), &ch, 1, nullptr, 0, nullptr);
#else
        // EAGAIN: the pipe is full, so a wake-up is pending already.
        unsigned char b = 1;
        [[maybe_unused]] ssize_t r = ::write(m_wake_write.get(), &b, 1);
#endif
    }

    [[nodiscard]] std::size_t registrations() const noexcept override {
        return m_registered;
    }

    // A buffer came back: a reader starved of buffers tries again (epoll.cpp).
    void release_buffer(std::uint32_t id) noexcept override {
        m_pool.give_back(id);
        m_fds.retry_starved([this](entry& e) { return retry(e.reader); });
    }

    [[nodiscard]] std::size_t buffers_out() const noexcept override {
        return m_pool.out();
    }

private:
    // recv_pooled takes a pool buffer only for the recv itself (a parked
    // reader holds none); every other op is perform().
    int attempt(io_op& op) noexcept {
        return op.m_code == op_code::recv_pooled ? recv_into_pool(op, m_pool, *this) : perform(op);
    }

    struct entry {
        io_op* reader = nullptr;
        io_op* writer = nullptr;
        std::uint32_t gen = 0;
        std::uint8_t filters = 0; // read_filter | write_filter
        bool starved = false;     // in m_fds' starved FIFO: a recv_pooled found the pool empty
    };

    void starve(int fd, entry& e) noexcept {
        m_fds.starve(fd, e, "kqueue");
    }

    bool unpark(io_op& op) noexcept {
        return m_fds.unpark(op);
    }

    void dispatch(const struct kevent& ev) noexcept {
#if COIO_KQUEUE_WAKE_USER
        if (ev.filter == EVFILT_USER) {
            return; // wake(): EV_CLEAR has reset the trigger
        }
#else
        if (ev.ident == static_cast<std::uintptr_t>(m_wake_read.get())) {
            // Drain: with EV_CLEAR a full pipe would swallow later wake-ups.
            unsigned char buf[64];
            while (::read(m_wake_read.get(), buf, sizeof buf) > 0) {
            }
            return;
        }
#endif
        const bool reads = ev.filter == EVFILT_READ;
        if (!reads && ev.filter != EVFILT_WRITE) {
            return;
        }
        entry* found = m_fds.find(static_cast<std::size_t>(ev.ident));
        if (found == nullptr) {
            return;
        }
        entry& e = *found;
        const std::uint8_t bit = reads ? read_filter : write_filter;
        if ((e.filters & bit) == 0 || e.gen != static_cast<std::uint32_t>(from_udata(ev.udata))) {
            return; // stale: the fd was closed since this registration
        }
        // EV_EOF (peer closed, or the socket error in fflags) needs nothing
        // special: the retried syscall returns 0 or the error.
        io_op*& slot = reads ? e.reader : e.writer;
        if (slot != nullptr) {
            retry(slot);
        }
    }

    // Tries a parked op again; completes it unless it must go on waiting.
    int retry(io_op*& slot) noexcept {
        io_op& op = *slot;
        const int r = attempt(op);
        if (r == -EAGAIN) {
            return r;
        }
        if (r == -ENOBUFS) {
            starve(op.m_fd, *m_fds.find(op.m_fd)); // parked there: in the table
            return r;
        }
        slot = nullptr;
        op.m_result = r;
        m_sink.complete(op);
        return r;
    }

    completion_sink& m_sink;
    sys::unique_fd m_kq;
#if !COIO_KQUEUE_WAKE_USER
    sys::unique_fd m_wake_read;
    sys::unique_fd m_wake_write;
#endif
    std::vector<struct kevent> m_events;
    fd_table<entry> m_fds;
    std::size_t m_registered = 0;
    buffer_freelist m_pool;
};

} // namespace

std::unique_ptr<backend> make_kqueue_backend(completion_sink& sink) {
    return std::make_unique<kqueue_backend>(sink);
}

} // namespace coio::detail
