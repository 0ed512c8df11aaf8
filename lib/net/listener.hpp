// lib/net/listener.hpp - what start_server and start_unix_server share: the
// listening socket, the accept loop with its out-of-fds pause, the connection
// tasks and their count, close / serve_forever / wait_closed.
//
// server_state (TCP, server.cpp) and unix_server_state (unix.cpp) derive from
// listener_state and add what only they have: the local address and
// TCP_NODELAY, the socket file. The accept loop asks the state only which
// accept to await (a Unix peer address does not fit coio::address).
#pragma once

#include <coio/detail/wait_queue.hpp>
#include <coio/event_loop.hpp>
#include <coio/net/server.hpp>
#include <coio/net/socket.hpp>
#include <coio/task.hpp>

#include <memory>
#include <string>

namespace coio::detail {

class pause_awaiter;

struct listener_state {
    socket m_listener;
    std::string m_display; // how messages name the listener: "127.0.0.1:80", "/run/app.sock"
    connection_fn m_fn;
    event_loop* m_loop = nullptr;
    bool m_unix = false;    // accept with room for a sockaddr_un; name connections by the path
    bool m_nodelay = false; // TCP_NODELAY on each accepted socket
    bool m_closed = false;
    server_stats m_stats;
    wait_queue m_closed_q; // serve_forever
    wait_queue m_idle_q;   // wait_closed
    pause_awaiter* m_paused = nullptr;

    // Wakes a paused accept (an fd was freed, or the server closed).
    void wake_accept() noexcept;
    void connection_ended() noexcept;
    // Stops accepting: closes the listening socket (a pending accept completes
    // as cancelled) and wakes serve_forever, and wait_closed if idle.
    // Idempotent.
    void close() noexcept;
};

// Starts the accept loop as a task of the running loop, named "accept on
// <display>". `st` is set up and listening.
void start_accepting(std::shared_ptr<listener_state> st);

// serve_forever and wait_closed.
task<> wait_until_closed(std::shared_ptr<listener_state> st);
task<> wait_until_idle(std::shared_ptr<listener_state> st);

} // namespace coio::detail
