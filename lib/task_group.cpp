// lib/task_group.cpp - the non-template half of task_group (task_group.hpp,
// detail/task_group_state.hpp).
#include "exception_text.hpp"

#include <coio/task_group.hpp>

#include <cstdio>
#include <stdexcept>
#include <string>
#include <utility>

namespace coio {

exception_group::exception_group(const std::string& context,
                                 std::vector<std::exception_ptr> exceptions)
    : m_exceptions(std::move(exceptions)) {
    const std::size_t n = m_exceptions.size();
    m_message = "unhandled errors in " + context + " (" + std::to_string(n) +
                (n == 1 ? " sub-exception)" : " sub-exceptions)");
    const char* sep = ": ";
    for (const std::exception_ptr& e : m_exceptions) {
        m_message += sep + detail::describe_exception(e);
        sep = "; ";
    }
}

task_group::~task_group() {
    if (m_waiter != nullptr) {
        // Awaited from another frame that outlives us: wake it with an error.
        detail::group_wait_awaiter& w = *std::exchange(m_waiter, nullptr);
        w.m_orphaned = true;
        w.m_group = nullptr;
        w.m_loop->post(w.m_handle);
    }
    // Detach: the loop owns the children's frames; they finish cancelled.
    while (m_head != nullptr) {
        detail::group_node& n = *m_head;
        detail::root_base& r = *n.m_root;
        unlink(n);
        r.own_slot().request();
    }
    if (m_body_error) {
        m_errors.push_back(m_body_error);
    }
    event_loop* loop = m_loop != nullptr ? m_loop : event_loop::current();
    for (const std::exception_ptr& e : m_errors) {
        std::string msg =
            "task_group destroyed without wait(); a child raised: " + detail::describe_exception(e);
        if (loop != nullptr) {
            loop->call_exception_handler({msg, {}, e});
        } else {
            std::fprintf(stderr, "coio: %s\n", msg.c_str());
        }
    }
}

event_loop& task_group::check_open() {
    if (m_finished) {
        throw std::logic_error("coio::task_group: create_task on a finished group");
    }
    if (m_loop == nullptr) {
        m_loop = &event_loop::running();
    }
    return *m_loop;
}

void task_group::adopt(detail::group_node& n, detail::root_base& r) noexcept {
    n.m_group = this;
    n.m_root = &r;
    n.m_prev = nullptr;
    n.m_next = m_head;
    if (m_head != nullptr) {
        m_head->m_prev = &n;
    }
    m_head = &n;
    ++m_running;
    if (m_aborting) {
        r.own_slot().request(); // run_in_group sees it before running the body
    }
}

void task_group::unlink(detail::group_node& n) noexcept {
    (n.m_prev != nullptr ? n.m_prev->m_next : m_head) = n.m_next;
    if (n.m_next != nullptr) {
        n.m_next->m_prev = n.m_prev;
    }
    n.m_prev = n.m_next = nullptr;
    n.m_group = nullptr;
    --m_running;
}

void task_group::child_done(detail::group_node& n, std::exception_ptr e) noexcept {
    unlink(n);
    if (e && !detail::is_cancelled(e)) {
        n.m_root->m_retrieved = true; // the group reports it
        m_errors.push_back(std::move(e));
        abort();
    }
    if (m_running == 0 && m_waiter != nullptr && !m_finished) {
        m_finished = true; // asyncio: exiting with no task left is "finished"
        m_waiter->m_loop->post(m_waiter->m_handle);
    }
}

void task_group::abort() noexcept {
    if (m_aborting) {
        return; // children created since were cancelled by adopt()
    }
    m_aborting = true;
    // Hooks only post, so no child finishes (and unlinks) during this loop.
    for (detail::group_node* n = m_head; n != nullptr; n = n->m_next) {
        n->m_root->own_slot().request();
    }
    if (m_body_slot != nullptr) {
        m_body_slot->request();
    }
}

namespace detail {

group_node::~group_node() {
    if (m_group != nullptr) {
        m_group->unlink(*this);
    }
}

void group_node::done(std::exception_ptr e) noexcept {
    m_group->child_done(*this, std::move(e));
}

group_wait_awaiter::~group_wait_awaiter() {
    if (m_group != nullptr && m_group->m_waiter == this) {
        m_group->m_waiter = nullptr;
        if (m_slot != nullptr) {
            m_slot->detach();
        }
    }
}

bool group_wait_awaiter::suspend(std::coroutine_handle<> h, loop_core* loop, cancel_slot* slot) {
    task_group& g = *m_group;
    if (g.m_waiter != nullptr) {
        throw std::logic_error("coio::task_group: wait() is already being awaited");
    }
    m_handle = h;
    m_loop = loop != nullptr ? loop : &running_loop_core();
    m_slot = slot;
    if (slot != nullptr && slot->requested()) {
        m_cancelled = true;
        g.abort();
    }
    if (g.m_running == 0) {
        g.m_finished = true;
        return false;
    }
    g.m_waiter = this;
    if (slot != nullptr && !m_cancelled) {
        slot->attach(detail::hook_of<&on_cancel, &describe>, this);
    }
    return true;
}

void group_wait_awaiter::on_cancel(void* self) noexcept {
    auto* w = static_cast<group_wait_awaiter*>(self);
    w->m_cancelled = true;
    if (w->m_group != nullptr) {
        w->m_group->abort();
    }
}

void group_wait_awaiter::await_resume() {
    if (m_slot != nullptr) {
        m_slot->detach();
    }
    if (m_orphaned) {
        throw std::logic_error("coio::task_group: destroyed while wait() was awaited");
    }
    task_group& g = *m_group;
    g.m_waiter = nullptr;
    g.m_finished = true;
    std::vector<std::exception_ptr> errors = std::move(g.m_errors);
    g.m_errors.clear();
    if (g.m_body_error) {
        errors.push_back(std::exchange(g.m_body_error, nullptr));
    }
    if (!errors.empty()) {
        throw exception_group("a task_group", std::move(errors));
    }
    if (m_cancelled) {
        m_slot->consume();
        throw cancelled_error{};
    }
}

void set_body_slot(task_group& g, cancel_slot* slot) noexcept {
    g.m_body_slot = slot;
    if (slot != nullptr && g.m_aborting) {
        slot->request();
    }
}

group_wait_awaiter wait_after_body(task_group& g, std::exception_ptr e) {
    if (e) {
        if (!is_cancelled(e)) {
            g.m_body_error = std::move(e);
        }
        g.abort();
    }
    return group_wait_awaiter(g);
}

} // namespace detail
} // namespace coio
