// loadgen_connection.hpp — one load-generator connection's state, shared by the two files
// of loadgen_worker (loadgen_setup.cpp opens and recycles it, loadgen_worker.cpp drives
// the load). Private to loadgen.
#pragma once

#include "loadgen_worker.hpp"

#include <cstdint>

namespace bench {

struct loadgen_worker::connection {
    int fd = -1;
    std::uint64_t id = 0;
    // The byte stream is request 0, 1, 2, ... of `size` bytes each. (send_seq, send_off) is
    // the next byte to send, (recv_seq, recv_off) the next byte expected back.
    std::uint64_t send_seq = 0;
    std::uint64_t send_off = 0;
    std::uint64_t recv_seq = 0;
    std::uint64_t recv_off = 0;
    std::uint64_t limit = 0; // requests this connection may start
    // TLS: an SSL_write that wanted the socket writable must be repeated with at least the
    // same bytes, so the stream up to this offset is sent whatever limit and depth say.
    std::uint64_t retry_end = 0;
    std::int64_t opened_at = 0; // --reconnect: the cycle's latency runs from here
    SSL* ssl = nullptr;         // --tls
    bool connected = false;     // TCP connected
    bool ready = false;         // connected, and the TLS handshake done (if any)
    bool dead = false;
};

// Each worker process reports its failure itself and leaves at once: the other threads'
// state is of no use after a wrong echo, and the parent (if any) sees status 1.
[[noreturn]] void hard_fail();

} // namespace bench
