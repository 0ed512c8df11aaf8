// log_collector/push_clients.cpp - the registry of push connections
// (push_clients.hpp).
#include "push_clients.hpp"

#include <coio/net/socket.hpp>

namespace logcollect {

push_client::push_client(push_clients& registry, coio::socket& s) noexcept
    : m_registry(&registry), m_socket(&s), m_next(registry.m_head) {
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

} // namespace logcollect
