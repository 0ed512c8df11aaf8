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
//  - admit() caps the connections open at once (--max-connections): one
//    more is closed as soon as it is accepted, as rsyslog's MaxSessions
//    does. server_options::max_connections will replace it, and then accept
//    pauses at the cap instead (the extra senders wait in the backlog).
//  - close_expired() closes the connections that sent nothing for
//    --idle-timeout, or whose message stays unfinished for --message-timeout
//    (a sender trickling bytes to hold a connection: slowloris). The
//    collector's housekeeping task calls it once a second, so it costs a
//    timestamp per read, not a timer per connection.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace coio {
class socket;
}

namespace logcollect {

class push_clients;

// One registered connection: lives in the connection's frame, unregisters
// itself when that frame ends (also by an exception at loop teardown).
class push_client {
public:
    using clock = std::chrono::steady_clock;

    push_client(push_clients& registry, coio::socket& s) noexcept;
    ~push_client();
    push_client(const push_client&) = delete;
    push_client& operator=(const push_client&) = delete;

    // Data arrived: `finished` - a message ended in it; `unfinished` - a
    // message is begun and not finished after it.
    void on_data(clock::time_point now, bool finished, bool unfinished) noexcept {
        m_last_data = now;
        if (!unfinished) {
            m_message_since = {};
        } else if (finished || m_message_since == clock::time_point{}) {
            m_message_since = now;
        }
    }
    // close_expired() closed it (the read then completes cancelled).
    [[nodiscard]] bool expired() const noexcept { return m_expired; }

private:
    friend class push_clients;
    push_clients* m_registry;
    coio::socket* m_socket;
    push_client* m_prev = nullptr;
    push_client* m_next = nullptr;
    clock::time_point m_last_data;     // accepted, or the last data
    clock::time_point m_message_since; // the unfinished message began; {} if none
    bool m_expired = false;
};

class push_clients {
public:
    explicit push_clients(std::size_t max_connections) noexcept : m_max(max_connections) {}
    push_clients(const push_clients&) = delete;
    push_clients& operator=(const push_clients&) = delete;

    // Connections open now.
    [[nodiscard]] std::size_t size() const noexcept { return m_size; }
    // May one more connection run? false at the cap: the caller closes it.
    bool admit() noexcept {
        if (m_size < m_max) {
            m_refused_in_a_row = 0;
            return true;
        }
        ++m_refused_in_a_row;
        return false;
    }
    // Connections refused since the last one admitted (1: a new streak).
    [[nodiscard]] std::uint64_t refused_in_a_row() const noexcept { return m_refused_in_a_row; }
    // Shutdown: close every connection's socket.
    void close_all() noexcept;

    struct expired_count {
        std::size_t idle = 0;    // nothing received for `idle`
        std::size_t message = 0; // a message unfinished for `message`
    };
    // Close the connections past either limit (a zero duration: no limit).
    expired_count close_expired(push_client::clock::time_point now, std::chrono::milliseconds idle,
                                std::chrono::milliseconds message) noexcept;

private:
    friend class push_client;
    push_client* m_head = nullptr;
    std::size_t m_size = 0;
    std::size_t m_max;
    std::uint64_t m_refused_in_a_row = 0;
};

} // namespace logcollect
