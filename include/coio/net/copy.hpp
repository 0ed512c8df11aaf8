// coio/net/copy.hpp - copy_bidirectional (Tokio's io::copy_bidirectional):
// the heart of a proxy.
//
//   coio::copy_result r = co_await coio::copy_bidirectional(std::move(client),
//                                                           std::move(upstream),
//                                                           {.idle_timeout = 60s});
//
// Copies a -> b and b -> a at the same time until both directions have
// ended, then closes both sockets, and returns the bytes copied each way.
// What ends a direction is passed on to the other side as what it was:
//  - EOF from one side (its peer half-closed) -> shutdown(SHUT_WR) of the
//    other (the other peer reads EOF and may still send: the opposite
//    direction goes on);
//  - a reset (ECONNRESET) or another read or write error -> abort() of the
//    other side (it gets a reset too), and the copy ends;
//  - idle_timeout without a byte moving either way -> both are reset
//    (timed_out is set).
// Reads use read_chunk (the loop lends the buffers: an idle proxied pair
// holds none). Both sockets are closed when it returns; cancelling the
// await stops both directions and closes both sockets (with a FIN). Does not throw for network
// outcomes; throws cancelled_error when cancelled. Takes both sockets (by value: a coroutine's
// parameters must own what they use).
#pragma once

#include <coio/net/socket.hpp>
#include <coio/task.hpp>

#include <chrono>
#include <cstdint>

namespace coio {

struct copy_options {
    // No byte either way for this long resets both sides; zero: no limit.
    std::chrono::milliseconds idle_timeout{0};
};

struct copy_result {
    std::uint64_t a_to_b = 0; // bytes read from a and written to b
    std::uint64_t b_to_a = 0;
    bool reset = false;     // a reset or an error on one side was passed on as a reset
    bool timed_out = false; // idle_timeout ended the copy
};

task<copy_result> copy_bidirectional(socket a, socket b, copy_options opts = {});

} // namespace coio
