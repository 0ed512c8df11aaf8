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

// What task<T>'s promise adds: the frame that awaits it (roots and gather
// children are never awaited, so they have no continuation) and, for
// introspection (coio/introspect.hpp), the coroutine function's name - one
// pointer per frame. The rest of a chain's
// picture lives in its cancel slot (m_top, m_depth): task::awaiter makes the
// awaited frame the chain's innermost and counts it, the final awaiter hands
// that back to the continuation. The frames between the innermost and the
// chain's start are all tasks, each awaited by the next one out, so a dump
// walks m_continuation outwards m_depth times and reads each promise at the
// frame's fixed promise offset (task_promise_of below).
struct task_promise_base : promise_base {
    explicit task_promise_base(function_name fn) noexcept : m_function(fn.m_name) {}
    std::coroutine_handle<> m_continuation; // the frame that awaits this task
    const char* m_function;
};

// The promise of a suspended task<T> frame at `frame` (any T). g++ and clang
// lay a coroutine frame out as {resume fn, destroy fn, promise, ...}, the
// promise at the two pointers rounded up to its alignment;
// coroutine_handle<P>::from_address(frame).promise() applies that rule with
// P's alignment, so it is right for every task_promise<T> whose alignment is
// at most two pointers' - task_promise<T> static_asserts that.
inline constexpr std::size_t k_task_promise_max_align = 2 * sizeof(void*);
const task_promise_base& task_promise_of(const void* frame) noexcept;

// A task<T> of coroutine `function` is destroyed without ever having been
// awaited: the running loop, in debug mode, reports it (lib/debug_mode.cpp).
void never_awaited(const char* function) noexcept;

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

// final_suspend of task promises: hand control to the continuation
// (symmetric transfer, depth-guarded) or to nobody.
struct final_awaiter {
    static bool await_ready() noexcept { return false; }
    template <class P>
    static std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
        static_assert(std::is_base_of_v<task_promise_base, P>);
        task_promise_base& p = h.promise();
        if (p.m_slot != nullptr) {
            p.m_slot->leave_task(p.m_continuation.address()); // the awaiting one is innermost again
        }
        if (!p.m_continuation) {
            return std::noop_coroutine();
        }
        return transfer(p.m_loop, p.m_continuation);
    }
    static void await_resume() noexcept {}
};

} // namespace coio::detail
