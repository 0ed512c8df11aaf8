// log_collector/options.hpp - the command line of coio-logcollect.
#pragma once

#include "record_format.hpp"

#include <coio/net/address.hpp>

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

namespace logcollect {

struct options {
    std::vector<coio::address> sources; // pull sources, in the order given, no duplicates
    // Per sources entry: connect over TLS (tls://HOST:PORT; with --tls-ca and
    // no tls:// source, every source).
    std::vector<bool> source_tls;
    std::string output = "-";
    output_format format = output_format::plain;
    std::size_t chunk_size = 1024;
    std::size_t max_line = 65536;
    std::chrono::milliseconds backoff_min{100};
    std::chrono::milliseconds backoff_max{10000};
    std::chrono::milliseconds stats_interval{10000}; // 0: no stats lines
    // Timeouts; 0 turns each off.
    std::chrono::milliseconds connect_timeout{10000}; // pull: connect
    std::chrono::seconds keepalive{30};               // pull: TCP keepalive idle time
    std::chrono::milliseconds ack_timeout{30000};     // pull: ACKs not taken for this long
    std::chrono::milliseconds idle_timeout{300000};   // push: nothing received for this long
    std::chrono::milliseconds message_timeout{30000}; // push: a message unfinished for this long
    std::optional<coio::address> listen;              // push mode
    std::optional<coio::address> listen_tls;          // push mode over TLS (RFC 5425)
    std::string tls_cert; // --listen-tls: our certificate chain; with --tls-ca: the client's
    std::string tls_key;  // and its key
    std::string tls_ca;   // TLS pull sources are verified against these CAs
    std::size_t max_connections = 1024;   // push connections open at once, all loops together
    std::size_t push_memory = 64U << 20U; // unfinished push messages, all together
    std::size_t max_frame = 65536;        // longest octet-counted push frame
    std::size_t loops =
        1; // event loops (threads); 0 = available_cores(), resolved by parse_options
    bool sync = false;
    int status = -1; // --status / --no-status; -1: when stderr is a terminal
};

// Push listeners: --listen and --listen-tls (0, 1 or 2).
[[nodiscard]] inline std::size_t push_listeners(const options& o) noexcept {
    return (o.listen ? 1U : 0U) + (o.listen_tls ? 1U : 0U);
}

// The loops (parse_options resolves --loops 0 to the core count; at least 1).
[[nodiscard]] inline std::size_t loop_count(const options& o) noexcept {
    return o.loops > 0 ? o.loops : 1;
}

// --max-connections is for all loops together: each loop's listener takes
// max_connections / loops of them, rounded up (so with N loops up to N - 1
// more may be open in all). SO_REUSEPORT spreads senders over the loops by
// a hash of their address, so a loop at its share pauses accepting while
// another may still have room.
[[nodiscard]] inline std::size_t loop_connections(const options& o) noexcept {
    return (o.max_connections + loop_count(o) - 1) / loop_count(o);
}

// What one push connection may hold of an unfinished message:
// min(max_line, push_memory / (loop_connections * loops * listeners)): each
// listener has its own --max-connections, split over the loops. Longer
// messages are written in pieces of that size, so all of them together hold
// at most push_memory.
[[nodiscard]] inline std::size_t push_share(const options& o) noexcept {
    const std::size_t listeners = push_listeners(o) > 0 ? push_listeners(o) : 1;
    const std::size_t share = o.push_memory / (loop_connections(o) * loop_count(o) * listeners);
    return share < o.max_line ? share : o.max_line;
}

// The most --loops accepts.
constexpr std::size_t max_loops = 256;

enum class parse_result {
    run,         // go on with the options
    exit_ok,     // --help, --version, --list-backends done
    usage_error, // message printed; exit 2
    failure,     // --sources FILE unreadable (message has the errno text); exit 1
};

// Exit codes.
constexpr int exit_ok = 0;
constexpr int exit_failure = 1; // a runtime failure: output, listen, backend
constexpr int exit_usage = 2;

// Parse argv into `o`. Prints help/version/backends to stdout and errors
// (with a hint to --help) to stderr.
parse_result parse_options(int argc, char** argv, options& o);

void print_help(std::FILE* out);

} // namespace logcollect
