// coio/event_loop.hpp - the single-threaded scheduler, and coio::run.
//
// One loop per thread. It owns a ready queue of coroutine handles, a timer heap
// and one backend (epoll, io_uring or kqueue: see backend_name()). An
// iteration waits for I/O completions or the next timer, fires due timers, then
// resumes every handle that was ready at the start of the phase. docs/design.md
// numbers the phases.
//
// Lifetime rules:
//  - create_task starts a task on the next iteration; the loop owns its frame
//    until it finishes, whatever happens to the returned handle.
//  - run()/run_until_complete() return only when nothing is left: the main task
//    has finished, every other task has finished (the remaining ones are
//    cancelled first, as asyncio.run does), and no timer, I/O operation or
//    backend registration is outstanding.
#pragma once

#include <coio/detail/io_op.hpp>
#include <coio/detail/loop_clock.hpp>
#include <coio/detail/loop_core.hpp>
#include <coio/detail/root.hpp>
#include <coio/detail/timer.hpp>
#include <coio/detail/timer_callback.hpp>
#include <coio/task.hpp>
#include <coio/task_handle.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace coio {

class event_loop;

namespace detail {
class backend;
struct loop_impl;
class loop_core;
loop_core& core_of(event_loop& loop) noexcept;
} // namespace detail

// What the exception handler is told about an exception nobody retrieved.
struct exception_context {
    std::string_view message;   // one line: what failed, where
    std::string_view task_name; // empty for a call_soon callback
    std::exception_ptr exception;
};

// What is outstanding in a loop; all zero after run() returns (except the
// counters at the end).
struct loop_stats {
    std::size_t tasks = 0;         // tasks created and not finished
    std::size_t task_frames = 0;   // root frames alive (finished ones held by handles count)
    std::size_t ready = 0;         // handles in the ready queue
    std::size_t timers = 0;        // pending timers
    std::size_t io_in_flight = 0;  // operations submitted and not completed
    std::size_t registrations = 0; // fds the backend is tracking
    std::size_t buffers_out = 0;   // pool buffers lent (buffer_lease) or queued for a socket
    std::size_t buffer_bytes = 0;  // read buffers kept for reuse (mapped, or provided to io_uring)
    std::uint64_t iterations = 0;  // loop iterations so far
    // Times call_soon_threadsafe (and so every hand-off from another thread
    // or loop) had to wake this loop from its sleep: a loop that is running,
    // spinning (set_busy_poll) or already woken is not woken again.
    std::uint64_t wakeups = 0;
    std::uint64_t ring_wakeups = 0; // of those, by IORING_OP_MSG_RING from another io_uring loop
};

class event_loop {
public:
    using clock = std::chrono::steady_clock;

    // Picks the backend from COIO_BACKEND (epoll, io_uring, kqueue, auto; unset
    // means auto). Throws std::runtime_error naming the backend if the one asked
    // for is not built in or does not work here.
    event_loop();
    explicit event_loop(std::string_view backend);
    ~event_loop();
    event_loop(const event_loop&) = delete;
    event_loop& operator=(const event_loop&) = delete;

    // The loop running on this thread, or null.
    static event_loop* current() noexcept;
    // The loop running on this thread; throws std::logic_error if none.
    static event_loop& running();

    [[nodiscard]] std::string_view backend_name() const noexcept;
    [[nodiscard]] loop_stats stats() const noexcept;

    // Schedule `t` to start on the next iteration (asyncio.create_task). The
    // name appears in exception reports; empty gives "task-<id>".
    template <class T>
    task_handle<T> create_task(task<T> t, std::string name = {}) {
        auto root = detail::make_root(std::move(t));
        start_root(root.m_h.promise(), std::move(name));
        return task_handle<T>(root.m_h);
    }

    // Run `f` on a later iteration, in FIFO order with other callbacks.
    // Exceptions it throws go to the exception handler.
    void call_soon(std::function<void()> f);
    // Same, from any thread; wakes the loop.
    void call_soon_threadsafe(std::function<void()> f);

    // Run `f()` once, `delay` from now (asyncio loop.call_later) or at `when`
    // (loop.call_at), in the callback phase of the iteration whose timers
    // include it. `f` is moved into the call, which owns it until it has run
    // or was cancelled. Exceptions it throws go to the exception handler.
    // The returned handle cancels it; dropping it does not. Calls whose time
    // has not come when run_until_complete finishes are dropped (and report
    // cancelled()). Loop thread only. coio/call_later.hpp has the same for
    // the running loop, and interval.
    template <class Rep, class Period, class F>
    timer_handle call_later(std::chrono::duration<Rep, Period> delay, F f) {
        return detail::schedule_callback(m_core, detail::deadline_after(delay), std::move(f));
    }
    template <class F>
    timer_handle call_at(clock::time_point when, F f) {
        return detail::schedule_callback(m_core, when, std::move(f));
    }

    // Asks the run in progress to end (asyncio's loop.stop, or the Ctrl-C of
    // asyncio.run): the main task is cancelled, and with it - as when main
    // returns - everything else; run_until_complete then throws
    // cancelled_error, unless main caught the cancellation and returned.
    // Any number of calls, from tasks or callbacks; loop thread only (from
    // another thread: call_soon_threadsafe([&loop] { loop.stop(); })).
    // Without a run in progress it does nothing.
    void stop() noexcept;

    // Run the loop until `main` finishes, then cancel what is left and run
    // until everything has finished. Returns main's value or rethrows its
    // exception. Throws std::logic_error if main waits for something that
    // nothing left in the loop can ever complete.
    template <class T>
    T run_until_complete(task<T> main) {
        // Refuse before scheduling anything: a refused run must not leave
        // `main` queued to start later (e.g. while this loop is torn down).
        if (current() != nullptr) {
            throw std::logic_error("coio: run_until_complete called while a loop is already "
                                   "running on this thread (await the task instead)");
        }
        auto root = detail::make_root(std::move(main));
        start_root(root.m_h.promise(), "main");
        task_handle<T> h(root.m_h);
        drive(root.m_h.promise());
        // Move the value out rather than copy it (h.result() copies), so that
        // a move-only T works; nobody else can hold a handle to main.
        detail::root_promise<T>& p = root.m_h.promise();
        p.m_retrieved = true;
        if (p.m_exception) {
            std::rethrow_exception(p.m_exception);
        }
        return std::move(p.m_value).value();
    }

    // Replace the handler for exceptions nobody retrieved. The default prints
    // one line to stderr naming the task. The handler must not throw.
    void set_exception_handler(std::function<void(const exception_context&)> handler);
    void call_exception_handler(const exception_context& ctx) noexcept;

    // Debug mode (asyncio's loop.set_debug, PYTHONASYNCIODEBUG): on if the
    // environment has COIO_DEBUG set (to anything but "" or "0") when the
    // loop is made, or after set_debug(true). The loop then reports through
    // the exception handler (with no exception attached): every callback and
    // every task step (one resume from the ready queue) that holds the loop
    // for slow_callback_duration() or longer (100 ms unless set), with the
    // task's id, name and innermost coroutine where it can tell; and every
    // task<T> destroyed without ever having been awaited - also one whose
    // await was cancelled before it could start it (gather, wait_for, race).
    // Off, it costs a predictable branch per step.
    void set_debug(bool on) noexcept;
    [[nodiscard]] bool debug() const noexcept;
    void set_slow_callback_duration(std::chrono::nanoseconds d) noexcept;
    [[nodiscard]] std::chrono::nanoseconds slow_callback_duration() const noexcept;

    // Paused time (Tokio's time::pause; for tests of time-based code). The
    // loop's clock - coio::now() (detail/loop_clock.hpp), which every coio
    // sleep, timer, timeout, interval, call_later and stream or server
    // timeout reads - stops. When the loop then has nothing to run and no
    // job of its own runs on another thread (to_thread), it jumps to the
    // next timer's deadline instead of waiting for it; a task parked on a
    // channel, a spawn or a future does not hold the clock (as with Tokio).
    // Time-based code thus runs in no real time, and timers fire in deadline
    // order (equal deadlines in the order they were set). I/O is still
    // polled, without waiting, before each jump: a peer in another process
    // that has not answered yet is not waited for, so its timeout fires. A
    // timer at time_point::max() ("never") is never jumped to.
    // resume_time() lets the clock run again from the paused reading;
    // advance_time(d) moves it forward by d, paused or not (timers that
    // became due fire on the next iteration). std::chrono::steady_clock
    // itself is not affected: deadlines must come from coio::now() (or the
    // duration forms, sleep(d), wait_for(x, d), ...). Loop thread only.
    void pause_time() noexcept;
    void resume_time() noexcept;
    void advance_time(std::chrono::nanoseconds d) noexcept;
    [[nodiscard]] bool time_paused() const noexcept;

    // Busy poll (Seastar's reactor polls always; Linux's SO_BUSY_POLL does
    // the same for one socket): when the loop has nothing to run, it first
    // spins for up to `d` - polling I/O without waiting and watching the queue
    // of work from other threads and loops - and sleeps only if nothing came.
    // Work handed to a spinning loop is picked up within one poll, without a
    // wake-up through the kernel: it trades the core's idle time for the
    // latency of hand-offs between loops (bench/loop_handoff.cpp). Timers are
    // not delayed by it. 0 (the default) sleeps at once. Loop thread only;
    // run_loops_options::busy_poll sets it on every loop.
    void set_busy_poll(std::chrono::nanoseconds d) noexcept;
    [[nodiscard]] std::chrono::nanoseconds busy_poll() const noexcept;

    // Seeded order (RELIABILITY 37; for tests): with a seed other than 0,
    // the handles and I/O completions ready when an iteration's run phase
    // begins run in an order drawn from the seed instead of FIFO - the same
    // order for the same seed and the same events. Code that is correct only
    // for one interleaving of tasks that became ready together fails under
    // some seed. Timers still fire in deadline order and callbacks
    // (call_soon) still run FIFO; what the tasks they wake do next is
    // shuffled. The COIO_SHUFFLE_SEED environment variable (a number) sets
    // it for every loop made after. Loop thread only.
    void set_shuffle_seed(std::uint64_t seed) noexcept;
    [[nodiscard]] std::uint64_t shuffle_seed() const noexcept;

    // Called by root_finished / root_release (detail).
    void on_root_finished(detail::root_base& r) noexcept;
    void on_root_released(detail::root_base& r) noexcept;

private:
    friend detail::loop_core& detail::core_of(event_loop& loop) noexcept;

    void start_root(detail::root_base& r, std::string name);
    void drive(detail::root_base& main);
    bool run_once(const detail::root_base* main);

    detail::loop_core m_core; // the handle awaiters use (detail/loop_core.hpp)
    std::unique_ptr<detail::loop_impl> m_impl;
};

namespace detail {
// The handle of `loop`, for awaitables and this library's internals.
inline loop_core& core_of(event_loop& loop) noexcept {
    return loop.m_core;
}
} // namespace detail

// asyncio.run: make a loop, run `main` to completion on it, tear it down.
template <class T>
T run(task<T> main) {
    event_loop loop;
    return loop.run_until_complete(std::move(main));
}

// asyncio.create_task on the running loop.
template <class T>
task_handle<T> create_task(task<T> t, std::string name = {}) {
    return event_loop::running().create_task(std::move(t), std::move(name));
}

// The backend the running loop uses, or the one a new loop would pick here.
std::string backend_name();
// Backends built into this library that can run on this machine now.
std::vector<std::string> available_backends();

} // namespace coio
