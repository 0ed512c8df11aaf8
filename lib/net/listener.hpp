// lib/net/listener.hpp - what start_server and start_unix_server share: the
// listening sockets with one accept loop each (and its out-of-fds pause),
// the connection limit, the connection tasks with their client list,
// close / close_clients / abort_clients / serve_forever / wait_closed.
//
// server_state (TCP, server.cpp) and unix_server_state (unix.cpp) derive from
// listener_state and add what only they have: the local addresses and
// TCP_NODELAY, the socket file. The accept loop asks the state only which
// accept to await (a Unix peer address does not fit coio::address).
#pragma once

#include "net/connection_node.hpp"

#include <coio/detail/wait_queue.hpp>
#include <coio/event_loop.hpp>
#include <coio/net/server.hpp>
#include <coio/net/socket.hpp>
#include <coio/task.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace coio::detail {

class pause_awaiter;

// One bound and listening socket of a server.
struct listening_socket {
    socket m_sock;
    std::string m_display; // how messages name it: "127.0.0.1:80", "/run/app.sock"
    pause_awaiter* m_paused = nullptr;
};

struct listener_state {
    listener_state() = default;
    listener_state(const listener_state&) = delete;
    listener_state& operator=(const listener_state&) = delete;
    virtual ~listener_state() = default;

    // Built before start_accepting and never resized after: each accept loop
    // holds a reference to its element.
    std::vector<listening_socket> m_listeners;
    connection_fn m_fn;
    event_loop* m_loop = nullptr;
    bool m_unix = false;    // accept with room for a sockaddr_un; name connections by the path
    bool m_nodelay = false; // TCP_NODELAY on each accepted socket
    bool m_closed = false;
    std::size_t m_max_connections = 0; // 0: no limit
    server_stats m_stats;
    wait_queue m_closed_q; // serve_forever
    wait_queue m_idle_q;   // wait_closed
    wait_queue m_room_q;   // accept loops waiting below the connection limit

    // Connections whose handler runs (nodes in their tasks' frames), and
    // the close_clients / abort_clients calls so far: a connection accepted
    // before one of them but not started yet applies it when it starts.
    connection_node* m_clients = nullptr;
    std::uint32_t m_epoch = 0;       // bumped by each call
    std::uint32_t m_close_epoch = 0; // m_epoch after the last close_clients
    std::uint32_t m_abort_epoch = 0; // m_epoch after the last abort_clients
    // Connection tasks (frames, started or not) and, while there are any,
    // the reference they keep the state alive with (listener.cpp:
    // connection_ref).
    std::size_t m_task_refs = 0;
    std::shared_ptr<listener_state> m_keepalive;

    [[nodiscard]] bool at_limit() const noexcept {
        return m_max_connections != 0 && m_stats.active >= m_max_connections;
    }
    // Wakes paused accepts and accepts waiting at the limit (an fd or a
    // place was freed, or the server closed).
    void wake_accept() noexcept;
    void connection_ended() noexcept;
    void link(connection_node& n) noexcept;
    void unlink(connection_node& n) noexcept;
    // Stops accepting: closes the listening sockets (a pending accept
    // completes as cancelled) and wakes serve_forever, and wait_closed if
    // idle; then on_close(). Idempotent.
    void close() noexcept;
    void close_clients(bool abort) noexcept;

protected:
    // After the listening sockets are closed (unix_server removes its file).
    virtual void on_close() noexcept {}
};

// Starts one accept loop per listening socket, as tasks of the running loop
// named "accept on <display>". `st` is set up and listening.
void start_accepting(const std::shared_ptr<listener_state>& st);

} // namespace coio::detail
