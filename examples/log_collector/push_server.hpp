// log_collector/push_server.hpp - --listen: accept syslog senders (RFC 6587).
#pragma once

#include "collector.hpp"

#include <coio/net/server.hpp>
#include <coio/task.hpp>

namespace logcollect {

// Listen on opts.listen; every connection is read in chunks, split into
// messages (syslog_framing.hpp) and written out as records whose source is
// "push HOST:PORT" (the sender's address). No acknowledgements: the records
// are written with the next group commit. Each connection registers in
// c->push_conns (push_clients.hpp: the cap, the timeouts, the close at
// shutdown) and holds at most push_share(opts) bytes of a message. Throws
// net_error naming the address if it cannot listen.
coio::task<coio::server> start_push_server(collector* c);

} // namespace logcollect
