// lib/introspect.cpp - all_tasks, format_tasks / dump_tasks (introspect.hpp)
// and the describe functions of coio's awaiters (detail/await_printer.hpp).
//
// A task's chain is read from its cancel slot: top() is the innermost task
// frame, each frame's m_continuation leads out, depth() times; while an
// await is suspended its hook is attached with a describe function. Nothing
// here changes any of it.
#include "loop_impl.hpp"

#include <coio/detail/await_printer.hpp>
#include <coio/detail/gather_state.hpp>
#include <coio/detail/io_awaiter.hpp>
#include <coio/detail/race_state.hpp>
#include <coio/detail/remote_waiter.hpp>
#include <coio/detail/timeout_state.hpp>
#include <coio/detail/wait_state.hpp>
#include <coio/detail/waiter_list.hpp>
#include <coio/event_loop.hpp>
#include <coio/introspect.hpp>
#include <coio/task_group.hpp>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace coio {
namespace detail {

const task_promise_base& task_promise_of(const void* frame) noexcept {
    using handle = std::coroutine_handle<task_promise<void>>;
    static_assert(alignof(task_promise<void>) <= k_task_promise_max_align);
    return handle::from_address(const_cast<void*>(frame)).promise();
}

// A coroutine function's name without template arguments: g++'s
// __builtin_FUNCTION() has them ("gather<coio::task<int> >"), clang's not.
std::string_view short_name(std::string_view n) noexcept {
    if (n.substr(0, 8) == "operator") {
        return n; // operator(), operator<=> ...
    }
    return n.substr(0, n.find('<'));
}

// The state behind an await_printer: the text so far and the chains the
// current line's await runs, printed after it.
struct dump_writer {
    struct pending {
        const cancel_slot* slot; // null: a chain that has finished
        std::string label;
    };

    std::string out;
    std::vector<pending>* children = nullptr;
    int depth = 0;

    static dump_writer& of(void* impl) noexcept { return *static_cast<dump_writer*>(impl); }
    static await_printer printer(dump_writer& w) noexcept { return await_printer(&w); }

    // One line for the chain of `slot` (its frames, then its await), then
    // the lines of the chains that await runs.
    void chain(const cancel_slot& slot, std::string_view label) {
        std::vector<pending> below;
        out.append(static_cast<std::size_t>(depth) * 4, ' ');
        out += label;
        std::vector<const char*> names;
        const void* frame = slot.top();
        for (std::uint32_t i = 0; i < slot.depth(); ++i) {
            const task_promise_base& p = task_promise_of(frame);
            names.push_back(p.m_function);
            frame = p.m_continuation.address();
        }
        for (auto it = names.rbegin(); it != names.rend(); ++it) {
            out += short_name(*it);
            out += " -> ";
        }
        if (slot.suspended()) {
            if (cancel_slot::describe_fn d = slot.describer()) {
                std::vector<pending>* saved = std::exchange(children, &below);
                await_printer p(this);
                d(slot.context(), p);
                children = saved;
            } else {
                out += "(an await that does not describe itself)";
            }
        } else {
            if (!names.empty()) {
                out.resize(out.size() - 4); // no await: drop the last " -> "
            }
            if (names.empty()) {
                out += "(not started yet)";
            }
        }
        out += '\n';
        if (depth < 16) {
            ++depth;
            for (const pending& c : below) {
                if (c.slot != nullptr) {
                    chain(*c.slot, c.label);
                } else {
                    out.append(static_cast<std::size_t>(depth) * 4, ' ');
                    out += c.label;
                    out += '\n';
                }
            }
            --depth;
        }
    }
};

void await_printer::text(std::string_view s) {
    dump_writer::of(m_impl).out += s;
}

void await_printer::number(std::uint64_t n) {
    dump_writer::of(m_impl).out += std::to_string(n);
}

void await_printer::seconds(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f s", s < 0 ? 0.0 : s);
    dump_writer::of(m_impl).out += buf;
}

void await_printer::task(const root_base& r) {
    dump_writer& w = dump_writer::of(m_impl);
    w.out += "task #" + std::to_string(r.m_id) + " '";
    w.out += const_cast<root_base&>(r).name(); // formats the default name once
    w.out += "'";
}

void await_printer::chain(const cancel_slot* slot, std::string_view label) {
    dump_writer& w = dump_writer::of(m_impl);
    if (w.children != nullptr) {
        w.children->push_back({slot, std::string(label)});
    }
}

// --- the awaiters' phrases ---------------------------------------------------------

void describe_io(const io_op& op, await_printer& out) {
    const char* what = "I/O";
    switch (op.m_code) {
    case op_code::accept:
        what = "accept";
        break;
    case op_code::connect:
        what = "connect";
        break;
    case op_code::recv:
        what = "read_some";
        break;
    case op_code::send:
        what = "write_some";
        break;
    case op_code::recvmsg:
        what = "receive (datagram)";
        break;
    case op_code::sendmsg:
        what = "send (datagram)";
        break;
    case op_code::recv_pooled:
        what = "read_chunk";
        break;
    case op_code::read:
    case op_code::read_pooled:
        what = "read (pipe)";
        break;
    case op_code::write:
        what = "write (pipe)";
        break;
    case op_code::wait_readable:
        what = "wait readable";
        break;
    }
    out.text(what);
    out.text(" fd ");
    out.number(static_cast<std::uint64_t>(op.m_fd < 0 ? 0 : op.m_fd));
}

void sync_phrase::event_wait(const void* /*waiter*/, await_printer& out) {
    out.text("event wait");
}
void sync_phrase::lock_acquire(const void* /*waiter*/, await_printer& out) {
    out.text("lock acquire");
}
void sync_phrase::semaphore_acquire(const void* /*waiter*/, await_printer& out) {
    out.text("semaphore acquire");
}
void sync_phrase::condition_wait(const void* /*waiter*/, await_printer& out) {
    out.text("condition wait");
}
void sync_phrase::queue_get(const void* /*waiter*/, await_printer& out) {
    out.text("queue get");
}
void sync_phrase::queue_put(const void* /*waiter*/, await_printer& out) {
    out.text("queue put (full)");
}

namespace {
// The children of a gather (or of wait_for, its one child), each labelled.
void describe_children(const std::unique_ptr<gather_child[]>& children,
                       const std::unique_ptr<child_slot[]>& slots, std::size_t n,
                       await_printer& out) {
    for (std::size_t i = 0; i < n; ++i) {
        const std::string label = "[" + std::to_string(i) + "] ";
        const bool done = children[i].m_h && children[i].m_h.done();
        out.chain(done ? nullptr : &slots[i], done ? label + "done" : label);
    }
}
} // namespace

void gather_core::describe_gather(const void* self, await_printer& out) {
    const auto* g = static_cast<const gather_core*>(self);
    out.text("gather of ");
    out.number(g->m_count);
    describe_children(g->m_children, g->m_slots, g->m_count, out);
}

void timeout_core::describe_timeout(const void* self, await_printer& out) {
    const auto* t = static_cast<const timeout_core*>(static_cast<const gather_core*>(self));
    out.text("wait_for, ");
    if (t->m_timer.m_deadline == time_point::max()) {
        out.text("no deadline");
    } else {
        const auto left = t->m_timer.m_deadline - coio::now();
        out.seconds(std::chrono::duration<double>(left).count());
        out.text(t->m_fired ? " past, cancelling" : " left");
    }
    describe_children(t->m_children, t->m_slots, 1, out);
}

void race_core::describe_race(const void* self, await_printer& out) {
    // Attached with the gather_core base as its context (gather.cpp).
    const auto* g = static_cast<const race_core*>(static_cast<const gather_core*>(self));
    out.text("race of ");
    out.number(g->m_count);
    describe_children(g->m_children, g->m_slots, g->m_count, out);
}

void wait_core::describe(const void* self, await_printer& out) {
    const auto* w = static_cast<const wait_core*>(self);
    out.text("wait, ");
    out.number(w->m_done);
    out.text(" of ");
    out.number(w->m_roots.size());
    out.text(" done");
}

void completion_queue::describe(const void* self, await_printer& out) {
    const auto* q = static_cast<const completion_queue*>(self);
    out.text("as_completed, ");
    out.number(q->m_remaining);
    out.text(" not handed out");
}

void remote_waiter::channel_send_phrase(const void* /*self*/, await_printer& out) {
    out.text("channel send (full)");
}
void remote_waiter::channel_recv_phrase(const void* /*self*/, await_printer& out) {
    out.text("channel recv");
}
void remote_waiter::future_phrase(const void* /*self*/, await_printer& out) {
    out.text("concurrent future wait");
}

void group_wait_awaiter::describe(const void* self, await_printer& out) {
    const auto* w = static_cast<const group_wait_awaiter*>(self);
    out.text("task_group wait");
    if (w->m_group != nullptr) {
        out.text(" (");
        out.number(w->m_group->m_running);
        out.text(" children running)");
    }
}

namespace {

std::vector<root_base*> live_roots(const loop_impl& im) {
    std::vector<root_base*> out;
    for (root_base* r = im.m_roots; r != nullptr; r = r->m_next) {
        if (!r->m_done) {
            out.push_back(r);
        }
    }
    std::sort(out.begin(), out.end(),
              [](const root_base* a, const root_base* b) { return a->m_id < b->m_id; });
    return out;
}

const char* state_of(const root_base& r) noexcept {
    if (r.own_slot().suspended()) {
        return "waiting";
    }
    if (r.own_slot().requested()) {
        return "cancel requested";
    }
    return "ready or running";
}

} // namespace
} // namespace detail

std::vector<task_ref> all_tasks() {
    event_loop& loop = event_loop::running();
    std::vector<task_ref> out;
    for (detail::root_base* r : detail::live_roots(*detail::core_of(loop).m_impl)) {
        out.emplace_back(*r);
    }
    return out;
}

std::string format_tasks() {
    event_loop& loop = event_loop::running();
    const std::vector<detail::root_base*> roots = detail::live_roots(*detail::core_of(loop).m_impl);
    detail::dump_writer w;
    w.out = std::to_string(roots.size()) + (roots.size() == 1 ? " task" : " tasks") + " on the " +
            std::string(loop.backend_name()) + " loop\n";
    for (detail::root_base* r : roots) {
        const std::string label = "task #" + std::to_string(r->m_id) + " '" + r->name() + "' (" +
                                  detail::state_of(*r) + "): ";
        w.chain(r->own_slot(), label);
    }
    return std::move(w.out);
}

void dump_tasks(std::FILE* out) {
    const std::string text = format_tasks();
    std::fwrite(text.data(), 1, text.size(), out);
    std::fflush(out);
}

void dump_tasks(std::ostream& out) {
    out << format_tasks();
    out.flush();
}

} // namespace coio
