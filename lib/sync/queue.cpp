// lib/sync/queue.cpp - the part of basic_queue that does not depend on T.
#include <coio/sync/queue.hpp>

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace coio::detail {

queue_base::queue_base(std::size_t maxsize) noexcept : m_maxsize(maxsize) {
    m_finished.set(); // nothing unfinished yet
}

void queue_base::task_done() {
    if (m_unfinished == 0) {
        throw std::logic_error("coio::queue: task_done() called more times than items were put");
    }
    if (--m_unfinished == 0) {
        m_finished.set();
    }
}

void queue_base::admit_putters(std::size_t stored) noexcept {
    while (!full_with(stored)) {
        sync_waiter* w = m_putters.front();
        if (w == nullptr) {
            return;
        }
        static_cast<queue_putter&>(*w).m_reserved = true;
        ++m_reserved;
        m_putters.grant(*w);
    }
}

bool queue_base::putter_resume(queue_putter& p, std::size_t stored) {
    const wake how = p.outcome();
    const bool reserved = std::exchange(p.m_reserved, false);
    if (reserved) {
        --m_reserved; // used now, or passed on below
    }
    if (how == wake::cancelled) {
        p.throw_cancelled();
    }
    if (how == wake::revoked) {
        if (reserved) {
            admit_putters(stored); // the space goes to the next in line
        }
        p.throw_cancelled();
    }
    if (m_shutdown) {
        throw queue_shutdown{};
    }
    return true;
}

void queue_base::shut_down(bool immediate, std::size_t dropped) noexcept {
    m_shutdown = true;
    if (immediate && !m_immediate) {
        m_immediate = true;
        // Items handed to getters that have not run are dropped too.
        const std::size_t n = std::min(m_unfinished, dropped + m_in_flight);
        m_unfinished -= n;
        if (m_unfinished == 0) {
            m_finished.set();
        }
    }
    while (sync_waiter* w = m_getters.front()) {
        m_getters.grant(*w); // no item: throws queue_shutdown
    }
    while (sync_waiter* w = m_putters.front()) {
        m_putters.grant(*w); // no space: throws queue_shutdown
    }
}

} // namespace coio::detail
