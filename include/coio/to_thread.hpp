// coio/to_thread.hpp - run blocking or CPU-heavy work on a thread pool.
//
//   std::string text = co_await coio::to_thread(read_whole_file, path);
//
// asyncio.to_thread: `f(args...)` runs on a pool shared by the process (one
// thread per core, at least two; C++ has no GIL, so CPU-bound work really runs
// in parallel); the awaiting task resumes on its loop with the value or the
// exception. f and args are moved into the job, which owns them until it ends.
//
// Cancellation: cancelling the awaiting task throws cancelled_error at once;
// the call itself cannot be interrupted and runs to its end on the pool, and
// its result is dropped (as asyncio does). The loop does not finish run()
// until every job it started has come back, so nothing outlives the loop.
#pragma once

#include <coio/cancel.hpp>
#include <coio/detail/callable_arg.hpp>
#include <coio/detail/cancel_listener.hpp>
#include <coio/detail/promise.hpp>
#include <coio/event_loop.hpp>
#include <coio/result.hpp>
#include <coio/task.hpp>

#include <coroutine>
#include <cstddef>
#include <functional>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

namespace coio {

namespace detail {

// Queue `job` on the process-wide pool. Thread-safe.
void submit_to_pool(std::function<void()> job);

template <class R>
struct thread_call_base {
    thread_call_base() = default;
    thread_call_base(const thread_call_base&) = delete;
    thread_call_base& operator=(const thread_call_base&) = delete;
    virtual ~thread_call_base() = default;
    virtual void invoke() noexcept = 0; // on a pool thread: fills m_result

    result<R> m_result;
    event_loop* m_loop = nullptr;
    std::coroutine_handle<> m_waiter;
    cancel_listener* m_cancel = nullptr; // the waiter's (alive while it waits)
    bool m_abandoned = false;            // loop thread only: the awaiter was cancelled
};

template <class R, class F, class... A>
struct thread_call final : thread_call_base<R> {
    thread_call(F f, A... a) : m_f(std::move(f)), m_args(std::move(a)...) {}
    void invoke() noexcept override {
        try {
            if constexpr (std::is_void_v<R>) {
                std::apply(m_f, std::move(m_args));
                this->m_result.set_value();
            } else {
                this->m_result.set_value(std::apply(m_f, std::move(m_args)));
            }
        } catch (...) {
            this->m_result.set_exception(std::current_exception());
        }
    }
    F m_f;
    std::tuple<A...> m_args;
};

template <class R>
class thread_call_awaiter {
public:
    explicit thread_call_awaiter(std::shared_ptr<thread_call_base<R>> st)
        : m_state(std::move(st)) {}

    static bool await_ready() noexcept { return false; }

    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        if (m_cancel.pending(h)) {
            return false;
        }
        event_loop& loop = event_loop::running();
        m_state->m_loop = &loop;
        m_state->m_waiter = h;
        m_state->m_cancel = &m_cancel;
        submit_to_pool([st = m_state] {
            st->invoke();
            st->m_loop->call_soon_threadsafe([st] {
                core_of(*st->m_loop).external_end();
                if (!st->m_abandoned) {
                    // Posted with the result: a cancel that comes before the
                    // waiter runs must not post it again (the request stays
                    // pending for the task's next await instead).
                    st->m_cancel->stop();
                    core_of(*st->m_loop).post(st->m_waiter);
                }
            });
        });
        // Counted once queued: a submit that throws (no memory, no thread)
        // leaves nothing for run() to wait for. The job's completion runs on
        // this thread, later, so it cannot come before the count.
        core_of(loop).external_begin();
        m_cancel.listen(&on_cancel, this);
        return true;
    }

    R await_resume() {
        m_cancel.finish();
        return std::move(m_state->m_result).value();
    }

private:
    static void on_cancel(void* self) noexcept {
        auto* a = static_cast<thread_call_awaiter*>(self);
        a->m_cancel.mark();
        a->m_state->m_abandoned = true; // the job's result will be dropped
        core_of(*a->m_state->m_loop).post(a->m_state->m_waiter);
    }

    std::shared_ptr<thread_call_base<R>> m_state;
    cancel_listener m_cancel;
};

} // namespace detail

namespace detail {
template <class R>
task<R> await_thread_call(std::shared_ptr<thread_call_base<R>> st) {
    co_return co_await thread_call_awaiter<R>(std::move(st));
}
} // namespace detail

// Run f(args...) on the thread pool; resume with its value or exception.
// f and the arguments are copied (or moved) into the job before anything
// starts (detail/callable_arg.hpp: on g++ 12 pass a capturing lambda by name).
template <class F, class... A>
task<std::invoke_result_t<detail::owned_t<F>&, std::decay_t<A>...>> to_thread(F&& f, A&&... args) {
    detail::check_callable_arg<F>();
    using G = detail::owned_t<F>;
    using R = std::invoke_result_t<G&, std::decay_t<A>...>;
    std::shared_ptr<detail::thread_call_base<R>> st =
        std::make_shared<detail::thread_call<R, G, std::decay_t<A>...>>(
            detail::take_callable(std::forward<F>(f)), std::forward<A>(args)...);
    return detail::await_thread_call<R>(std::move(st));
}

// Threads in the pool (one per core, at least two).
std::size_t thread_pool_size() noexcept;

} // namespace coio
