// log_collector/push_server.hpp - --listen / --listen-tls: accept syslog
// senders (RFC 6587 over TCP, RFC 5425 over TLS).
#pragma once

#include "collector.hpp"

#include <coio/net/server.hpp>
#include <coio/task.hpp>

#include <cstdint>

namespace logcollect {

// On `sh`'s loop: listen on opts.listen, or with `tls` on opts.listen_tls with a server
// tls_context made of --tls-cert / --tls-key; every connection (after its
// handshake, for TLS) is read in chunks, split into messages
// (syslog_framing.hpp: RFC 5425 is RFC 6587's octet counting over TLS, and
// an LF-framed TLS sender is read too) and written out as records whose
// source is "push HOST:PORT" (the sender's address; "push tls HOST:PORT"
// over TLS). No acknowledgements: the records are written with the next
// group commit. Each connection holds at most push_share(opts) bytes of a
// message. With several loops every loop listens on the same port
// (SO_REUSEPORT; loops other than 0 bind the port loop 0 got, from
// c->listen_port / listen_tls_port) and its connections run on it, their
// records going through `sh`. The server does the rest
// (coio::server_options): at its share of --max-connections
// (loop_connections) it stops accepting until a connection ends;
// --idle-timeout is the streams' idle_timeout; at shutdown run_collector
// calls close_clients(). --message-timeout bounds each read while a message
// is unfinished, and a TLS handshake. A failed TLS handshake closes that
// connection and is reported by the loop's exception handler (one line
// naming the peer and OpenSSL's reason). Throws net_error naming the address
// if it cannot listen, tls_error (a net_error) naming the file if the
// certificate or key cannot be used.
coio::task<coio::server> start_push_server(shard* sh, bool tls);

// What report_push_cap() has said about one listener, between two calls.
struct push_report_state {
    std::uint64_t limit_waits = 0; // server_stats::limit_waits at the last call
    bool at_cap = false;           // the cap was reported and no place freed since
};

// Called once a second (main.cpp's housekeeping): one message for the
// connections closed by either timeout since the last call (all listeners
// together), and one per listener when accepting paused at
// --max-connections (once until the count falls below the cap again). Each
// loop for its own listeners.
void report_push_expired(shard* sh);
void report_push_cap(shard* sh, const coio::server& srv, bool tls, push_report_state& r);

} // namespace logcollect
