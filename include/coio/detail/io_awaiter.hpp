// coio/detail/io_awaiter.hpp - the awaiter shared by every socket operation.
//
// await_suspend hands the io_op to the backend through the loop's handle
// (loop_core). On epoll the backend tries the syscall first and, if it
// finished, the coroutine goes on without suspending (bounded by the loop's
// inline budget so a busy socket cannot starve others). Otherwise the op
// completes later and the loop resumes the waiter.
//
// Cancellation: a cancel request while the op is in flight asks the backend to
// cancel it; the awaiter still waits for the op's completion (the kernel may
// be writing into the buffer), then throws cancelled_error - unless the op
// finished with a real result first, which is returned and the request stays
// pending for the next await (cancel_slot.hpp).
//
// Awaiters are movable until they are awaited, so that an operation can be
// handed to wait_for, timeout, shield, gather and the other combinators
// (which take awaitables by value). Moving one that is being awaited is a bug
// and terminates. Derived awaiters whose op points into the awaiter itself
// (a sockaddr, a msghdr) re-point it in their move constructor.
#pragma once

#include <coio/cancel.hpp>
#include <coio/detail/io_op.hpp>
#include <coio/detail/loop_core.hpp>
#include <coio/detail/promise.hpp>

#include <coroutine>
#include <exception>
#include <system_error>

namespace coio::detail {

inline constexpr int ecanceled = static_cast<int>(std::errc::operation_canceled);

class io_awaiter_base {
public:
    io_awaiter_base() = default;
    io_awaiter_base(io_awaiter_base&& o) noexcept : m_op(o.m_op) {
        if (o.m_op.m_pending) {
            std::terminate(); // moved while its operation is in flight
        }
        o.m_op.m_fd = -1;
    }
    io_awaiter_base& operator=(io_awaiter_base&&) = delete;
    // Reached with the op pending only when the frame is destroyed mid-await
    // (loop teardown): wait for the kernel to let go of the buffer first.
    ~io_awaiter_base() {
        if (m_op.m_pending) {
            m_loop->forget(m_op);
        }
    }

    static bool await_ready() noexcept { return false; }

    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        m_slot = slot_of(h);
        if (m_slot != nullptr && m_slot->requested()) {
            m_cancelled = true;
            m_op.m_result = -ecanceled;
            return false;
        }
        m_loop = &core_or_running(loop_of(h));
        m_op.m_waiter = h;
        if (m_loop->submit(m_op)) {
            if (m_loop->take_budget()) {
                return false;
            }
            m_loop->post(h); // finished inline, but the budget is spent: yield once
            return true;
        }
        if (m_slot != nullptr) {
            m_slot->attach(&on_cancel, this);
        }
        return true;
    }

protected:
    // The op's result; throws cancelled_error if the cancel request won.
    int take_result() {
        if (m_slot != nullptr) {
            m_slot->detach();
            if (m_cancelled && m_op.m_result == -ecanceled) {
                m_slot->consume();
                throw cancelled_error{};
            }
        }
        return m_op.m_result;
    }

    io_op m_op;

private:
    static void on_cancel(void* self) noexcept {
        auto* a = static_cast<io_awaiter_base*>(self);
        a->m_cancelled = true;
        a->m_loop->cancel(a->m_op);
    }

    loop_core* m_loop = nullptr;
    cancel_slot* m_slot = nullptr;
    bool m_cancelled = false;
};

} // namespace coio::detail
