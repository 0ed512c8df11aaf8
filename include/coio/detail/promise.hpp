// coio/detail/promise.hpp - what every coio coroutine promise carries.
#pragma once

#include <coio/detail/cancel_slot.hpp>
#include <coio/detail/frame_alloc.hpp>
#include <coio/detail/loop_core.hpp>

#include <coroutine>
#include <cstddef>
#include <type_traits>

namespace coio::detail {

// m_loop and m_slot are copied from parent to child when a task is awaited, so
// awaiters deep in a chain reach the loop and the chain's cancel slot without a
// thread_local lookup. Both are null for a task awaited by a foreign coroutine.
struct promise_base {
    // Frames come from the per-thread frame cache (frame_alloc.hpp).
    static void* operator new(std::size_t size) { return frame_alloc(size); }
    static void operator delete(void* p, std::size_t size) noexcept { frame_free(p, size); }

    std::coroutine_handle<> m_continuation;
    loop_core* m_loop = nullptr;
    cancel_slot* m_slot = nullptr;
};

// The name of the function whose coroutine a task_promise belongs to: the
// promise's default argument is evaluated in the coroutine, so
// __builtin_FUNCTION() names it (g++ and clang). A type nothing converts to,
// so no coroutine parameter is ever taken for it.
struct function_name {
    explicit constexpr function_name(const char* n) noexcept : m_name(n) {}
    const char* m_name;
};

// What task<T>'s promise adds, for introspection (coio/introspect.hpp): the
// task awaiting this one (null if a root or a gather child awaits it: the
// chain's start) - set by task::awaiter, which makes this frame its chain's
// innermost (cancel_slot::m_top); the final awaiter hands that back to
// m_parent - and the coroutine function's name. A chain's frames between its
// start and its innermost are all tasks, so only they carry these.
struct task_promise_base : promise_base {
    explicit task_promise_base(function_name fn) noexcept : m_function(fn.m_name) {}
    task_promise_base* m_parent = nullptr;
    const char* m_function;
};

template <class P>
inline constexpr bool is_coio_promise = std::is_base_of_v<promise_base, P>;

// The loop and cancel slot of whoever awaits, or nulls for a foreign coroutine.
template <class P>
loop_core* loop_of(std::coroutine_handle<P> h) noexcept {
    if constexpr (is_coio_promise<P>) {
        return h.promise().m_loop;
    } else {
        return nullptr;
    }
}
template <class P>
cancel_slot* slot_of(std::coroutine_handle<P> h) noexcept {
    if constexpr (is_coio_promise<P>) {
        return h.promise().m_slot;
    } else {
        return nullptr;
    }
}

// final_suspend of task-like promises: hand control to the continuation
// (symmetric transfer, depth-guarded) or to nobody.
struct final_awaiter {
    static bool await_ready() noexcept { return false; }
    template <class P>
    static std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
        promise_base& p = h.promise();
        if constexpr (std::is_base_of_v<task_promise_base, P>) {
            if (p.m_slot != nullptr) {
                p.m_slot->m_top = h.promise().m_parent; // the awaiting one is innermost again
            }
        }
        if (!p.m_continuation) {
            return std::noop_coroutine();
        }
        return transfer(p.m_loop, p.m_continuation);
    }
    static void await_resume() noexcept {}
};

} // namespace coio::detail
