// coio/detail/cancel_slot.hpp - where a suspended await listens for cancellation.
//
// Every coroutine chain started by the loop (a task made by create_task, each
// child of gather) has one cancel_slot. A task<T> awaited inside the chain
// inherits its parent's slot, so the innermost await is the one that hears a
// cancel request.
//
// Protocol for a cancellable awaiter (sleep, I/O, awaiting a task handle, ...):
//   1. Before suspending, if requested() is true, do not start anything; consume()
//      the request and throw cancelled_error from await_resume.
//   2. Otherwise attach(hook, ctx) and suspend. request() detaches the hook and
//      calls it once; the hook must make the operation finish soon (remove the
//      timer, ask the backend to cancel) and must not resume the coroutine inline.
//   3. When the operation finishes, detach(). If it finished *because* of the
//      hook, consume() and throw cancelled_error; if it finished with a real
//      result anyway (the kernel won the race), return the result and leave the
//      request pending: the next await throws. Nothing is lost either way.
//      An awaiter whose own hook would post the coroutine detaches before it
//      posts it with a result, so a cancel between that post and the resume
//      cannot post it again. (The I/O awaiter's hook only asks the loop to
//      cancel the op, which does nothing once the op is complete, so the
//      loop posts I/O completions with the hook still attached.)
// cancel_listener.hpp packages these steps for awaiters that suspend once.
//
// Introspection (coio/introspect.hpp) reads the slot too, for no more than
// one pointer: the hook is a static table per awaiter kind (hook_of below)
// that holds both what a cancel request calls and how a dump describes the
// await ("sleep 1.20 s left", "read_chunk fd 7"); while it is attached, the
// chain is suspended in the awaiter `ctx`. m_top is the chain's innermost
// task<T> frame and m_depth (in what was padding) the number of task frames
// from it out to the chain's start (task::awaiter and the final awaiter keep
// both; promise.hpp says how a dump walks them). The task a chain belongs to
// (current_task) is found from the slot's kind, also kept in padding: a
// root's own slot is a base of its root_base, a gather child's slot is a
// child_slot that holds the root (root.hpp: root_of). None of this costs more
// than a store or two when attaching and awaiting.
#pragma once

#include <cstdint>

namespace coio::detail {

class root_base;
class await_printer;

// What an awaiter kind does when its chain is cancelled, and what it prints
// in a dump (lib/introspect.cpp calls it; null: the await does not describe
// itself). One static table per kind: see hook_of.
struct cancel_hook {
    void (*cancel)(void* ctx) noexcept;
    void (*describe)(const void* ctx, await_printer& out);
};

class cancel_slot {
public:
    using hook_fn = void (*)(void* ctx) noexcept;
    using describe_fn = void (*)(const void* ctx, await_printer& out);
    // Who owns the slot: current_task finds the task from it (root.hpp).
    enum class kind : std::uint8_t { plain, root, child };

    cancel_slot() = default;
    explicit cancel_slot(kind k) noexcept : m_kind(k) {}
    cancel_slot(const cancel_slot&) = delete;
    cancel_slot& operator=(const cancel_slot&) = delete;

    [[nodiscard]] bool requested() const noexcept { return m_requested; }

    // Number of cancel requests not yet withdrawn by uncancel() (asyncio's
    // Task.cancelling()).
    [[nodiscard]] std::uint32_t cancelling() const noexcept { return m_cancelling; }

    // `hook` is static (hook_of<...>); `ctx` is the suspended awaiter.
    void attach(const cancel_hook& hook, void* ctx) noexcept {
        m_hook = &hook;
        m_ctx = ctx;
    }
    void detach() noexcept { m_hook = nullptr; }

    // Request cancellation. Returns false if a request was already pending.
    bool request() noexcept {
        ++m_cancelling;
        if (m_requested) {
            return false;
        }
        m_requested = true;
        if (m_hook != nullptr) {
            hook_fn fn = m_hook->cancel;
            m_hook = nullptr;
            fn(m_ctx);
        }
        return true;
    }

    // The pending request was delivered as a cancelled_error.
    void consume() noexcept { m_requested = false; }

    // Withdraw one request (asyncio's Task.uncancel()); returns what is left.
    std::uint32_t uncancel() noexcept {
        if (m_cancelling > 0) {
            --m_cancelling;
        }
        if (m_cancelling == 0) {
            m_requested = false;
        }
        return m_cancelling;
    }

    // Introspection: whether the chain is in an await that listens for a
    // cancel, how that await describes itself (null: it does not) and the
    // awaiter.
    [[nodiscard]] bool suspended() const noexcept { return m_hook != nullptr; }
    [[nodiscard]] describe_fn describer() const noexcept {
        return m_hook != nullptr ? m_hook->describe : nullptr;
    }
    [[nodiscard]] const void* context() const noexcept { return m_ctx; }
    [[nodiscard]] kind owner_kind() const noexcept { return m_kind; }

    // A task<T> frame of this chain is awaited (enter) or has finished
    // (leave; `continuation` is the frame that awaited it).
    void enter_task(void* frame) noexcept {
        m_top = frame;
        ++m_depth;
    }
    void leave_task(void* continuation) noexcept {
        m_top = continuation;
        --m_depth;
    }
    // The innermost task frame and how many task frames the chain holds (0:
    // none started yet, or all finished; m_top is then meaningless).
    [[nodiscard]] const void* top() const noexcept { return m_top; }
    [[nodiscard]] std::uint16_t depth() const noexcept { return m_depth; }

private:
    const cancel_hook* m_hook = nullptr;
    void* m_ctx = nullptr;
    void* m_top = nullptr;
    std::uint32_t m_cancelling = 0;
    std::uint16_t m_depth = 0; // wraps only past 65535 nested tasks: a dump then shows fewer
    bool m_requested = false;
    kind m_kind = kind::plain;
};

// The slot costs one pointer more than cancellation alone needs (m_top).
static_assert(sizeof(void*) != 8 || sizeof(cancel_slot) == 32);

// The one table of an awaiter kind: slot->attach(hook_of<&on_cancel, &describe>, this).
template <cancel_slot::hook_fn Cancel, cancel_slot::describe_fn Describe = nullptr>
inline constexpr cancel_hook hook_of{Cancel, Describe};

// A gather child's slot (gather_state.hpp): the task it runs in, for
// current_task.
class child_slot : public cancel_slot {
public:
    child_slot() noexcept : cancel_slot(kind::child) {}
    root_base* m_root = nullptr;
};

} // namespace coio::detail
