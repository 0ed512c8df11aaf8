// lib/net/connection_node.hpp - one accepted connection in its server's
// client list, for close_clients() / abort_clients().
//
// The node lives in the connection task's frame (listener.cpp), so tracking
// a connection allocates nothing: two links, the task's cancel slot, the
// peer's address, the socket and, for stream handlers, the stream state. A
// stream state and its node point to each other while both exist; whichever
// goes first clears the other's pointer (stream.cpp, listener.cpp).
#pragma once

#include <coio/detail/cancel_slot.hpp>
#include <coio/net/address.hpp>

namespace coio::detail {

struct stream_state;

struct connection_node {
    connection_node* m_prev = nullptr;
    connection_node* m_next = nullptr;
    cancel_slot* m_slot = nullptr;    // the connection task's: close_clients cancels it
    stream_state* m_stream = nullptr; // the handler's streams while they exist
    address m_peer;                   // as accept reported it; empty for a Unix peer
    int m_fd = -1;                    // the accepted socket's fd (see abort_raw in listener.cpp)
    bool m_linked = false;
};

// stream.cpp: what close_clients / abort_clients do to a stream connection.
// close_stream is stream_writer::close() (flush, then close); abort_stream
// drops what is buffered and resets the connection (SO_LINGER 0). Both end
// a read or drain in progress.
void close_stream(stream_state& s) noexcept;
void abort_stream(stream_state& s) noexcept;
// The node is going away: the stream state forgets it.
void unlink_stream(stream_state& s) noexcept;

} // namespace coio::detail
