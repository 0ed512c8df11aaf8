// log_collector/source_task.hpp - one task per pull source.
#pragma once

#include "collector.hpp"

#include <coio/net/address.hpp>
#include <coio/task.hpp>

namespace logcollect {

// Connect to `at`, read it in chunks of opts.chunk_size, write its lines out
// and acknowledge each with "ACK\n" once written; on EOF, reset, refusal or a
// timeout (--connect-timeout; TCP keepalive for a source that vanished;
// --ack-timeout for one that does not take its ACKs: that connection is
// reset), reconnect after a backoff - forever, until cancelled. Cancelling it is the
// clean stop: what was received and is complete is written and acknowledged,
// then the connection is closed (waiting at most 2 s for the ACKs to go out).
// With `tls` (a tls:// source, or every source with --tls-ca alone) the TLS
// handshake follows the connect (sh->pull_tls). `st` is this source's entry
// in c->sources; the task runs on `sh`'s loop and its records go through
// `sh` (collector.hpp).
coio::task<> pull_source(shard* sh, source_stats* st, coio::address at, bool tls);

} // namespace logcollect
