// coio/detail/root.hpp - the frame create_task puts around a task.
//
// A root coroutine awaits the user's task and keeps its outcome. It is the
// start of a cancellable chain (it owns the cancel slot every nested await
// inherits) and the unit the loop counts, cancels and reaps.
//
// Lifetime: the frame is reference-counted, not atomically (one loop thread).
// The loop holds one reference while the task runs; each task_handle holds one.
// The last release destroys the frame; if the task ended in an exception that
// nobody retrieved, it goes to the loop's exception handler first.
#pragma once

#include <coio/cancel.hpp>
#include <coio/detail/promise.hpp>
#include <coio/result.hpp>
#include <coio/task.hpp>

#include <coroutine>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>

namespace coio {
class event_loop;
}

namespace coio::detail {

// An awaiter parked on a task handle until the task finishes.
struct task_waiter {
    std::coroutine_handle<> m_handle;
    task_waiter* m_next = nullptr;
    task_waiter* m_prev = nullptr;
};

// The root's cancel slot is a base, not a member, so that the slot leads
// back to its task (root_of, for current_task) without storing a pointer.
class root_base : public promise_base, private cancel_slot {
public:
    root_base() noexcept : cancel_slot(kind::root) {}
    root_base(const root_base&) = delete;
    root_base& operator=(const root_base&) = delete;

    static std::suspend_always initial_suspend() noexcept { return {}; }
    void unhandled_exception() noexcept { m_exception = std::current_exception(); }

    struct final_awaiter {
        static bool await_ready() noexcept { return false; }
        template <class P>
        static void await_suspend(std::coroutine_handle<P> h) noexcept {
            root_finished(h.promise());
        }
        static void await_resume() noexcept {}
    };
    static final_awaiter final_suspend() noexcept { return {}; }

    [[nodiscard]] bool cancelled() const noexcept;
    // The name given to create_task, or "task-<id>". The default is formatted
    // on first use: creating a task does not pay for a string.
    [[nodiscard]] const std::string& name() {
        if (!m_name) {
            m_name = std::make_unique<std::string>("task-" + std::to_string(m_id));
        }
        return *m_name;
    }
    // An empty name gives the default back.
    void set_name(std::string name) {
        m_name = name.empty() ? nullptr : std::make_unique<std::string>(std::move(name));
    }

    // The chain's cancel slot, which every await of the task inherits.
    [[nodiscard]] cancel_slot& own_slot() noexcept { return *this; }
    [[nodiscard]] const cancel_slot& own_slot() const noexcept { return *this; }

    // The loop that runs the task: m_loop's owner (spawn sets m_loop), or
    // null before spawn and once the loop is gone (it clears m_loop then).
    [[nodiscard]] event_loop* owner() const noexcept {
        return m_loop != nullptr ? &m_loop->owner() : nullptr;
    }

    root_base* m_prev = nullptr; // the loop's list of roots
    root_base* m_next = nullptr;
    std::coroutine_handle<> m_self;
    task_waiter* m_waiters = nullptr;
    std::exception_ptr m_exception;
    std::unique_ptr<std::string> m_name; // null until named, or until name() formats the default
    std::uint64_t m_id = 0;
    std::uint32_t m_refs = 1;
    bool m_done = false;
    bool m_retrieved = false;

private:
    friend struct final_awaiter;
    friend root_base* root_of(cancel_slot* slot) noexcept;
    // Marks the root done, posts its waiters and drops the loop's reference.
    // Defined in lib/loop_roots.cpp; runs no user code.
    static void root_finished(root_base& r) noexcept;
};

// The task (create_task's root, or run's 'main') the chain of `slot` runs
// in; null for a slot of another kind (or null).
inline root_base* root_of(cancel_slot* slot) noexcept {
    if (slot == nullptr) {
        return nullptr;
    }
    switch (slot->owner_kind()) {
    case cancel_slot::kind::root:
        return static_cast<root_base*>(slot);
    case cancel_slot::kind::child:
        return static_cast<child_slot*>(slot)->m_root;
    case cancel_slot::kind::plain:
        break;
    }
    return nullptr;
}

// Drop one reference (a task_handle going away). Defined in lib/.
void root_release(root_base& r) noexcept;

// Park `w` on a task that has not finished; the loop posts it when the task
// finishes (and forgets the list). Unlink only while the task is not done.
inline void link_waiter(root_base& r, task_waiter& w) noexcept {
    w.m_prev = nullptr;
    w.m_next = r.m_waiters;
    if (r.m_waiters != nullptr) {
        r.m_waiters->m_prev = &w;
    }
    r.m_waiters = &w;
}
inline void unlink_waiter(root_base& r, task_waiter& w) noexcept {
    if (w.m_prev != nullptr) {
        w.m_prev->m_next = w.m_next;
    } else {
        r.m_waiters = w.m_next;
    }
    if (w.m_next != nullptr) {
        w.m_next->m_prev = w.m_prev;
    }
    w.m_prev = w.m_next = nullptr;
}

inline bool root_base::cancelled() const noexcept {
    if (!m_done || !m_exception) {
        return false;
    }
    try {
        std::rethrow_exception(m_exception);
    } catch (const cancelled_error&) {
        return true;
    } catch (...) {
        return false;
    }
}

template <class T>
class root_promise;

template <class T>
struct root_coroutine {
    using promise_type = root_promise<T>;
    std::coroutine_handle<promise_type> m_h;
};

template <class T>
class root_promise : public root_base {
public:
    root_coroutine<T> get_return_object() noexcept {
        auto h = std::coroutine_handle<root_promise>::from_promise(*this);
        m_self = h;
        return {h};
    }
    template <class U>
    void return_value(U&& v) {
        m_value.set_value(std::forward<U>(v));
    }
    result<T> m_value;
};

// A void task's outcome is m_done and m_exception alone: no result<void>
// (16 bytes less in every void root, one per connection of a server).
struct void_value {
    static void value() noexcept {}
};

template <>
class root_promise<void> : public root_base {
public:
    root_coroutine<void> get_return_object() noexcept {
        auto h = std::coroutine_handle<root_promise>::from_promise(*this);
        m_self = h;
        return {h};
    }
    static void return_void() noexcept {}
    [[no_unique_address]] void_value m_value;
};

// Every server connection has one of these (its task's root): keep it small.
static_assert(sizeof(void*) != 8 || sizeof(root_promise<void>) <= 112);

// The task's own frame - and everything it took by value - is destroyed as
// soon as it finishes, not when the last task_handle lets go of the root: a
// finished task keeps only its result. (A handle stored in an object that
// the task's parameters own would otherwise form a cycle that keeps both for
// ever.) The task lives in a block of its own for that.
template <class T>
root_coroutine<T> make_root(task<T> t) {
    if constexpr (std::is_void_v<T>) {
        {
            task<T> child = std::move(t);
            co_await std::move(child);
        }
    } else {
        result<T> out;
        {
            task<T> child = std::move(t);
            out.set_value(co_await std::move(child));
        }
        co_return std::move(out).value();
    }
}

} // namespace coio::detail
