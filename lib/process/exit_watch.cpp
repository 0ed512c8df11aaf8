// lib/process/exit_watch.cpp - the loop's task that waits for a child's exit
// and reaps it: through the backend on its exit watch (a pidfd on Linux, a
// kqueue with EVFILT_PROC elsewhere; op_code::wait_readable), or, where
// neither can be had (Linux < 5.3, a seccomp filter), by trying waitpid with
// a backoff of 1 ms doubling to 100 ms.
#include "net/socket_ops.hpp"
#include "process/process_state.hpp"
#include "sys/fd.hpp"
#include "sys/process.hpp"

#include <coio/cancel.hpp>
#include <coio/detail/io_awaiter.hpp>
#include <coio/event_loop.hpp>
#include <coio/sleep.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <exception>
#include <string>
#include <system_error>
#include <utility>

namespace coio::detail {

namespace {

// Suspends until `fd` is readable (op_code::wait_readable).
class readable_awaiter : public io_awaiter_base {
public:
    explicit readable_awaiter(int fd) noexcept {
        m_op.m_code = op_code::wait_readable;
        m_op.m_fd = fd;
    }
    int await_resume() { return take_result(); }
};

exit_status to_exit_status(const sys::child_status& c) noexcept {
    exit_status s;
    if (c.exited) {
        s.code = c.value;
    } else {
        s.signal = c.value;
    }
    return s;
}

std::string name_of(const process_state& st) {
    return "process " + std::to_string(st.pid) + " ('" + st.program + "')";
}

void report(const process_state& st, const std::string& what, std::exception_ptr e) {
    const std::string msg = name_of(st) + ": " + what;
    event_loop::running().call_exception_handler({msg, {}, std::move(e)});
}

// Records the status and wakes wait(); closes the watch.
void finish(process_state& st, exit_status s) {
    st.status = s;
    if (st.watch >= 0) {
        close_socket_fd(std::exchange(st.watch, -1)); // the backend may track it
    }
    st.exited.set();
}

// One try: true once reaped (or unreapable, which is reported).
bool reaped(process_state& st) {
    sys::child_status c;
    const int r = sys::try_reap(st.pid, st.watch, &c);
    if (r == 0) {
        return false;
    }
    if (r < 0) {
        // ECHILD: someone else reaped it (waitpid(-1), SIGCHLD ignored).
        const std::error_code ec(-r, std::system_category());
        report(st, "cannot be reaped (" + ec.message() + "); its status is lost",
               std::make_exception_ptr(std::system_error(ec, "waitid")));
        finish(st, exit_status{255, 0});
        return true;
    }
    finish(st, to_exit_status(c));
    return true;
}

task<> poll_until_reaped(std::shared_ptr<process_state> st) {
    auto backoff = std::chrono::milliseconds(1);
    while (!reaped(*st)) {
        co_await sleep(backoff);
        backoff = std::min(backoff * 2, std::chrono::milliseconds(100));
    }
}

} // namespace

task<> watch_exit(std::shared_ptr<process_state> st) {
    bool cancelled = false;
    try {
        while (st->watch >= 0 && !reaped(*st)) {
            const int r = co_await readable_awaiter(st->watch);
            if (r < 0) {
                // The backend cannot watch this fd: fall back to polling.
                close_socket_fd(std::exchange(st->watch, -1));
            }
        }
        if (!st->status) {
            co_await poll_until_reaped(st);
        }
    } catch (const cancelled_error&) {
        cancelled = true; // the loop is ending
    }
    if (cancelled && !reaped(*st)) {
        report(*st,
               "still running when its event loop ended; it was left running and will not be "
               "reaped by this loop",
               {});
        if (st->watch >= 0) {
            close_socket_fd(std::exchange(st->watch, -1));
        }
        throw cancelled_error{};
    }
}

} // namespace coio::detail
