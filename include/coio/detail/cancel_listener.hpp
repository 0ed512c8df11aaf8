// coio/detail/cancel_listener.hpp - cancel_slot.hpp's protocol for an awaiter
// that suspends once: which slot it listens on and whether the cancel won.
//
//   await_suspend:  if (m_cancel.pending(h)) return false;    // step 1
//                   ...start the operation...;
//                   m_cancel.listen(hook_of<&on_cancel>, this); // step 2
//   the hook:       m_cancel.mark(); ...end the operation, post the coroutine...
//   a result:       m_cancel.stop(); ...post the coroutine...  // before the post
//   await_resume:   m_cancel.finish();                         // step 3: may throw
//
// stop() before posting with a result matters: a cancel that comes between
// the post and the resume then finds no hook (the request waits for the next
// await) instead of posting the coroutine a second time.
#pragma once

#include <coio/cancel.hpp>
#include <coio/detail/cancel_slot.hpp>
#include <coio/detail/promise.hpp>

#include <coroutine>

namespace coio::detail {

class cancel_listener {
public:
    // Finds the awaiting chain's slot; true if a cancel is already pending,
    // in which case nothing may start and finish() throws.
    template <class P>
    [[nodiscard]] bool pending(std::coroutine_handle<P> h) noexcept {
        m_slot = slot_of(h);
        m_cancelled = m_slot != nullptr && m_slot->requested();
        return m_cancelled;
    }
    // `hook`: hook_of<&on_cancel, &describe> (cancel_slot.hpp).
    void listen(const cancel_hook& hook, void* ctx) noexcept {
        if (m_slot != nullptr) {
            m_slot->attach(hook, ctx);
        }
    }
    // Stop listening: the operation ended with a result.
    void stop() noexcept {
        if (m_slot != nullptr) {
            m_slot->detach();
        }
    }
    // From the hook: the cancel won.
    void mark() noexcept { m_cancelled = true; }
    [[nodiscard]] bool cancelled() const noexcept { return m_cancelled; }

    // await_resume: throws cancelled_error (consuming the request) if the
    // cancel won.
    void finish() {
        stop();
        if (m_cancelled) {
            m_slot->consume();
            throw cancelled_error{};
        }
    }

private:
    cancel_slot* m_slot = nullptr;
    bool m_cancelled = false;
};

} // namespace coio::detail
