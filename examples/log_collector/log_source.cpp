// log_source - a TCP log source for coio-logcollect: streams numbered lines,
// waits for an "ACK\n" per line, and sends again whatever was not
// acknowledged when a connection breaks.
//
// What it shows: a start_server handler that writes (write_all) and reads
// (read_some, with wait_for for the rate ticks) on one socket - or, with
// --tls-cert/--tls-key, on the streams of a TLS session (log_source_link.hpp);
// state that outlives connections; signals for a clean exit with a JSON
// summary.
//
// Run:  ./build/examples/log_collector/log_source --port 0 --lines 1000 --rate 100
// It prints "listening on 127.0.0.1:PORT" (one line per port with --ports N).
// Every connection gets "NAME SEQ PAYLOAD\n" lines, starting after the last
// acknowledged one; at most --window lines are unacknowledged at a time.
// On SIGINT/SIGTERM it prints one JSON line:
//   {"name":..,"sources":..,"lines":..,"sent":..,"acked":..,"resent":..,...}
// and, as soon as every line of every instance is acknowledged (with
// --lines), {"event":"all_acked",...}.
// Try:  nc 127.0.0.1 PORT   (and type ACK + Enter to acknowledge a line)
#include "log_source_link.hpp"
#include "log_source_options.hpp"
#include "log_source_state.hpp"

#include <coio/coio.hpp>
#include <coio/signal.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <array>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace logsource {

namespace {

struct source_server {
    config cfg;
    std::deque<instance> instances;
    std::uint64_t rng = 0;
    std::size_t complete = 0;
    bool dirty = false;

    double uniform() noexcept { // [0, 1)
        std::uint64_t z = (rng += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30U)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27U)) * 0x94D049BB133111EBULL;
        return static_cast<double>((z ^ (z >> 31U)) >> 11U) * 0x1.0p-53;
    }
    void note_acked(instance& in) {
        if (cfg.lines > 0 && !in.complete && in.acked >= cfg.lines) {
            in.complete = true;
            if (++complete == instances.size()) {
                std::printf("{\"event\":\"all_acked\",\"sources\":%zu,\"lines\":%llu}\n",
                            instances.size(), static_cast<unsigned long long>(cfg.lines));
                std::fflush(stdout);
            }
        }
    }
};

// End a connection on purpose: RST or FIN, half the time each.
void drop_connection(link& s, bool reset) {
    if (reset) {
        s.abort();
    } else {
        s.close();
    }
}

// in->active while this connection runs: the one a new connection takes
// over from. Cleared however the handler ends (close_clients() at exit
// cancels it: the await it is in throws).
class active_connection {
public:
    active_connection(instance* in, link* s) noexcept : m_in(in), m_s(s) {
        if (in->active != nullptr) {
            in->active->close(); // a new connection takes over from the old one
        }
        in->active = s;
    }
    active_connection(const active_connection&) = delete;
    active_connection& operator=(const active_connection&) = delete;
    ~active_connection() {
        if (m_in->active == m_s) {
            m_in->active = nullptr;
        }
    }

private:
    instance* m_in;
    link* m_s;
};

coio::task<> serve_connection(source_server* srv, instance* in, link s) {
    using clock = std::chrono::steady_clock;
    const config& cfg = srv->cfg;
    const active_connection active(in, &s);
    const std::uint64_t gen = ++in->generation;
    ++in->connections;
    srv->dirty = true;
    const std::uint64_t last = cfg.lines == 0 ? UINT64_MAX : cfg.lines;
    std::uint64_t next = in->acked + 1; // everything unacknowledged is sent again
    std::uint64_t sent_here = 0;
    const clock::time_point start = clock::now();
    std::string out;
    std::array<char, 4096> buf{};
    ack_parser acks;
    // A drop (--drop-probability) first waits until all but a few (0..7) of
    // the lines sent on this connection are acknowledged - at most 2 s - so
    // that every connection makes progress and a few lines are usually still
    // in flight (they are sent again: duplicates); then part of the next line
    // goes out and the connection is dropped.
    std::string partial;
    std::uint64_t unacked_ok = 0;
    bool drop_pending = false;
    clock::time_point drop_deadline{};
    for (;;) {
        if (gen != in->generation) {
            break;
        }
        if (drop_pending && (next - 1 - in->acked <= unacked_ok || clock::now() >= drop_deadline)) {
            coio::io_result w = co_await s.write_all(partial);
            if (w && gen == in->generation) {
                ++in->drops;
                drop_connection(s, srv->uniform() < 0.5);
            }
            break;
        }
        std::uint64_t n = 0;
        if (!drop_pending && next <= last && next - 1 - in->acked < cfg.window) {
            n = std::min(cfg.window - (next - 1 - in->acked), last - next + 1);
            if (cfg.rate > 0) {
                const double elapsed = std::chrono::duration<double>(clock::now() - start).count();
                const auto due = static_cast<std::uint64_t>(elapsed * cfg.rate) + 1;
                n = std::min(n, due > sent_here ? due - sent_here : 0);
            }
            n = std::min<std::uint64_t>(n, 512);
        }
        if (n > 0) {
            out.clear();
            std::uint64_t full = 0;
            for (; full < n; ++full) {
                const std::size_t before = out.size();
                append_line(out, in->name, cfg.seed, next + full, cfg.line_bytes);
                if (cfg.drop_probability > 0 && srv->uniform() < cfg.drop_probability) {
                    // Keep a part of this line to send just before dropping.
                    const std::size_t len = out.size() - before;
                    partial.assign(out, before,
                                   1 + static_cast<std::size_t>(srv->uniform() *
                                                                static_cast<double>(len - 1)));
                    out.resize(before);
                    unacked_ok = static_cast<std::uint64_t>(
                        srv->uniform() *
                        static_cast<double>(std::min<std::uint64_t>(8, sent_here + full)));
                    drop_pending = true;
                    drop_deadline = clock::now() + std::chrono::seconds(2);
                    break;
                }
            }
            coio::io_result w = co_await s.write_all(out);
            if (!w || gen != in->generation) {
                break;
            }
            if (full > 0) {
                if (in->sent >= next) {
                    in->resent += std::min(full, in->sent - next + 1);
                }
                in->sent = std::max(in->sent, next + full - 1);
                next += full;
                sent_here += full;
                srv->dirty = true;
            }
            continue;
        }
        // Wait for ACKs - with a rate, or a drop pending, only until it is
        // time to act.
        coio::io_result r;
        const bool more = next <= last && next - 1 - in->acked < cfg.window;
        if (drop_pending || (cfg.rate > 0 && more)) {
            clock::time_point until = drop_deadline;
            if (!drop_pending) {
                until = start +
                        std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(
                            static_cast<double>(sent_here) / cfg.rate));
            }
            const auto wait =
                std::max<clock::duration>(until - clock::now(), std::chrono::milliseconds(10));
            bool due = false;
            try {
                r = co_await coio::wait_for(s.read_some(std::span<char>(buf)), wait);
            } catch (const coio::timeout_error&) {
                due = true;
            }
            if (due) {
                continue;
            }
        } else {
            r = co_await s.read_some(std::span<char>(buf));
        }
        if (!r || gen != in->generation) {
            break;
        }
        acks.feed(std::string_view(buf.data(), r.bytes), [in, next](bool ack) {
            if (ack && in->acked + 1 < next) {
                ++in->acked; // an ACK for a line sent and not acknowledged yet
            } else {
                ++in->bad_acks;
            }
        });
        srv->dirty = true;
        srv->note_acked(*in);
    }
}

struct connection_handler {
    source_server* srv;
    instance* in;
    coio::task<> operator()(coio::socket s) const {
        return serve_connection(srv, in, link(std::move(s)));
    }
};

// --tls-cert: the streams of a TLS session after its handshake.
struct tls_connection_handler {
    source_server* srv;
    instance* in;
    coio::task<> operator()(coio::stream_reader r, coio::stream_writer w) const {
        return serve_connection(srv, in, link(std::move(r), std::move(w)));
    }
};

// Listen for one instance: plain, or TLS with `ctx`.
coio::task<coio::server> listen_one(source_server* srv, instance* in, std::uint16_t port,
                                    coio::tls_context ctx) {
    coio::server_options so;
    if (!ctx) {
        connection_handler handler{srv, in};
        coio::server one = co_await coio::start_server(handler, srv->cfg.host, port, so);
        co_return one;
    }
    tls_connection_handler handler{srv, in};
    coio::server one = co_await coio::start_server(handler, srv->cfg.host, port, ctx, so);
    co_return one;
}

coio::task<> save_loop(source_server* srv) {
    for (;;) {
        co_await coio::sleep(std::chrono::milliseconds(100));
        if (srv->dirty) {
            srv->dirty = false;
            save_state(srv->cfg.state_file, srv->instances);
        }
    }
}

coio::task<int> run_source(source_server* srv) {
    coio::signal_set signals{SIGINT, SIGTERM};
    std::vector<coio::server> servers;
    servers.reserve(srv->instances.size());
    std::uint16_t port = srv->cfg.port;
    coio::tls_context ctx;
    if (!srv->cfg.tls_cert.empty()) {
        coio::tls_context_options o;
        o.cert_file = srv->cfg.tls_cert;
        o.key_file = srv->cfg.tls_key;
        ctx = coio::tls_context::server(std::move(o)); // main() reports a tls_error
    }
    for (instance& in : srv->instances) {
        std::string error;
        try {
            coio::server one = co_await listen_one(srv, &in, port, ctx);
            in.bound = one.local_address();
            servers.push_back(std::move(one));
        } catch (const std::exception& e) {
            error = e.what();
        }
        if (!error.empty()) {
            std::fprintf(stderr, "log_source: %s\n", error.c_str());
            co_return 1;
        }
        std::printf("listening on %s\n", in.bound.to_string().c_str());
        if (port != 0) {
            ++port;
        }
        srv->note_acked(in); // restarted with everything acknowledged already
    }
    std::fflush(stdout);
    coio::task_handle<> saver;
    if (!srv->cfg.state_file.empty()) {
        saver = coio::create_task(save_loop(srv), "save state");
    }
    co_await signals.wait();
    // Stop accepting, end every connection (its handler is cancelled; what
    // it sent stays unacknowledged and is sent again next time), and wait
    // until they have all ended.
    for (coio::server& one : servers) {
        one.close();
        one.close_clients();
    }
    for (coio::server& one : servers) {
        co_await one.wait_closed();
    }
    if (saver.valid()) {
        saver.cancel();
        try {
            co_await saver;
        } catch (const coio::cancelled_error&) {
        }
        save_state(srv->cfg.state_file, srv->instances);
    }
    std::printf("%s\n", summary_json(srv->cfg.name, srv->cfg.lines, srv->instances).c_str());
    std::fflush(stdout);
    co_return 0;
}

} // namespace
} // namespace logsource

int main(int argc, char** argv) {
    using namespace logsource;
    source_server srv;
    if (int r = parse(argc, argv, srv.cfg); r != 0) {
        return r == 1 ? 0 : 2;
    }
    std::signal(SIGPIPE, SIG_IGN);
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max; // --ports 5000 needs 10,000 fds
        (void)::setrlimit(RLIMIT_NOFILE, &rl);
    }
    srv.rng = srv.cfg.seed ^ 0x5DEECE66DULL;
    for (unsigned i = 0; i < srv.cfg.ports; ++i) {
        srv.instances.emplace_back().name =
            srv.cfg.ports == 1 ? srv.cfg.name : srv.cfg.name + "-" + std::to_string(i);
    }
    try {
        if (!srv.cfg.state_file.empty()) {
            load_state(srv.cfg.state_file, srv.instances);
        }
        return coio::run(run_source(&srv));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "log_source: %s\n", e.what());
        return 1;
    }
}
