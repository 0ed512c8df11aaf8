// lib/task_watch.cpp - the watch coroutine behind task_watches
// (detail/task_watch.hpp).
#include <coio/detail/frame_alloc.hpp>
#include <coio/detail/loop_core.hpp>
#include <coio/detail/task_watch.hpp>

#include <coroutine>
#include <exception>

namespace coio::detail {
namespace {

struct watch_promise;
using watch_handle = std::coroutine_handle<watch_promise>;

struct watch_coroutine {
    using promise_type = watch_promise;
    watch_handle m_h;
};

struct watch_promise {
    static void* operator new(std::size_t size) { return frame_alloc(size); }
    static void operator delete(void* p, std::size_t size) noexcept { frame_free(p, size); }

    watch_coroutine get_return_object() noexcept { return {watch_handle::from_promise(*this)}; }
    static std::suspend_always initial_suspend() noexcept { return {}; }
    // The frame frees itself once it has run.
    static std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {
        if (m_owner != nullptr) {
            m_owner->fired(m_index);
        } else if (m_orphan_loop != nullptr) {
            m_orphan_loop->external_end();
        }
    }
    [[noreturn]] static void unhandled_exception() noexcept { std::terminate(); }

    task_waiter m_waiter;
    task_watches* m_owner = nullptr; // null once orphaned
    loop_core* m_orphan_loop = nullptr;
    root_base* m_root = nullptr;
    std::size_t m_index = 0;
};

// Resumed by the loop when the watched task finishes (it is the handle in
// m_waiter); returning runs return_void, which tells the owner.
watch_coroutine run_watch() {
    co_return;
}

} // namespace

void task_watches::add(root_base& r, std::size_t index) {
    if (m_watches.size() <= index) {
        m_watches.resize(index + 1, nullptr);
    }
    watch_handle h = run_watch().m_h;
    watch_promise& p = h.promise();
    p.m_owner = this;
    p.m_root = &r;
    p.m_index = index;
    p.m_waiter.m_handle = h;
    link_waiter(r, p.m_waiter);
    m_watches[index] = h.address();
    ++m_active;
}

void task_watches::fired(std::size_t index) noexcept {
    m_watches[index] = nullptr;
    --m_active;
    m_target->task_done(index);
}

void task_watches::stop() noexcept {
    for (void*& w : m_watches) {
        if (w == nullptr) {
            continue;
        }
        watch_handle h = watch_handle::from_address(w);
        watch_promise& p = h.promise();
        root_base& r = *p.m_root;
        if (!r.m_done) {
            unlink_waiter(r, p.m_waiter); // still parked: never posted
            h.destroy();
        } else if (r.owner() == nullptr) {
            h.destroy(); // posted, but the loop is gone and dropped its queue
        } else {
            // Posted when its task finished; it runs on this pass or the next.
            p.m_owner = nullptr;
            p.m_orphan_loop = r.m_loop;
            p.m_orphan_loop->external_begin();
        }
        w = nullptr;
    }
    m_active = 0;
}

} // namespace coio::detail
