// log_collector/push_server.hpp - --listen: accept syslog senders (RFC 6587).
#pragma once

#include "collector.hpp"

#include <coio/net/server.hpp>
#include <coio/task.hpp>

#include <cstdint>

namespace logcollect {

// Listen on opts.listen; every connection is read in chunks, split into
// messages (syslog_framing.hpp) and written out as records whose source is
// "push HOST:PORT" (the sender's address). No acknowledgements: the records
// are written with the next group commit. Each connection holds at most
// push_share(opts) bytes of a message. The server does the rest
// (coio::server_options): at --max-connections it stops accepting until a
// connection ends; --idle-timeout is the streams' idle_timeout; at shutdown
// run_collector calls close_clients(). --message-timeout bounds each read
// while a message is unfinished. Throws net_error naming the address if it
// cannot listen.
coio::task<coio::server> start_push_server(collector* c);

// What report_push() has said, between two calls.
struct push_report_state {
    std::uint64_t limit_waits = 0; // server_stats::limit_waits at the last call
    bool at_cap = false;           // the cap was reported and no place freed since
};

// Called once a second (main.cpp's housekeeping): one message for the
// connections closed by either timeout since the last call, and one when
// accepting paused at --max-connections (once until the count falls below
// the cap again).
void report_push(collector* c, const coio::server& srv, push_report_state& r);

} // namespace logcollect
