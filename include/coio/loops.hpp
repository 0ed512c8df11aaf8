// coio/loops.hpp - every core: N loops, one per thread, and work handed
// between them (docs/multicore.md).
//
//   coio::run_loops(0, [](std::size_t i) -> coio::task<> { ... });   // one loop per core
//
//   coio::task<int> on_other(coio::loop_ref there) {
//       int v = co_await there.spawn(compute());       // runs on `there`, resumes here
//       co_return v;
//   }
//
// Shared nothing: each loop has its own thread, backend (its own epoll or
// io_uring instance), timers, buffer pool and frame cache; a task, socket or
// server belongs to the loop that made it and is used on that loop only.
// What crosses loops is explicit: spawn/submit_to (a task or a call run on
// another loop), channel (channel.hpp, any loop to any loop) and
// run_coroutine_threadsafe (threadsafe.hpp). A hand-off wakes the target loop
// through its backend's eventfd (call_soon_threadsafe).
//
// run_loops(n, main, opts): n loops (0: as many as the CPUs this process may
// run on, sched_getaffinity), loop 0 on the calling thread and the others on
// threads of their own, each with the backend a new event_loop picks
// (COIO_BACKEND). main(i) is called on the calling thread, once per loop,
// before any loop starts (it only makes the lazy task<>; so main need not be
// thread-safe), and the task runs as loop i's main task. opts.pin binds loop
// i's thread to the i-th allowed CPU (modulo their number).
// Returns when every main task has finished and every loop has ended as
// run() ends (nothing left: no task, timer, I/O). While any main task runs,
// every loop keeps serving work handed to it, also one whose own main task
// has finished. If a main task throws, the others are cancelled (task_group
// semantics across loops) and, once all have finished, run_loops throws
// loop_error naming the first loop that failed and carrying its exception;
// main tasks ending with cancelled_error because of it are not reported. An
// exception from main(i) itself (the call) is thrown before any loop starts.
// n = 1 runs loop 0 on the calling thread only, as run() would (errors still
// come as loop_error, so code does not change with the number of cores).
// Must not be called on a thread that runs a loop (std::logic_error).
#pragma once

#include <coio/detail/callable_arg.hpp>
#include <coio/detail/linked_future.hpp>
#include <coio/event_loop.hpp>
#include <coio/task.hpp>
#include <coio/threadsafe.hpp>

#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

namespace coio {

namespace detail {
class loop_group;
}

// The CPUs this process may run on (sched_getaffinity); at least 1.
std::size_t available_cores();

struct run_loops_options {
    bool pin = false; // bind loop i's thread to one CPU (see above)
    // event_loop::set_busy_poll on every loop: an idle loop spins this long
    // before it sleeps, so that hand-offs between loops do not wait for a
    // wake-up through the kernel. Costs the idle cores' time; 0: never spin.
    std::chrono::nanoseconds busy_poll{0};
};

// What run_loops throws when a loop's main task failed.
class loop_error : public std::runtime_error {
public:
    loop_error(std::size_t index, std::exception_ptr cause, const std::string& what)
        : std::runtime_error(what), m_index(index), m_cause(std::move(cause)) {}
    // The failing loop's index (main's argument).
    [[nodiscard]] std::size_t index() const noexcept { return m_index; }
    // The exception its main task ended with.
    [[nodiscard]] std::exception_ptr cause() const noexcept { return m_cause; }
    [[noreturn]] void rethrow_cause() const { std::rethrow_exception(m_cause); }

private:
    std::size_t m_index;
    std::exception_ptr m_cause;
};

// A loop that other loops can hand work to: a copyable pointer. From
// run_loops (loop_ref::running(), loop_ref::all()) or wrapping any
// event_loop. The loop must exist while work is handed to it: run_loops
// keeps its loops until all have ended, and refuses hand-offs to them after
// that (see spawn); for a loop wrapped by hand that is the caller's job.
class loop_ref {
public:
    loop_ref() noexcept = default;
    explicit loop_ref(event_loop& loop) noexcept : m_loop(&loop) {}

    // The loop running on this thread (with its run_loops index); throws
    // std::logic_error if none.
    static loop_ref running();
    // Every loop of the running run_loops, by index; just running() on a
    // loop not started by run_loops.
    static std::vector<loop_ref> all();

    [[nodiscard]] bool valid() const noexcept { return m_loop != nullptr; }
    [[nodiscard]] event_loop& loop() const;
    // Its index in run_loops (main's argument); 0 for a loop outside run_loops.
    [[nodiscard]] std::size_t index() const noexcept { return m_index; }
    // The loop runs on the calling thread.
    [[nodiscard]] bool is_current() const noexcept { return event_loop::current() == m_loop; }

    friend bool operator==(const loop_ref& a, const loop_ref& b) noexcept {
        return a.m_loop == b.m_loop;
    }

    // Run `t` on this loop as one of its tasks; the awaiting task suspends
    // and resumes on its own loop with t's value or exception. Cancelling the
    // awaiting task cancels `t` (on its loop) and still waits for it to
    // finish, as awaiting a task does: it then throws cancelled_error, or
    // returns the value if `t` finished anyway. Lazy like task<>: `t` is
    // handed over when the returned task is awaited. Throws std::runtime_error
    // if this is a run_loops loop and the loops have ended (the hand-off came
    // from a task still unwinding), std::bad_alloc. Awaiting from the target
    // loop itself works (a round trip through its queue).
    template <class T>
    task<T> spawn(task<T> t) const {
        return spawn_impl(*this, std::move(t));
    }

private:
    friend class detail::loop_group;
    loop_ref(event_loop& loop, detail::loop_group* group, std::size_t index) noexcept
        : m_loop(&loop), m_group(group), m_index(index) {}

    // Queue `job` on the loop, refused once a run_loops group has closed.
    void post(std::function<void()> job) const;

    template <class T>
    static task<T> spawn_impl(loop_ref to, task<T> t) {
        auto st = std::make_shared<detail::future_state<T>>(to.loop(), std::move(t));
        to.post(detail::start_job<T>(st));
        co_return co_await detail::linked_awaiter<T>(std::move(st));
    }

    event_loop* m_loop = nullptr;
    detail::loop_group* m_group = nullptr;
    std::size_t m_index = 0;
};

namespace detail {

template <class F>
using submit_result_t = std::invoke_result_t<F&>;
template <class R>
struct task_value {
    using type = R;
};
template <class T>
struct task_value<task<T>> {
    using type = T;
};

// The task spawn hands over for submit_to: calls `f` on the target loop.
template <class F>
task<> call_there_void(F f) {
    f();
    co_return;
}
template <class F>
auto call_there_task(F f) -> task<typename task_value<submit_result_t<F>>::type> {
    co_return co_await f(); // f returned a task: awaited there
}
template <class F>
auto call_there_value(F f) -> task<submit_result_t<F>> {
    co_return f();
}
template <class F>
auto make_call(F f) {
    using R = submit_result_t<F>;
    if constexpr (std::is_void_v<R>) {
        return call_there_void(std::move(f));
    } else if constexpr (std::is_same_v<typename task_value<R>::type, R>) {
        return call_there_value(std::move(f));
    } else {
        return call_there_task(std::move(f));
    }
}

} // namespace detail

// Call `f()` on `target`'s thread and resume here with its outcome: f
// returns a value (or void), or a task<T> that is awaited there. Same rules
// as loop_ref::spawn (cancellation, errors). `f` is taken before any
// coroutine starts (detail/callable_arg.hpp) and lives on the target loop
// until the call ends: pass a function, a name (copied) or
// coio::moved(std::move(name)).
template <class F>
auto submit_to(loop_ref target, F&& f) {
    detail::check_callable_arg<F>();
    return target.spawn(detail::make_call(detail::take_callable(std::forward<F>(f))));
}

namespace detail {

// The loops of one run_loops call (lib/loops.cpp).
void run_group(std::vector<task<>> mains, run_loops_options opts);

} // namespace detail

template <class Main>
void run_loops(std::size_t n, Main&& main, run_loops_options opts = {}) {
    auto m = detail::take_callable(std::forward<Main>(main));
    if (n == 0) {
        n = available_cores();
    }
    std::vector<task<>> mains;
    mains.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        mains.push_back(m(i));
    }
    detail::run_group(std::move(mains), opts);
}

} // namespace coio
