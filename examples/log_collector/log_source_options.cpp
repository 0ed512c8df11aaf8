// log_collector/log_source_options.cpp - log_source's command line
// (log_source_options.hpp).
#include "log_source_options.hpp"

#include <coio/event_loop.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <stdexcept>
#include <string_view>

namespace logsource {

namespace {

constexpr const char* usage = R"(usage: log_source [options]
A TCP log source for coio-logcollect: streams "NAME SEQ PAYLOAD\n" lines to
each connection, expects one "ACK\n" per line, and on a new connection sends
again every line that was not acknowledged.

  --host ADDR              listen address (default 127.0.0.1)
  --port N                 port (default 0: pick one; "listening on HOST:PORT" is printed)
  --ports N                listen on N ports, one independent source each, named
                           NAME-0..NAME-(N-1) (ports PORT..PORT+N-1, or picked)
  --name NAME              source name in every line (default "source")
  --lines N                lines per source, then idle (default 0: endless)
  --rate R                 lines per second per connection (default 0: as fast as
                           possible)
  --window N               most lines unacknowledged at a time (default 1024)
  --line-bytes N           payload bytes per line (default 64)
  --seed N                 payload seed (default 1)
  --drop-probability P     for each line, with probability P: wait until all but
                           a few (0..7) lines sent are acknowledged, send part of
                           the line, drop the connection (RST or FIN)
  --state FILE             keep the acknowledged watermark in FILE across restarts
  --tls-cert FILE          serve over TLS with this certificate chain (PEM) ...
  --tls-key FILE           ... and its private key (both or neither)
  --list-backends          print the I/O backends usable here
On SIGINT/SIGTERM: print a JSON summary line (sent, acked, resent, ...), exit 0.
)";

bool parse_number(std::string_view s, std::uint64_t& v) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return !s.empty() && ec == std::errc() && p == s.data() + s.size();
}

bool parse_real(std::string_view s, double& v) {
    try {
        std::size_t used = 0;
        v = std::stod(std::string(s), &used);
        return used == s.size() && v >= 0;
    } catch (const std::exception&) {
        return false;
    }
}

} // namespace

int parse(int argc, char** argv, config& cfg) {
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "-h" || a == "--help") {
            std::fputs(usage, stdout);
            return 1;
        }
        if (a == "--list-backends") {
            for (const std::string& b : coio::available_backends()) {
                std::printf("%s\n", b.c_str());
            }
            return 1;
        }
        if (i + 1 >= argc) {
            std::fprintf(stderr, "log_source: %s needs a value (see --help)\n", argv[i]);
            return 2;
        }
        const std::string_view v = argv[++i];
        std::uint64_t n = 0;
        bool ok = true;
        if (a == "--host") {
            cfg.host = v;
        } else if (a == "--port") {
            ok = parse_number(v, n) && n <= 65535;
            cfg.port = static_cast<std::uint16_t>(n);
        } else if (a == "--ports") {
            ok = parse_number(v, n) && n >= 1 && n <= 60000;
            cfg.ports = static_cast<unsigned>(n);
        } else if (a == "--name") {
            cfg.name = v;
            ok = !v.empty() && std::all_of(v.begin(), v.end(), [](char c) {
                return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' ||
                       c == '.';
            });
        } else if (a == "--lines") {
            ok = parse_number(v, cfg.lines);
        } else if (a == "--rate") {
            ok = parse_real(v, cfg.rate);
        } else if (a == "--window") {
            ok = parse_number(v, cfg.window) && cfg.window >= 1;
        } else if (a == "--line-bytes") {
            ok = parse_number(v, n) && n <= (64U << 20U);
            cfg.line_bytes = n;
        } else if (a == "--seed") {
            ok = parse_number(v, cfg.seed);
        } else if (a == "--drop-probability") {
            ok = parse_real(v, cfg.drop_probability) && cfg.drop_probability <= 1;
        } else if (a == "--tls-cert" || a == "--tls-key") {
            (a == "--tls-cert" ? cfg.tls_cert : cfg.tls_key) = v;
            ok = !v.empty();
        } else if (a == "--state") {
            cfg.state_file = v;
            ok = !v.empty();
        } else {
            std::fprintf(stderr, "log_source: unknown option %s (see --help)\n", argv[i - 1]);
            return 2;
        }
        if (!ok) {
            std::fprintf(stderr, "log_source: bad value for %s: '%s'\n", argv[i - 1], argv[i]);
            return 2;
        }
    }
    if (cfg.tls_cert.empty() != cfg.tls_key.empty()) {
        std::fprintf(stderr, "log_source: --tls-cert and --tls-key go together\n");
        return 2;
    }
    return 0;
}

} // namespace logsource
