// lib/race.cpp - the non-template half of race (detail/race_state.hpp).
#include <coio/cancel.hpp>
#include <coio/detail/race_state.hpp>

#include <stdexcept>

namespace coio::detail {

race_core::race_core(std::size_t n) : gather_core(n, false) {
    if (n == 0) {
        throw std::invalid_argument("coio::race: no awaitables to race");
    }
}

bool race_core::begin(std::coroutine_handle<> parent, loop_core* loop, cancel_slot* parent_slot) {
    return start(parent, &core_or_running(loop), parent_slot);
}

void race_core::child_done(std::size_t index) noexcept {
    if (m_winner != no_winner) {
        return;
    }
    m_winner = index;
    for (std::size_t i = 0; i < m_count; ++i) {
        if (i != index) {
            m_slots[i].request(); // a hook only posts: nothing runs here
        }
    }
}

std::size_t race_core::end(bool winner_cancelled, bool keep) {
    if (m_parent_slot != nullptr) {
        m_parent_slot->detach();
    }
    if (m_cancelled && (m_winner == no_winner || (winner_cancelled && !keep))) {
        m_parent_slot->consume();
        throw cancelled_error{};
    }
    return m_winner;
}

} // namespace coio::detail
