// lib/backend/kqueue.cpp - the readiness poller for macOS and the BSDs. The
// backend's discipline (park, retry, cancel, close, readiness bits, pooled
// reads) is in readiness.hpp; this file only wraps kqueue's syscalls.
//
// Each direction's filter is registered when an op of that direction first
// parks on the fd - once per fd lifetime - with EV_CLEAR (edge-style), not
// EV_ONESHOT/EV_DISPATCH with a re-arm per wait:
//  - a socket costs at most two kevent() registrations for its whole life,
//    where one-shot would need a change per wait;
//  - it is race-free for the same reason as edge-triggered epoll: EV_ADD
//    evaluates the filter at once, so data that arrived before the
//    registration is reported, and later data raises a new event;
//  - a read-mostly socket never gets the write filter, which with EV_CLEAR
//    would fire on every ACK that frees buffer space.
// EV_EOF (the peer closed, or the socket error in fflags) is reported as a
// hang-up, so the backend's readiness bits treat it as epoll's EPOLLRDHUP.
//
// Stale events: kevent.ident is the fd and kevent.udata carries the fd's
// generation, which the backend bumps on close. An event fetched for an fd
// that was closed and reused since (within one kevent() batch) carries the
// old generation and is dropped. (The kernel itself drops the knotes of a
// closed fd.) Only the generation goes in udata, so it fits a 32-bit pointer.
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
#include "backend/readiness.hpp"
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

// Bits of the backend entry's `watched`: which filters are registered.
constexpr std::uint8_t read_filter = 1;
constexpr std::uint8_t write_filter = 2;

#if COIO_KQUEUE_WAKE_USER
constexpr std::uintptr_t wake_ident = 0; // EVFILT_USER idents are not fds
#endif

// kevent() rejects or overflows on huge timeouts on some systems; waking up
// spuriously after three years is harmless (the loop just waits again).
constexpr std::int64_t max_wait_seconds = 100'000'000;

class kqueue_poller {
public:
    static constexpr const char* name = "kqueue";

    kqueue_poller() : m_events(1024) {
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

    // One filter per direction, added when that direction first parks.
    int watch(int fd, std::uint32_t gen, bool write, std::uint8_t& watched) noexcept {
        const std::uint8_t bit = write ? write_filter : read_filter;
        if ((watched & bit) != 0) {
            return 0;
        }
        struct kevent ch =
            make_change(static_cast<std::uintptr_t>(fd), write ? EVFILT_WRITE : EVFILT_READ,
                        EV_ADD | EV_CLEAR, 0, gen);
        if (::kevent(m_kq.get(), &ch, 1, nullptr, 0, nullptr) != 0) {
            return -errno;
        }
        watched |= bit;
        return 0;
    }

    template <class F>
    void wait(std::chrono::nanoseconds timeout, F on_event) {
        timespec ts{};
        timespec* tsp = nullptr;
        if (timeout.count() >= 0) {
            const std::int64_t ns = timeout.count();
            const std::int64_t s = std::min<std::int64_t>(ns / 1'000'000'000, max_wait_seconds);
            ts.tv_sec = static_cast<time_t>(s);
            ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
            tsp = &ts;
        }
        const int n = ::kevent(m_kq.get(), nullptr, 0, m_events.data(),
                               static_cast<int>(m_events.size()), tsp);
        if (n < 0) {
            if (errno == EINTR) {
                return;
            }
            throw std::runtime_error(sys::errno_message("kevent", errno));
        }
        for (int i = 0; i < n; ++i) {
            const struct kevent& ev = m_events[static_cast<std::size_t>(i)];
            if (is_wake(ev)) {
                continue;
            }
            const bool reads = ev.filter == EVFILT_READ;
            if (!reads && ev.filter != EVFILT_WRITE) {
                continue;
            }
            const bool eof = (ev.flags & EV_EOF) != 0;
            on_event(static_cast<int>(ev.ident), static_cast<std::uint32_t>(from_udata(ev.udata)),
                     readiness_event{reads, !reads, eof});
        }
    }

    void wake() noexcept {
#if COIO_KQUEUE_WAKE_USER
        struct kevent ch = make_change(wake_ident, EVFILT_USER, 0, NOTE_TRIGGER, 0);
        ::kevent(m_kq.get(), &ch, 1, nullptr, 0, nullptr);
#else
        // EAGAIN: the pipe is full, so a wake-up is pending already.
        unsigned char b = 1;
        [[maybe_unused]] ssize_t r = ::write(m_wake_write.get(), &b, 1);
#endif
    }

private:
    bool is_wake(const struct kevent& ev) noexcept {
#if COIO_KQUEUE_WAKE_USER
        return ev.filter == EVFILT_USER; // EV_CLEAR has reset the trigger
#else
        if (ev.ident != static_cast<std::uintptr_t>(m_wake_read.get())) {
            return false;
        }
        // Drain: with EV_CLEAR a full pipe would swallow later wake-ups.
        unsigned char buf[64];
        while (::read(m_wake_read.get(), buf, sizeof buf) > 0) {
        }
        return true;
#endif
    }

    sys::unique_fd m_kq;
#if !COIO_KQUEUE_WAKE_USER
    sys::unique_fd m_wake_read;
    sys::unique_fd m_wake_write;
#endif
    std::vector<struct kevent> m_events;
};

} // namespace

std::unique_ptr<backend> make_kqueue_backend(completion_sink& sink) {
    return std::make_unique<readiness_backend<kqueue_poller>>(sink);
}

} // namespace coio::detail
