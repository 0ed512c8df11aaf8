// lib/debug_mode.cpp - the event loop's debug mode (event_loop.hpp:
// set_debug): slow callbacks and task steps, tasks never awaited.
//
// A slow step is named by the task whose chain holds the frame that was
// resumed (its root frame, or one of its task<T> frames - the walk dump_tasks
// makes, introspect.cpp), or by the task that finished in that step. The
// search runs only after a step found slow, so debug mode costs two clock
// reads per step. A step of a gather or wait_for child is not searched for
// (it is reported without a task).
#include "loop_impl.hpp"

#include <coio/event_loop.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace coio {

void event_loop::set_debug(bool on) noexcept {
    m_impl->m_debug = on;
}
bool event_loop::debug() const noexcept {
    return m_impl->m_debug;
}
void event_loop::set_slow_callback_duration(std::chrono::nanoseconds d) noexcept {
    m_impl->m_slow = d;
}
std::chrono::nanoseconds event_loop::slow_callback_duration() const noexcept {
    return m_impl->m_slow;
}

namespace detail {
namespace {

std::string seconds(std::chrono::nanoseconds d) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", std::chrono::duration<double>(d).count());
    return buf;
}

// The live task whose chain holds `frame`; null if none does.
root_base* task_holding(const loop_impl& im, const void* frame) noexcept {
    for (root_base* r = im.m_roots; r != nullptr; r = r->m_next) {
        if (r->m_self.address() == frame) {
            return r;
        }
        if (r->m_done) {
            continue;
        }
        const cancel_slot& s = r->own_slot();
        const void* f = s.top();
        for (std::uint32_t i = 0; i < s.depth(); ++i) {
            if (f == frame) {
                return r;
            }
            f = task_promise_of(f).m_continuation.address();
        }
    }
    return nullptr;
}

} // namespace

bool debug_from_env() noexcept {
    const char* v = std::getenv("COIO_DEBUG");
    return v != nullptr && *v != '\0' && std::strcmp(v, "0") != 0;
}

void loop_impl::debug_resume(std::coroutine_handle<> h) {
    const void* frame = h.address(); // compared, never read: it may be gone after the step
    m_step_finished = nullptr;
    const auto start = event_loop::clock::now();
    h.resume();
    const auto took = event_loop::clock::now() - start;
    if (took < m_slow) {
        return;
    }
    root_base* r = task_holding(*this, frame);
    if (r == nullptr) {
        r = m_step_finished;
    }
    std::string msg = "Executing ";
    std::string name;
    if (r != nullptr) {
        name = r->name();
        msg += "task #" + std::to_string(r->m_id) + " '" + name + "'";
        const cancel_slot& s = r->own_slot();
        if (!r->m_done && s.depth() > 0) {
            msg += " (in ";
            msg += task_promise_of(s.top()).m_function;
            msg += ")";
        }
    } else {
        msg += "a coroutine step (not a task's own chain)";
    }
    msg += " took " + seconds(took) + " seconds";
    m_loop.call_exception_handler({msg, name, nullptr});
}

void loop_impl::debug_call(std::function<void()>& f) {
    const auto start = event_loop::clock::now();
    f();
    const auto took = event_loop::clock::now() - start;
    if (took >= m_slow) {
        const std::string msg = "Executing a callback took " + seconds(took) + " seconds";
        m_loop.call_exception_handler({msg, {}, nullptr});
    }
}

void never_awaited(const char* function) noexcept {
    event_loop* loop = event_loop::current();
    if (loop == nullptr || !loop->debug()) {
        return;
    }
    try {
        const std::string msg =
            std::string("task of coroutine '") + function + "' was never awaited";
        loop->call_exception_handler({msg, {}, nullptr});
    } catch (...) { // std::bad_alloc: nothing to report with
    }
}

} // namespace detail
} // namespace coio
