// lib/loop_roots.cpp - the loop's roots (create_task's and run's frames):
// starting one, the list the loop cancels and counts, finishing, reaping,
// and the report of an exception nobody retrieved. Nothing here allocates
// except that report, which falls back to a fixed text (docs/reliability.md,
// "Out of memory").
#include "exception_text.hpp"
#include "loop_impl.hpp"

#include <coio/event_loop.hpp>

#include <string>
#include <utility>

namespace coio {

namespace detail {
namespace {

// "task 'name' raised an exception nobody retrieved: what()" to `report`,
// if `r` ended in one; with a fixed text when there is no memory for the
// message (or for the task's default name).
template <class Report>
void report_unretrieved(root_base& r, Report report) noexcept {
    if (!r.m_exception || r.m_retrieved || r.cancelled()) {
        return;
    }
    try {
        const std::string msg = "task '" + r.name() + "' raised an exception nobody retrieved: " +
                                describe_exception(r.m_exception);
        report(exception_context{msg, r.name(), r.m_exception});
    } catch (...) {
        report(exception_context{
            "a task raised an exception nobody retrieved (no memory to describe it)",
            {},
            r.m_exception});
    }
}

} // namespace
} // namespace detail

void event_loop::on_root_finished(detail::root_base& r) noexcept {
    detail::loop_impl& im = *m_impl;
    r.m_done = true;
    --im.m_tasks;
    if (im.m_debug) {
        im.m_step_finished = &r; // debug mode names a slow step that ended its task
    }
    for (detail::task_waiter* w = std::exchange(r.m_waiters, nullptr); w != nullptr;
         w = w->m_next) {
        m_core.post(w->m_handle);
    }
    if (--r.m_refs == 0) {
        // Reported and destroyed at phase 5, outside this frame.
        im.unlink(r);
        r.m_next = im.m_reap;
        im.m_reap = &r;
    }
}

void event_loop::on_root_released(detail::root_base& r) noexcept {
    if (--r.m_refs == 0) {
        m_impl->destroy_root(r); // only a finished root can drop to zero here
    }
}

namespace detail {

void root_base::root_finished(root_base& r) noexcept {
    if (event_loop* owner = r.owner()) {
        owner->on_root_finished(r);
    }
}

void root_release(root_base& r) noexcept {
    if (event_loop* owner = r.owner()) {
        owner->on_root_released(r);
        return;
    }
    // The loop is gone (the handle outlived it).
    if (--r.m_refs == 0) {
        if (r.m_done) {
            report_unretrieved(
                r, [](const exception_context& c) noexcept { default_exception_handler(c); });
        }
        r.m_self.destroy();
    }
}

void loop_core::spawn(root_base& r) {
    loop_impl& im = *m_impl;
    r.m_loop = this;
    r.m_slot = &r.own_slot();
    r.m_id = ++im.m_next_id;
    im.link(r);
    ++im.m_tasks;
    ++im.m_frames;
    post(r.m_self);
}

void loop_impl::link(root_base& r) noexcept {
    r.m_prev = nullptr;
    r.m_next = m_roots;
    if (m_roots != nullptr) {
        m_roots->m_prev = &r;
    }
    m_roots = &r;
}

void loop_impl::unlink(root_base& r) noexcept {
    if (r.m_prev != nullptr) {
        r.m_prev->m_next = r.m_next;
    } else {
        m_roots = r.m_next;
    }
    if (r.m_next != nullptr) {
        r.m_next->m_prev = r.m_prev;
    }
    r.m_prev = r.m_next = nullptr;
    --m_frames;
}

void loop_impl::destroy_root(root_base& r) noexcept {
    unlink(r);
    destroy_unlinked(r);
}

void loop_impl::destroy_unlinked(root_base& r) noexcept {
    if (m_step_finished == &r) {
        m_step_finished = nullptr;
    }
    report_unretrieved(
        r, [this](const exception_context& c) noexcept { m_loop.call_exception_handler(c); });
    r.m_self.destroy();
}

void loop_impl::reap() noexcept {
    while (root_base* r = m_reap) {
        m_reap = r->m_next;
        r->m_prev = r->m_next = nullptr;
        destroy_unlinked(*r);
    }
}

std::size_t loop_impl::cancel_all() noexcept {
    std::size_t n = 0;
    for (root_base* r = m_roots; r != nullptr; r = r->m_next) {
        if (!r->m_done) {
            r->own_slot().request();
            ++n;
        }
    }
    return n;
}

} // namespace detail
} // namespace coio
