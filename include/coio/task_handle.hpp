// coio/task_handle.hpp - what create_task returns (asyncio.Task).
//
// A handle is a counted reference to a running or finished task. Copying it is
// cheap; dropping every handle detaches the task, which keeps running: the loop
// owns the frame until the task finishes (it is never destroyed mid-await).
// A task that ends in an exception nobody retrieved (by co_await, result() or
// exception()) is reported to the loop's exception handler when its last
// reference goes away. Cancellation is not reported.
#pragma once

#include <coio/detail/await_printer.hpp>
#include <coio/detail/root.hpp>

#include <coroutine>
#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace coio {

template <class T = void>
class task_handle {
    using promise_type = detail::root_promise<T>;
    using handle_type = std::coroutine_handle<promise_type>;

public:
    task_handle() noexcept = default;
    explicit task_handle(handle_type h) noexcept : m_h(h) { ++m_h.promise().m_refs; }
    task_handle(const task_handle& o) noexcept : m_h(o.m_h) {
        if (m_h) {
            ++m_h.promise().m_refs;
        }
    }
    task_handle(task_handle&& o) noexcept : m_h(std::exchange(o.m_h, {})) {}
    task_handle& operator=(task_handle o) noexcept {
        std::swap(m_h, o.m_h);
        return *this;
    }
    ~task_handle() { reset(); }

    // Drop this reference (detaching the task if it was the last).
    void reset() noexcept {
        if (m_h) {
            detail::root_release(std::exchange(m_h, {}).promise());
        }
    }

    [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(m_h); }
    [[nodiscard]] bool done() const noexcept { return p().m_done; }
    [[nodiscard]] bool cancelled() const noexcept { return p().cancelled(); }
    [[nodiscard]] std::string_view name() const { return p().name(); }
    // Rename the task (asyncio's Task.set_name); empty gives "task-<id>" back.
    void set_name(std::string name) { p().set_name(std::move(name)); }
    [[nodiscard]] std::uint64_t id() const noexcept { return p().m_id; }

    // Ask the task to stop: its current or next co_await throws
    // cancelled_error. Returns false if the task is done already.
    bool cancel() noexcept {
        if (p().m_done) {
            return false;
        }
        p().own_slot().request();
        return true;
    }
    // Pending cancel requests (asyncio Task.cancelling()).
    [[nodiscard]] std::uint32_t cancelling() const noexcept { return p().own_slot().cancelling(); }
    // Withdraw one cancel request; returns how many remain (asyncio Task.uncancel()).
    std::uint32_t uncancel() noexcept { return p().own_slot().uncancel(); }

    // The exception the task ended with (null if it returned normally).
    // Throws std::logic_error if it has not finished.
    [[nodiscard]] std::exception_ptr exception() const {
        require_done();
        p().m_retrieved = true;
        return p().m_exception;
    }

    // The task's value (copied; moved out if T cannot be copied) or its
    // exception rethrown. Throws std::logic_error if it has not finished.
    decltype(auto) result() const {
        require_done();
        return get();
    }

    struct awaiter {
        handle_type m_h;
        detail::task_waiter m_waiter;
        detail::cancel_slot* m_slot = nullptr;
        bool m_move = false;

        awaiter(handle_type h, bool move) noexcept : m_h(h), m_move(move) {}
        awaiter(const awaiter&) = delete;
        awaiter& operator=(const awaiter&) = delete;
        // Only reached while still parked if the awaiting frame is destroyed
        // mid-await (loop teardown): unlink so the task never posts a dead handle.
        ~awaiter() {
            promise_type& r = m_h.promise();
            if (m_waiter.m_handle && !r.m_done) {
                detail::unlink_waiter(r, m_waiter);
                if (m_slot != nullptr) {
                    m_slot->detach();
                }
            }
        }

        [[nodiscard]] bool await_ready() const noexcept { return m_h.promise().m_done; }

        template <class P>
        bool await_suspend(std::coroutine_handle<P> caller) noexcept {
            promise_type& r = m_h.promise();
            m_slot = detail::slot_of(caller);
            if (m_slot != nullptr && m_slot->requested()) {
                // Awaiting a task forwards our cancellation to it (asyncio
                // does the same); we still wait for it to finish.
                r.own_slot().request();
            }
            m_waiter.m_handle = caller;
            detail::link_waiter(r, m_waiter);
            if (m_slot != nullptr) {
                m_slot->attach(detail::hook_of<&on_cancel, &describe>, this);
            }
            return true;
        }

        decltype(auto) await_resume() {
            if (m_slot != nullptr) {
                m_slot->detach();
            }
            promise_type& r = m_h.promise();
            r.m_retrieved = true;
            if (r.m_exception) {
                if (m_slot != nullptr && m_slot->requested() && r.cancelled()) {
                    m_slot->consume();
                }
                std::rethrow_exception(r.m_exception);
            }
            if constexpr (std::is_void_v<T>) {
                return;
            } else if constexpr (std::is_reference_v<T>) {
                return r.m_value.value();
            } else if constexpr (!std::is_copy_constructible_v<T>) {
                return T(std::move(r.m_value).value()); // move-only: moved out either way
            } else {
                if (m_move) {
                    return T(std::move(r.m_value).value());
                }
                return T(r.m_value.value());
            }
        }

        static void on_cancel(void* self) noexcept {
            auto* a = static_cast<awaiter*>(self);
            a->m_h.promise().own_slot().request();
        }
        static void describe(const void* self, detail::await_printer& out) {
            out.task(static_cast<const awaiter*>(self)->m_h.promise());
        }
    };

    // Wait for the task. An lvalue handle yields a copy of the value; an rvalue
    // handle moves it out, and so does an lvalue one when T cannot be copied
    // (a socket, a unique_ptr): retrieve such a value once. If the awaiting task is cancelled
    // meanwhile, the awaited task is cancelled too (use shield to prevent that).
    awaiter operator co_await() const& { return awaiter{m_h, false}; }
    awaiter operator co_await() && { return awaiter{m_h, true}; }

    // (detail) The task's root frame, for this library's combinators
    // (task_group, shield). Throws std::logic_error on an empty handle.
    [[nodiscard]] detail::root_base& root() const { return p(); }

private:
    promise_type& p() const {
        if (!m_h) {
            throw std::logic_error("coio::task_handle: empty handle");
        }
        return m_h.promise();
    }
    void require_done() const {
        if (!p().m_done) {
            throw std::logic_error("coio::task_handle: task '" + p().name() + "' has not finished");
        }
    }
    decltype(auto) get() const {
        promise_type& r = p();
        r.m_retrieved = true;
        if (r.m_exception) {
            std::rethrow_exception(r.m_exception);
        }
        if constexpr (std::is_void_v<T>) {
            return;
        } else if constexpr (std::is_reference_v<T>) {
            return r.m_value.value();
        } else if constexpr (!std::is_copy_constructible_v<T>) {
            return T(std::move(r.m_value).value()); // move-only: moved out
        } else {
            return T(r.m_value.value());
        }
    }

    handle_type m_h;
};

} // namespace coio
