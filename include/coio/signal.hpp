// coio/signal.hpp - Unix signals delivered to the event loop.
//
//   coio::signal_set stop{SIGINT, SIGTERM};
//   int sig = co_await stop.wait();       // e.g. shut a server down gracefully
//
//   coio::add_signal_handler(SIGHUP, [] { reload(); });   // asyncio's form
//
// How: while any signal_set or handler is registered, coio installs a C
// signal handler that writes the signal number to a socket pair (as asyncio's
// set_wakeup_fd does); a task on the loop reads it and wakes waiters / runs
// handlers on the loop thread. This works whatever thread the kernel picks,
// needs nothing from the backend beyond a socket read, and runs no user code
// in signal context. All registrations must be made on the same loop, from its
// thread; when the last one goes, the previous dispositions are restored.
#pragma once

#include <coio/task.hpp>

#include <functional>
#include <initializer_list>
#include <memory>
#include <vector>

namespace coio {

namespace detail {
struct signal_listener;
}

class signal_set {
public:
    // Start catching `signals`. Throws std::invalid_argument for SIGKILL,
    // SIGSTOP or a number out of range, std::logic_error if no loop runs here or
    // signals are already handled by another loop.
    signal_set(std::initializer_list<int> signals);
    signal_set(signal_set&&) noexcept;
    signal_set& operator=(signal_set&&) noexcept;
    signal_set(const signal_set&) = delete;
    signal_set& operator=(const signal_set&) = delete;
    // Stop catching; restores the previous disposition of signals nobody else catches.
    ~signal_set();

    // The next signal caught (in arrival order; a signal that arrives while
    // nobody waits is kept). A cancellation point.
    [[nodiscard]] task<int> wait();
    // Signals caught and not yet returned by wait().
    [[nodiscard]] std::size_t pending() const noexcept;

private:
    std::shared_ptr<detail::signal_listener> m_listener;
};

// asyncio's loop.add_signal_handler: run `callback` on the loop thread each time
// `signo` arrives, replacing a handler added before for it. Throws as signal_set.
void add_signal_handler(int signo, std::function<void()> callback);
// Returns false if no handler was added for `signo`.
bool remove_signal_handler(int signo);

} // namespace coio
