// coio/detail/gather_state.hpp - the machinery behind coio::gather.
//
// Each awaitable passed to gather runs in its own small child coroutine with
// its own cancel slot. The children are posted to the ready queue together
// (so they start in argument order on the next pass, without resume() inside
// await_suspend); the last one to finish switches back to the parent.
#pragma once

#include <coio/cancel.hpp>
#include <coio/detail/promise.hpp>
#include <coio/result.hpp>

#include <coroutine>
#include <cstddef>
#include <exception>
#include <memory>
#include <type_traits>
#include <utility>
#include <variant>

namespace coio::detail {

// The value type `co_await A` produces.
template <class A>
auto awaiter_of(A&& a) {
    if constexpr (requires { std::forward<A>(a).operator co_await(); }) {
        return std::forward<A>(a).operator co_await();
    } else {
        return std::forward<A>(a);
    }
}
template <class A>
using await_result_t = decltype(awaiter_of(std::declval<A>()).await_resume());

// How a child's result appears in gather's tuple or vector: void becomes
// std::monostate, everything else is kept as is.
template <class R>
using gather_value_t = std::conditional_t<std::is_void_v<R>, std::monostate, R>;

struct gather_counter {
    std::size_t m_remaining = 0;
    std::coroutine_handle<> m_parent;
    loop_core* m_loop = nullptr;
    bool m_failed = false;
    std::exception_ptr m_first_error; // first in completion order
};

struct gather_child {
    struct promise_type : promise_base {
        gather_counter* m_counter = nullptr;

        gather_child get_return_object() noexcept {
            return gather_child{std::coroutine_handle<promise_type>::from_promise(*this)};
        }
        static std::suspend_always initial_suspend() noexcept { return {}; }
        struct final_awaiter {
            static bool await_ready() noexcept { return false; }
            static std::coroutine_handle<>
            await_suspend(std::coroutine_handle<promise_type> h) noexcept {
                gather_counter* c = h.promise().m_counter;
                if (--c->m_remaining == 0) {
                    return transfer(c->m_loop, c->m_parent);
                }
                return std::noop_coroutine();
            }
            static void await_resume() noexcept {}
        };
        static final_awaiter final_suspend() noexcept { return {}; }
        static void return_void() noexcept {}
        // The body catches everything; this is only reached if storing the
        // outcome itself throws.
        [[noreturn]] static void unhandled_exception() noexcept { std::terminate(); }
    };

    gather_child() = default;
    explicit gather_child(std::coroutine_handle<promise_type> h) noexcept : m_h(h) {}
    gather_child(gather_child&& o) noexcept : m_h(std::exchange(o.m_h, {})) {}
    gather_child& operator=(gather_child&& o) noexcept {
        std::swap(m_h, o.m_h);
        return *this;
    }
    ~gather_child() {
        if (m_h) {
            m_h.destroy();
        }
    }

    std::coroutine_handle<promise_type> m_h;
};

template <class A, class R>
gather_child run_gather_child(A a, result<R>* out, gather_counter* counter) {
    try {
        if constexpr (std::is_void_v<R>) {
            co_await std::move(a);
            out->set_value();
        } else {
            out->set_value(co_await std::move(a));
        }
    } catch (...) {
        out->set_exception(std::current_exception());
        if (!counter->m_failed) {
            counter->m_failed = true;
            counter->m_first_error = std::current_exception();
        }
    }
}

// Shared part of the variadic and range awaiters: start children, forward
// cancellation, check the outcome. Children and slots are owned by the
// awaiter, which lives in the parent's frame.
class gather_core {
public:
    gather_core(const gather_core&) = delete;
    gather_core& operator=(const gather_core&) = delete;

protected:
    gather_core(std::size_t n, bool rethrow)
        : m_children(std::make_unique<gather_child[]>(n)),
          m_slots(std::make_unique<child_slot[]>(n)), m_count(n), m_rethrow(rethrow) {}
    ~gather_core() = default;

    [[nodiscard]] bool ready() const noexcept { return m_count == 0; }

    // Returns false when the parent must not suspend (cancel already pending).
    // `hook` is hook_for<describe> (gather's own by default): how dump_tasks
    // names the await.
    bool start(std::coroutine_handle<> parent, loop_core* loop, cancel_slot* parent_slot,
               const cancel_hook& hook = hook_for<&describe_gather>()) noexcept;
    // Throws cancelled_error if the gather itself was cancelled, else (when
    // constructed with rethrow) the first child exception.
    void finish();

    gather_counter m_counter;
    std::unique_ptr<gather_child[]> m_children;
    std::unique_ptr<child_slot[]> m_slots;
    std::size_t m_count;
    cancel_slot* m_parent_slot = nullptr;
    bool m_rethrow;
    bool m_cancelled = false;

    // "gather of 3" and each child's chain (lib/introspect.cpp).
    static void describe_gather(const void* self, await_printer& out);
    // The gather's cancel hook with another phrase (race, wait_for).
    template <cancel_slot::describe_fn Describe>
    static constexpr const cancel_hook& hook_for() noexcept {
        return hook_of<&on_cancel, Describe>;
    }

private:
    static void on_cancel(void* self) noexcept;
};

} // namespace coio::detail
