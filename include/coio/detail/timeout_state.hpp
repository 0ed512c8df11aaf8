// coio/detail/timeout_state.hpp - the machinery behind wait_for and timeout.
//
// The awaitable runs as the only child of a gather_core: its own coroutine with
// its own cancel slot, posted to the ready queue (so it starts on the next pass,
// never resumed inside await_suspend). A timer in the awaiter requests the
// child's slot when the deadline passes; the awaiter still waits until the child
// has finished (the operation it was in really cancelled), then decides:
//
//   caller cancelled, child ended with cancelled_error -> cancelled_error
//   timer fired,      child ended with cancelled_error -> timeout_error
//   anything else                                      -> the child's outcome
//
// The caller's cancel slot is only consumed when cancelled_error is thrown
// for it; a child that finished with a real value despite a cancel returns it
// and leaves the request pending (cancel_slot.hpp, rule 3).
#pragma once

#include <coio/detail/deadline.hpp>
#include <coio/detail/gather_state.hpp>
#include <coio/detail/timer.hpp>

#include <chrono>
#include <coroutine>
#include <exception>
#include <utility>

namespace coio {
class event_loop;
}

namespace coio::detail {

class timeout_core;

// What a coio::deadline handle shares: the deadline, whether it fired, and the
// await it guards now (null between awaits).
struct deadline_state {
    std::chrono::steady_clock::time_point m_when;
    timeout_core* m_active = nullptr;
    bool m_expired = false;
};

// The non-template half (lib/timeout.cpp): the timer, the deadline handle, the
// decision. The derived template owns the child's result.
class timeout_core : protected gather_core {
public:
    using time_point = std::chrono::steady_clock::time_point;

    // Move the timer of an active await (deadline::reschedule). After the
    // timer fired the cancel cannot be taken back: only m_when changes.
    void reschedule(time_point when);

protected:
    timeout_core(time_point when, deadline_state* state);
    ~timeout_core();

    // Returns false if the caller must not suspend (its cancel is pending).
    // Throws std::logic_error if the deadline already guards another await.
    bool begin(std::coroutine_handle<> parent, loop_core* loop, cancel_slot* parent_slot);
    // After the child finished (or never started): stop the timer, detach from
    // the caller's slot, then throw cancelled_error or timeout_error if that is
    // the outcome. Returning means: hand back the child's own result.
    void end(const std::exception_ptr& child_error, bool child_ran);

    // "wait_for, 1.20 s left" and the awaitable's chain (lib/introspect.cpp).
    static void describe_timeout(const void* self, await_printer& out);

private:
    static void on_fire(timer_node& t) noexcept;
    void stop() noexcept;

    timer_node m_timer;
    loop_core* m_event_loop = nullptr;
    deadline_state* m_state;
    bool m_fired = false;
};

template <class A>
class timeout_awaiter : public timeout_core {
public:
    using value_t = await_result_t<A>;

    timeout_awaiter(A a, time_point when, deadline_state* state) : timeout_core(when, state) {
        m_children[0] = run_gather_child<A, value_t>(std::move(a), &m_result, &m_counter);
    }

    static bool await_ready() noexcept { return false; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        return begin(h, loop_of(h), slot_of(h));
    }
    decltype(auto) await_resume() {
        end(m_result.exception(), !m_result.empty());
        return std::move(m_result).value();
    }

private:
    result<value_t> m_result;
};

} // namespace coio::detail
