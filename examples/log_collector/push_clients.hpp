// log_collector/push_clients.hpp - the open push connections, for what
// coio's server does not do for us yet.
//
// Each push connection registers itself (a push_client node in its own
// frame, so registering allocates nothing) for as long as it runs. The
// registry then does, in one place, what the server will do itself once
// another change lands - so the swap is a few lines here:
//  - close_all() at shutdown closes every connection's socket (the pending
//    read completes cancelled; the connection writes what it received and
//    ends): coio::server::close_clients() will replace it.
#pragma once

#include <cstddef>

namespace coio {
class socket;
}

namespace logcollect {

class push_clients;

// One registered connection: lives in the connection's frame, unregisters
// itself when that frame ends (also by an exception at loop teardown).
class push_client {
public:
    push_client(push_clients& registry, coio::socket& s) noexcept;
    ~push_client();
    push_client(const push_client&) = delete;
    push_client& operator=(const push_client&) = delete;

private:
    friend class push_clients;
    push_clients* m_registry;
    coio::socket* m_socket;
    push_client* m_prev = nullptr;
    push_client* m_next = nullptr;
};

class push_clients {
public:
    push_clients() = default;
    push_clients(const push_clients&) = delete;
    push_clients& operator=(const push_clients&) = delete;

    // Connections open now.
    [[nodiscard]] std::size_t size() const noexcept { return m_size; }
    // Shutdown: close every connection's socket.
    void close_all() noexcept;

private:
    friend class push_client;
    push_client* m_head = nullptr;
    std::size_t m_size = 0;
};

} // namespace logcollect
