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
        if (!p.m_continuation) {
            return std::noop_coroutine();
        }
        return transfer(p.m_loop, p.m_continuation);
    }
    static void await_resume() noexcept {}
};

} // namespace coio::detail
