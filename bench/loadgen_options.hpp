// loadgen_options.hpp — the load generator's command line, and the loopback-only target
// check: the tool refuses any host outside 127.0.0.0/8 and ::1, so a benchmark can never
// be pointed at another machine by mistake.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <vector>

namespace bench {

struct loadgen_options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 0; // required
    std::uint32_t connections = 1;
    std::size_t size = 64;       // bytes per request
    std::uint32_t depth = 1;     // pipelined requests in flight per connection
    double duration_s = 5.0;     // measured time
    double warmup_s = 1.0;       // load runs but nothing is recorded
    std::uint32_t threads = 1;   // worker threads per process
    std::vector<int> cpus;       // empty = no pinning
    bool idle = false;           // --idle: connect, one round trip each, hold
    double hold_s = 10.0;        // --hold: how long --idle keeps the connections
    double setup_timeout_s = 30; // connecting (and the idle round trip) must finish by then
    double drain_timeout_s = 5;  // after the run: longest silence while echoes are missing
    // --reconnect: each connection does connect (+ handshake) + one echo + close, over and
    // over; "requests" then counts these cycles (connections per second).
    bool reconnect = false;

    // TLS (--tls): the client side over OpenSSL. Without --tls-ca the server's certificate
    // is not verified (a benchmark against a throwaway certificate).
    bool tls = false;
    std::string tls_ca;                                      // --tls-ca FILE: verify, IP 127.0.0.1
    std::string tls_ciphersuites = "TLS_AES_128_GCM_SHA256"; // --tls-ciphersuites (TLS 1.3)
    std::string tls_ciphers;                                 // --tls-ciphers (TLS 1.2 list)
    int tls_version = 13;                                    // --tls-version 1.2|1.3: pinned
    bool tls_resume = false; // --tls-resume: --reconnect offers the last session (else full)

    // Resolved target; filled by parse_loadgen_options.
    sockaddr_storage addr{};
    socklen_t addr_len = 0;
    std::string addr_text; // "127.0.0.1:PORT" or "[::1]:PORT", for messages
};

// Parses argv; prints usage and exits 2 on a bad or non-loopback argument.
loadgen_options parse_loadgen_options(int argc, char** argv);

} // namespace bench
