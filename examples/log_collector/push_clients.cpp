// log_collector/push_clients.cpp - the registry of push connections
// (push_clients.hpp).
#include "push_clients.hpp"

#include <coio/net/socket.hpp>

namespace logcollect {

push_client::push_client(push_clients& registry, coio::socket& s) noexcept
    : m_registry(&registry), m_socket(&s), m_next(registry.m_head), m_last_data(clock::now()) {
    if (m_next != nullptr) {
        m_next->m_prev = this;
    }
    registry.m_head = this;
    ++registry.m_size;
}

push_client::~push_client() {
    (m_prev != nullptr ? m_prev->m_next : m_registry->m_head) = m_next;
    if (m_next != nullptr) {
        m_next->m_prev = m_prev;
    }
    --m_registry->m_size;
}

void push_clients::close_all() noexcept {
    for (push_client* p = m_head; p != nullptr; p = p->m_next) {
        p->m_socket->close(); // the pending read completes as cancelled
    }
}

push_clients::expired_count
push_clients::close_expired(push_client::clock::time_point now, std::chrono::milliseconds idle,
                            std::chrono::milliseconds message) noexcept {
    expired_count n;
    for (push_client* p = m_head; p != nullptr; p = p->m_next) {
        if (p->m_expired) {
            continue; // closed already; its frame has not run since
        }
        if (idle.count() > 0 && now - p->m_last_data >= idle) {
            ++n.idle;
        } else if (message.count() > 0 && p->m_message_since != push_client::clock::time_point{} &&
                   now - p->m_message_since >= message) {
            ++n.message;
        } else {
            continue;
        }
        p->m_expired = true;
        p->m_socket->close();
    }
    return n;
}

} // namespace logcollect
