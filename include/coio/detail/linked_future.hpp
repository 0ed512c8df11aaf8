// coio/detail/linked_future.hpp - awaiting a concurrent_future's task as if
// it were a child: cancelling the awaiting task cancels the remote task, and
// the awaiter still waits for it to finish (loop_ref::spawn, submit_to).
//
// It parks a remote_waiter on the future's state like concurrent_future's
// own awaiter, but attaches its own cancel hook: the hook (the waiter's
// thread) asks the task to stop (request_cancel, which goes to the task's
// loop through call_soon_threadsafe) and leaves the waiter parked. The
// outcome arrives as usual: cancelled_error if the task stopped (the request
// is then consumed), its value or exception if it finished anyway (the
// request stays pending for the next await, cancel_slot rule 3).
#pragma once

#include <coio/detail/future_state.hpp>

#include <coroutine>
#include <memory>
#include <type_traits>
#include <utility>

namespace coio::detail {

template <class T>
class linked_awaiter {
    static_assert(!std::is_reference_v<T>, "coio: a task run on another loop returns a value");

public:
    explicit linked_awaiter(std::shared_ptr<future_state<T>> st) noexcept : m_st(std::move(st)) {}
    linked_awaiter(linked_awaiter&&) noexcept = default;
    linked_awaiter& operator=(const linked_awaiter&) = delete;
    ~linked_awaiter() {
        if (m_slot != nullptr) {
            m_slot->detach(); // the frame is destroyed mid-await (loop teardown)
        }
    }

    [[nodiscard]] bool await_ready() const { return m_st->done(); }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        m_slot = slot_of(h);
        const bool pending = m_slot != nullptr && m_slot->requested();
        if (pending) {
            forward_cancel(); // cancelled already: stop the task, still wait for it
        }
        m_waiter.bind(h);
        if (m_st->park_unless_done(m_waiter)) {
            return false;
        }
        if (m_slot != nullptr && !pending) {
            // Described as a future wait in a dump (remote_waiter.hpp).
            m_slot->attach(hook_of<&on_cancel, &remote_waiter::future_phrase>, this);
        }
        return true;
    }
    decltype(auto) await_resume() {
        m_waiter.finish();
        cancel_slot* slot = std::exchange(m_slot, nullptr);
        if (slot != nullptr) {
            slot->detach();
        }
        result<T>& r = m_st->m_result;
        if (slot != nullptr && slot->requested() && m_st->ended_cancelled()) {
            slot->consume(); // the cancel we forwarded is delivered
        }
        if constexpr (std::is_void_v<T>) {
            r.value();
        } else {
            return T(std::move(r).value()); // one awaiter per state: moved out
        }
    }

private:
    void forward_cancel() { request_cancel(m_st); }
    static void on_cancel(void* self) noexcept {
        auto* a = static_cast<linked_awaiter*>(self);
        try {
            a->forward_cancel();
        } catch (...) { // std::bad_alloc posting the request: it is lost, the wait goes on
        }
    }

    std::shared_ptr<future_state<T>> m_st; // declared first: outlives the waiter
    remote_waiter m_waiter;
    cancel_slot* m_slot = nullptr; // the awaiting chain's, while awaited
};

} // namespace coio::detail
