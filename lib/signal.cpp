// lib/signal.cpp - the self-pipe (socket pair) that carries signals to the loop.
#include "sys/fd.hpp"
#include "sys/socket.hpp"

#include <coio/detail/io_awaiter.hpp>
#include <coio/detail/loop_core.hpp>
#include <coio/detail/wait_queue.hpp>
#include <coio/event_loop.hpp>
#include <coio/signal.hpp>

#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <deque>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>

namespace coio {
namespace detail {

struct signal_listener {
    std::vector<int> m_signals;
    std::deque<int> m_caught;
    wait_queue m_waiters;
    std::function<void()> m_callback; // set for add_signal_handler listeners
};

namespace {

// Written by the C handler, read by nobody else: the only state a signal touches.
std::atomic<int> g_signal_write_fd{-1};

extern "C" void coio_on_signal(int signo) {
    int saved = errno;
    int fd = g_signal_write_fd.load(std::memory_order_relaxed);
    if (fd >= 0) {
        auto b = static_cast<unsigned char>(signo);
        // If the socket buffer is full the signal is dropped; thousands are
        // already queued for the same few numbers, so nothing is lost that
        // matters.
        (void)sys::try_send(fd, &b, 1); // send(MSG_DONTWAIT | MSG_NOSIGNAL): signal-safe
    }
    errno = saved;
}

// A read of the self-pipe's reading end through the backend (signals sit
// below the net layer: no socket object). The result is the byte count, 0 at
// EOF or -errno; -ECANCELED once the fd is closed.
class pipe_read : public io_awaiter_base {
public:
    pipe_read(int fd, void* buf, std::size_t len) noexcept {
        m_op.m_code = op_code::recv;
        m_op.m_fd = fd;
        m_op.m_arg.buf = io_buffer{buf, len};
    }
    int await_resume() { return take_result(); }
};

// One per process: the socket pair, the previous dispositions, the listeners.
struct signal_hub {
    event_loop* m_loop = nullptr;
    int m_reader = -1; // registered with m_loop's backend while the pump reads it
    sys::unique_fd m_writer;
    std::map<int, struct sigaction> m_previous;
    std::vector<std::shared_ptr<signal_listener>> m_listeners;
    std::map<int, std::shared_ptr<signal_listener>> m_handlers; // add_signal_handler
};

signal_hub& hub() {
    static signal_hub h;
    return h;
}

void check_signal(int signo) {
    if (signo <= 0 || signo >= NSIG || signo == SIGKILL || signo == SIGSTOP) {
        throw std::invalid_argument("coio: signal " + std::to_string(signo) + " cannot be caught");
    }
}

bool caught_by_anyone(const signal_hub& h, int signo) {
    for (const auto& l : h.m_listeners) {
        for (int s : l->m_signals) {
            if (s == signo) {
                return true;
            }
        }
    }
    return false;
}

// Restore every disposition and forget every listener: the loop that handled
// signals is going away (asyncio's loop.close() removes its handlers too).
void teardown_hub(signal_hub& h) noexcept {
    g_signal_write_fd.store(-1);
    for (auto& [s, old] : h.m_previous) {
        ::sigaction(s, &old, nullptr);
    }
    h.m_previous.clear();
    auto listeners = std::move(h.m_listeners);
    h.m_listeners.clear();
    h.m_handlers.clear();
    if (h.m_reader >= 0) {
        // On the loop's thread this completes the pump's pending read as
        // cancelled before the fd goes.
        if (event_loop* loop = event_loop::current()) {
            core_of(*loop).close_fd(std::exchange(h.m_reader, -1));
        } else {
            sys::close(std::exchange(h.m_reader, -1));
        }
    }
    h.m_writer.reset();
    h.m_loop = nullptr;
    for (const auto& l : listeners) {
        l->m_waiters.notify_all();
    }
}

task<> pump() {
    signal_hub& h = hub();
    struct on_exit {
        signal_hub& h;
        ~on_exit() {
            if (h.m_loop != nullptr) {
                teardown_hub(h);
            }
        }
    } guard{h};
    unsigned char buf[64];
    for (;;) {
        if (h.m_reader < 0) {
            co_return;
        }
        const int n = co_await pipe_read(h.m_reader, buf, sizeof buf);
        if (n <= 0) {
            co_return; // the hub is being torn down
        }
        for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i) {
            int signo = buf[i];
            // Copy: a callback may add or remove listeners.
            auto listeners = h.m_listeners;
            for (const auto& l : listeners) {
                for (int s : l->m_signals) {
                    if (s != signo) {
                        continue;
                    }
                    if (l->m_callback) {
                        h.m_loop->call_soon(l->m_callback);
                    } else {
                        l->m_caught.push_back(signo);
                        l->m_waiters.notify_one();
                    }
                }
            }
        }
    }
}

void start_hub(signal_hub& h) {
    event_loop& loop = event_loop::running();
    if (h.m_loop != nullptr && h.m_loop != &loop) {
        throw std::logic_error("coio: signals are already handled by another event loop");
    }
    if (h.m_loop != nullptr) {
        return;
    }
    int fds[2];
    if (int r = sys::open_stream_socket_pair(fds); r < 0) {
        throw std::runtime_error(sys::errno_message("socketpair (signals)", -r));
    }
    h.m_reader = fds[0];
    h.m_writer.reset(fds[1]);
    g_signal_write_fd.store(fds[1]);
    h.m_loop = &loop;
    // Detached: teardown_hub closes the reader, which ends the pump.
    loop.create_task(pump(), "signal pump");
}

void stop_hub_if_unused(signal_hub& h) noexcept {
    if (!h.m_listeners.empty() || h.m_loop == nullptr) {
        return;
    }
    teardown_hub(h); // closing the reader ends the pump's pending read
}

void add_listener(const std::shared_ptr<signal_listener>& l) {
    signal_hub& h = hub();
    for (int s : l->m_signals) {
        check_signal(s);
    }
    start_hub(h);
    for (int s : l->m_signals) {
        if (!caught_by_anyone(h, s)) {
            struct sigaction sa {};
            sa.sa_handler = &coio_on_signal;
            sigemptyset(&sa.sa_mask);
            sa.sa_flags = SA_RESTART;
            struct sigaction old {};
            if (::sigaction(s, &sa, &old) != 0) {
                throw std::runtime_error(sys::errno_message("sigaction", errno));
            }
            h.m_previous[s] = old;
        }
    }
    h.m_listeners.push_back(l);
}

void remove_listener(const std::shared_ptr<signal_listener>& l) noexcept {
    signal_hub& h = hub();
    std::erase(h.m_listeners, l);
    for (int s : l->m_signals) {
        if (!caught_by_anyone(h, s)) {
            auto it = h.m_previous.find(s);
            if (it != h.m_previous.end()) {
                ::sigaction(s, &it->second, nullptr);
                h.m_previous.erase(it);
            }
        }
    }
    l->m_waiters.notify_all();
    stop_hub_if_unused(h);
}

task<int> wait_for_signal(std::shared_ptr<signal_listener> l) {
    while (l->m_caught.empty()) {
        co_await l->m_waiters.wait();
        if (l->m_caught.empty() && !hub().m_loop) {
            throw std::logic_error("coio::signal_set: destroyed while waiting");
        }
    }
    int s = l->m_caught.front();
    l->m_caught.pop_front();
    co_return s;
}

} // namespace
} // namespace detail

signal_set::signal_set(std::initializer_list<int> signals)
    : m_listener(std::make_shared<detail::signal_listener>()) {
    m_listener->m_signals.assign(signals.begin(), signals.end());
    detail::add_listener(m_listener);
}

signal_set::signal_set(signal_set&&) noexcept = default;
signal_set& signal_set::operator=(signal_set&& o) noexcept {
    if (this != &o) {
        if (m_listener) {
            detail::remove_listener(m_listener);
        }
        m_listener = std::move(o.m_listener);
    }
    return *this;
}

signal_set::~signal_set() {
    if (m_listener) {
        detail::remove_listener(m_listener);
    }
}

task<int> signal_set::wait() {
    if (!m_listener) {
        throw std::logic_error("coio::signal_set: moved-from");
    }
    return detail::wait_for_signal(m_listener);
}

std::size_t signal_set::pending() const noexcept {
    return m_listener ? m_listener->m_caught.size() : 0;
}

void add_signal_handler(int signo, std::function<void()> callback) {
    remove_signal_handler(signo);
    auto l = std::make_shared<detail::signal_listener>();
    l->m_signals = {signo};
    l->m_callback = std::move(callback);
    detail::add_listener(l);
    detail::hub().m_handlers[signo] = l;
}

bool remove_signal_handler(int signo) {
    auto& handlers = detail::hub().m_handlers;
    auto it = handlers.find(signo);
    if (it == handlers.end()) {
        return false;
    }
    auto l = it->second;
    handlers.erase(it);
    detail::remove_listener(l);
    return true;
}

} // namespace coio
