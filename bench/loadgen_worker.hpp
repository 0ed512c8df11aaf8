// loadgen_worker.hpp — one load-generator thread: a share of the connections on its own
// non-blocking sockets and edge-triggered epoll set, each connection keeping `depth`
// requests in flight and checking every echoed byte against echo_pattern.
//
// With --tls every connection runs a TLS handshake (loadgen_tls.hpp) before it counts as
// connected, and all bytes go through its session; with --reconnect a connection that has
// had its one echo is closed and opened again (a new handshake) until the run ends.
//
// Failures: a connect error, a setup timeout or a corrupted echo is a hard failure — the
// worker prints which connection and where, and ends the process with status 1 (a wrong
// benchmark number is worse than none). A connection the server closes or resets during
// the measured run is counted in `errors` and dropped; the others go on.
#pragma once

#include "echo_pattern.hpp"
#include "latency_histogram.hpp"
#include "loadgen_options.hpp"
#include "loadgen_tls.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace bench {

// The receive buffer each worker reads into.
inline constexpr std::size_t k_scratch_size = 64 * 1024;

struct worker_result {
    latency_histogram latency; // ns, requests completed inside the measured window
    std::uint64_t requests = 0;
    std::uint64_t errors = 0;
    // The measured window, CLOCK_MONOTONIC ns (0 in idle mode): a harness that samples the
    // server's CPU time during the run can cut out exactly this window.
    std::int64_t window_from_ns = 0;
    std::int64_t window_to_ns = 0;
};

class loadgen_worker {
public:
    // Connections get the global ids [first_id, first_id + count); the id seeds the payload.
    loadgen_worker(const loadgen_options& opts, const echo_pattern& pattern, std::uint64_t first_id,
                   std::uint32_t count, bool spread_sources);
    ~loadgen_worker();
    loadgen_worker(const loadgen_worker&) = delete;
    loadgen_worker& operator=(const loadgen_worker&) = delete;

    // Opens every connection; with `round_trip`, also completes one verified echo on each.
    void setup(bool round_trip);

    // Pipelined load until `end_ns` (CLOCK_MONOTONIC); requests completing in
    // [measure_from_ns, end_ns) are counted. Then drains: waits until every byte sent was
    // echoed, and fails the process if none arrive for drain_timeout_s while some are missing.
    void run(std::int64_t measure_from_ns, std::int64_t end_ns);

    const worker_result& result() const { return m_result; }

private:
    struct connection;

    // loadgen_setup.cpp: opening, the handshake, --reconnect's cycle.
    void open_socket(connection& c);
    void finish_connect(connection& c);
    void on_connected(connection& c);
    void step_handshake(connection& c);
    void recycle(connection& c);
    // loadgen_worker.cpp: the load.
    ssize_t io_send(connection& c, const void* data, std::size_t len);
    ssize_t io_recv(connection& c, void* data, std::size_t len);
    void pump_send(connection& c);
    void pump_recv(connection& c);
    void verify(connection& c, const unsigned char* data, std::size_t len, std::int64_t now);
    void fail(connection& c, const char* why, int err);
    void wait_events(int timeout_ms, bool running);
    void drain();

    const loadgen_options& m_opts;
    const echo_pattern& m_pattern;
    bool m_spread_sources;
    int m_epfd = -1;
    std::vector<connection> m_conns;
    std::vector<std::int64_t> m_sent_at; // depth slots per connection: send time of a request
    std::unique_ptr<unsigned char[]> m_scratch; // k_scratch_size bytes
    std::unique_ptr<tls_client> m_tls;          // with --tls
    std::string m_tls_error;                    // the last TLS call's failure, for fail()
    std::int64_t m_measure_from = 0;            // completions in [from, to) are recorded
    std::int64_t m_measure_to = 0;
    bool m_setup = false;             // in the idle round trip: every failure is fatal
    bool m_draining = false;          // --reconnect: a recycled connection is not reopened
    std::int64_t m_last_progress = 0; // when echoed bytes last arrived (drain's stall check)
    std::uint64_t m_completed = 0;    // requests completed in total, warmup included
    std::uint32_t m_connected = 0;    // connected (TLS: and handshaken) in setup()
    worker_result m_result;
};

// CLOCK_MONOTONIC in nanoseconds.
std::int64_t now_ns();

} // namespace bench
