// lib/gather.cpp - the non-template half of gather (gather_state.hpp).
#include <coio/cancel.hpp>
#include <coio/detail/gather_state.hpp>
#include <coio/detail/root.hpp>

namespace coio::detail {

bool gather_core::start(std::coroutine_handle<> parent, loop_core* loop, cancel_slot* parent_slot,
                        const cancel_hook& hook) noexcept {
    m_parent_slot = parent_slot;
    if (parent_slot != nullptr && parent_slot->requested()) {
        m_cancelled = true; // children never start; their frames are just destroyed
        return false;
    }
    m_counter.m_parent = parent;
    m_counter.m_loop = loop;
    m_counter.m_remaining = m_count;
    for (std::size_t i = 0; i < m_count; ++i) {
        auto& p = m_children[i].m_h.promise();
        p.m_loop = loop;
        p.m_slot = &m_slots[i];
        p.m_counter = &m_counter;
        m_slots[i].m_root = root_of(parent_slot);
        loop->post(m_children[i].m_h);
    }
    if (parent_slot != nullptr) {
        parent_slot->attach(hook, this);
    }
    return true;
}

void gather_core::on_cancel(void* self) noexcept {
    auto* g = static_cast<gather_core*>(self);
    g->m_cancelled = true;
    for (std::size_t i = 0; i < g->m_count; ++i) {
        g->m_slots[i].request();
    }
}

void gather_core::finish() {
    if (m_parent_slot != nullptr) {
        m_parent_slot->detach();
    }
    if (m_cancelled) {
        m_parent_slot->consume();
        throw cancelled_error{};
    }
    if (m_rethrow && m_counter.m_failed) {
        std::rethrow_exception(m_counter.m_first_error);
    }
}

} // namespace coio::detail
