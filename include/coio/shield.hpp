// coio/shield.hpp - shield (asyncio.shield).
//
//   int v = co_await coio::shield(save(record));   // save() survives our cancel
//
// shield(a) starts `a` as its own task right away (create_task: a task<T> or
// any awaitable; a task_handle is used as is) and returns a `shielded<T>` to
// await. Cancelling the awaiting task makes that await throw cancelled_error
// at once, while the inner task keeps running to completion on the loop, which
// owns it (asyncio semantics; unlike gather and wait_for, nothing waits for
// it). If nobody retrieves its exception - the await was cancelled and no
// other task_handle reads it - the loop's exception handler reports it when
// the task finishes, as asyncio reports "Task exception was never retrieved".
//
// If the inner task has already finished when the cancel arrives, the await
// returns its outcome and the cancel stays pending for the next await
// (cancel_slot.hpp, rule 3), so no result is thrown away.
#pragma once

#include <coio/cancel.hpp>
#include <coio/detail/gather_state.hpp>
#include <coio/detail/root.hpp>
#include <coio/event_loop.hpp>
#include <coio/task.hpp>
#include <coio/task_handle.hpp>

#include <coroutine>
#include <exception>
#include <type_traits>
#include <utility>

namespace coio {

// What shield() returns: an awaitable over the inner task.
template <class T>
class shielded {
    using root_type = detail::root_promise<T>;

public:
    explicit shielded(task_handle<T> h) noexcept : m_h(std::move(h)) {}

    // The inner task (to await it again, cancel it, or read it later).
    [[nodiscard]] const task_handle<T>& handle() const noexcept { return m_h; }

    class awaiter {
    public:
        awaiter(root_type& r, bool move) noexcept : m_root(&r), m_move(move) {}
        awaiter(const awaiter&) = delete;
        awaiter& operator=(const awaiter&) = delete;
        // Still linked only if the awaiting frame is destroyed mid-await.
        ~awaiter() {
            if (m_linked && !m_root->m_done) {
                detail::unlink_waiter(*m_root, m_waiter);
                if (m_slot != nullptr) {
                    m_slot->detach();
                }
            }
        }

        [[nodiscard]] bool await_ready() const noexcept { return m_root->m_done; }

        template <class P>
        bool await_suspend(std::coroutine_handle<P> caller) {
            m_slot = detail::slot_of(caller);
            if (m_slot != nullptr && m_slot->requested()) {
                m_cancelled = true; // the inner task is not told
                return false;
            }
            detail::loop_core* loop = detail::loop_of(caller);
            m_loop = &core_or_running(loop);
            m_waiter.m_handle = caller;
            detail::link_waiter(*m_root, m_waiter);
            m_linked = true;
            if (m_slot != nullptr) {
                m_slot->attach(&on_cancel, this);
            }
            return true;
        }

        decltype(auto) await_resume() {
            if (m_slot != nullptr) {
                m_slot->detach();
                if (m_cancelled) {
                    m_slot->consume();
                    throw cancelled_error{};
                }
            }
            root_type& r = *m_root;
            r.m_retrieved = true;
            if (r.m_exception) {
                std::rethrow_exception(r.m_exception);
            }
            if constexpr (std::is_void_v<T>) {
                return;
            } else if constexpr (std::is_reference_v<T>) {
                return r.m_value.value();
            } else if constexpr (!std::is_copy_constructible_v<T>) {
                return T(std::move(r.m_value).value());
            } else {
                // Move only out of a result nobody else can read: a handle
                // the caller passed in still sees the value.
                if (m_move && r.m_refs == 1) {
                    return T(std::move(r.m_value).value());
                }
                return T(r.m_value.value());
            }
        }

    private:
        static void on_cancel(void* self) noexcept {
            auto* a = static_cast<awaiter*>(self);
            if (a->m_root->m_done) {
                return; // already posted with the outcome; keep it
            }
            detail::unlink_waiter(*a->m_root, a->m_waiter);
            a->m_linked = false;
            a->m_cancelled = true;
            a->m_loop->post(a->m_waiter.m_handle);
        }

        root_type* m_root;
        detail::task_waiter m_waiter;
        detail::loop_core* m_loop = nullptr;
        detail::cancel_slot* m_slot = nullptr;
        bool m_move;
        bool m_linked = false;
        bool m_cancelled = false;
    };

    // An lvalue copies the value; an rvalue moves it if no other handle to
    // the inner task exists (a move-only T is always moved).
    awaiter operator co_await() const& { return awaiter(root(), false); }
    awaiter operator co_await() && { return awaiter(root(), true); }

private:
    root_type& root() const { return static_cast<root_type&>(m_h.root()); }

    task_handle<T> m_h;
};

namespace detail {
template <class A>
struct handle_of {
    static constexpr bool value = false;
};
template <class T>
struct handle_of<task_handle<T>> {
    static constexpr bool value = true;
    using type = T;
};
template <class A>
inline constexpr bool is_task = false;
template <class T>
inline constexpr bool is_task<task<T>> = true;

template <class A>
task<await_result_t<A>> await_as_task(A a) {
    co_return co_await std::move(a);
}
} // namespace detail

// Run `a` as its own task and await it without passing our cancellation on.
// Needs a running loop (the task is created now, as asyncio.shield does).
template <class A>
auto shield(A a) {
    if constexpr (detail::handle_of<A>::value) {
        return shielded<typename detail::handle_of<A>::type>(std::move(a));
    } else if constexpr (detail::is_task<A>) {
        return shielded<typename A::value_type>(create_task(std::move(a)));
    } else {
        return shielded<detail::await_result_t<A>>(
            create_task(detail::await_as_task(std::move(a))));
    }
}

} // namespace coio
