// lib/backend/epoll.cpp - the Linux readiness poller. The backend's discipline
// (park, retry, cancel, close, readiness bits, pooled reads) is in
// readiness.hpp; this file only wraps epoll's syscalls.
//
// An fd is registered once, edge-triggered, for both directions
// (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET): one epoll_ctl per socket for its
// whole life. epoll_event.data.u64 packs the fd with its generation, which the
// backend bumps when the fd is closed: an event for an fd number that was
// closed and reused (the old registration can outlive close() when a forked
// child shares the socket) carries the old generation and is dropped.
//
// Timeouts go to epoll_pwait2 in nanoseconds, so a 100 us timer is neither
// rounded to 1 ms nor (as mio warns) truncated to 0 and a busy loop. Kernels
// before 5.11 have no epoll_pwait2 (ENOSYS): epoll_wait then gets the timeout
// rounded *up* to whole milliseconds.
#include "backend/readiness.hpp"
#include "sys/fd.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <stdexcept>
#include <vector>

namespace coio::detail {
namespace {

constexpr std::uint64_t wake_tag = ~std::uint64_t{0};

std::uint64_t pack(int fd, std::uint32_t gen) noexcept {
    return (std::uint64_t{gen} << 32) | static_cast<std::uint32_t>(fd);
}

class epoll_poller {
public:
    static constexpr const char* name = "epoll";

    epoll_poller() : m_events(1024) {
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

    // Both directions at once: `watched` becomes non-zero on the first call.
    int watch(int fd, std::uint32_t gen, bool /*write*/, std::uint8_t& watched) noexcept {
        if (watched != 0) {
            return 0;
        }
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
        ev.data.u64 = pack(fd, gen);
        if (::epoll_ctl(m_ep.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
            return -errno;
        }
        watched = 1;
        return 0;
    }

    template <class F>
    void wait(std::chrono::nanoseconds timeout, F on_event) {
        const int n = poll(timeout);
        if (n < 0) {
            if (errno == EINTR) {
                return;
            }
            throw std::runtime_error(sys::errno_message("epoll_wait", errno));
        }
        constexpr std::uint32_t errs = EPOLLHUP | EPOLLERR;
        for (int i = 0; i < n; ++i) {
            const epoll_event& ev = m_events[static_cast<std::size_t>(i)];
            if (ev.data.u64 == wake_tag) {
                std::uint64_t v = 0;
                [[maybe_unused]] ssize_t r = ::read(m_wake.get(), &v, sizeof v);
                continue;
            }
            const std::uint32_t e = ev.events;
            on_event(static_cast<int>(ev.data.u64 & 0xffffffffU),
                     static_cast<std::uint32_t>(ev.data.u64 >> 32),
                     readiness_event{(e & (EPOLLIN | EPOLLRDHUP | errs)) != 0,
                                     (e & (EPOLLOUT | errs)) != 0, (e & (EPOLLRDHUP | errs)) != 0});
        }
    }

    void wake() noexcept {
        const std::uint64_t one = 1;
        [[maybe_unused]] ssize_t r = ::write(m_wake.get(), &one, sizeof one);
    }

private:
    int poll(std::chrono::nanoseconds timeout) noexcept {
        const int max = static_cast<int>(m_events.size());
        if (timeout.count() < 0) {
            return ::epoll_wait(m_ep.get(), m_events.data(), max, -1);
        }
        if (m_have_pwait2) {
            timespec ts{};
            ts.tv_sec = static_cast<time_t>(timeout.count() / 1'000'000'000);
            ts.tv_nsec = static_cast<long>(timeout.count() % 1'000'000'000);
            const int n = ::epoll_pwait2(m_ep.get(), m_events.data(), max, &ts, nullptr);
            if (n >= 0 || errno != ENOSYS) {
                return n;
            }
            m_have_pwait2 = false; // Linux < 5.11
        }
        const auto ms = (timeout.count() + 999'999) / 1'000'000; // round up
        return ::epoll_wait(m_ep.get(), m_events.data(), max,
                            static_cast<int>(std::min<long long>(ms, INT_MAX)));
    }

    sys::unique_fd m_ep;
    sys::unique_fd m_wake;
    std::vector<epoll_event> m_events;
    bool m_have_pwait2 = true;
};

} // namespace

std::unique_ptr<backend> make_epoll_backend(completion_sink& sink) {
    return std::make_unique<readiness_backend<epoll_poller>>(sink);
}

} // namespace coio::detail
