// coio/task.hpp - task<T>, the lazy coroutine type every coio API returns.
//
//   coio::task<int> answer() { co_return 42; }
//   coio::task<> caller() { int v = co_await answer(); }
//
// Contract:
//  - Lazy: calling a task function allocates the frame and runs nothing. The
//    body starts when the task is awaited (or handed to create_task / gather).
//  - Move-only; the task object owns the frame and destroys it. A task that is
//    never awaited is destroyed without having run.
//  - co_await switches into the task by symmetric transfer and switches back the
//    same way when it finishes; the loop's depth guard (loop_core.hpp) bounds
//    the stack whatever the compiler does with those tail calls.
//  - An exception escaping the body is stored and rethrown by co_await.
//  - A task can be awaited once; awaiting it again throws std::logic_error.
//  - Parameters are copied into the frame: take them by value (a reference or
//    string_view parameter dangles once the caller's full-expression ends).
#pragma once

#include <coio/detail/promise.hpp>
#include <coio/result.hpp>

#include <coroutine>
#include <exception>
#include <stdexcept>
#include <utility>

namespace coio {

template <class T = void>
class task;

namespace detail {

template <class T>
class task_promise : public task_promise_base {
public:
    explicit task_promise(function_name fn = function_name(__builtin_FUNCTION())) noexcept
        : task_promise_base(fn) {}
    task<T> get_return_object() noexcept;
    static std::suspend_always initial_suspend() noexcept { return {}; }
    static final_awaiter final_suspend() noexcept { return {}; }
    void unhandled_exception() noexcept { m_result.set_exception(std::current_exception()); }

    template <class U>
    requires std::is_convertible_v<U&&, T>
    void return_value(U&& v) {
        if constexpr (std::is_reference_v<T>) {
            m_result.set_value(static_cast<T>(v));
        } else {
            m_result.set_value(std::forward<U>(v));
        }
    }

    result<T>& get_result() noexcept { return m_result; }

private:
    result<T> m_result;
};

template <>
class task_promise<void> : public task_promise_base {
public:
    explicit task_promise(function_name fn = function_name(__builtin_FUNCTION())) noexcept
        : task_promise_base(fn) {}
    task<void> get_return_object() noexcept;
    static std::suspend_always initial_suspend() noexcept { return {}; }
    static final_awaiter final_suspend() noexcept { return {}; }
    void unhandled_exception() noexcept { m_result.set_exception(std::current_exception()); }
    void return_void() noexcept { m_result.set_value(); }

    result<void>& get_result() noexcept { return m_result; }

private:
    result<void> m_result;
};

} // namespace detail

template <class T>
class [[nodiscard]] task {
public:
    using promise_type = detail::task_promise<T>;
    using handle_type = std::coroutine_handle<promise_type>;
    using value_type = T;

    task() noexcept = default;
    explicit task(handle_type h) noexcept : m_h(h) {}
    task(task&& other) noexcept : m_h(std::exchange(other.m_h, {})) {}
    task& operator=(task&& other) noexcept {
        if (this != &other) {
            destroy();
            m_h = std::exchange(other.m_h, {});
        }
        return *this;
    }
    task(const task&) = delete;
    task& operator=(const task&) = delete;
    ~task() { destroy(); }

    // False for a default-constructed or moved-from task.
    [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(m_h); }
    // True once the body has run to its end (value or exception stored).
    [[nodiscard]] bool done() const noexcept { return m_h && m_h.done(); }

    struct awaiter {
        handle_type m_h;

        [[nodiscard]] bool await_ready() const noexcept { return false; }

        template <class P>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<P> caller) noexcept {
            static_assert(alignof(promise_type) <= detail::k_task_promise_max_align,
                          "coio: a task's result type may be aligned to at most 16 bytes");
            promise_type& p = m_h.promise();
            p.m_continuation = caller;
            if constexpr (detail::is_coio_promise<P>) {
                p.m_loop = caller.promise().m_loop;
                p.m_slot = caller.promise().m_slot;
                if (p.m_slot != nullptr) {
                    p.m_slot->enter_task(m_h.address()); // introspection: the chain's innermost
                }
                return detail::transfer(p.m_loop, m_h);
            } else {
                return m_h;
            }
        }

        decltype(auto) await_resume() { return std::move(m_h.promise().get_result()).value(); }
    };

    awaiter operator co_await() & { return awaiter{checked()}; }
    awaiter operator co_await() && { return awaiter{checked()}; }

    // For the loop and combinators: give up ownership of the frame.
    [[nodiscard]] handle_type release() noexcept { return std::exchange(m_h, {}); }

private:
    handle_type checked() const {
        if (!m_h) {
            throw std::logic_error("coio::task: awaiting an empty (moved-from) task");
        }
        if (m_h.done() || m_h.promise().m_continuation) {
            throw std::logic_error("coio::task: a task can be awaited only once");
        }
        return m_h;
    }
    void destroy() noexcept {
        if (m_h) {
            if (!m_h.promise().m_continuation) [[unlikely]] {
                detail::never_awaited(m_h.promise().m_function); // debug mode warns
            }
            m_h.destroy();
        }
    }

    handle_type m_h;
};

namespace detail {
template <class T>
task<T> task_promise<T>::get_return_object() noexcept {
    return task<T>{std::coroutine_handle<task_promise<T>>::from_promise(*this)};
}
inline task<void> task_promise<void>::get_return_object() noexcept {
    return task<void>{std::coroutine_handle<task_promise<void>>::from_promise(*this)};
}
} // namespace detail

} // namespace coio
