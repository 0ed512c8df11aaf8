// log_collector/options.cpp - argument parsing (options.hpp; --help is in help.cpp).
#include "options.hpp"

#include <coio/event_loop.hpp>
#include <coio/loops.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string_view>

#ifndef LOGCOLLECT_VERSION
#define LOGCOLLECT_VERSION "unknown"
#endif

namespace logcollect {

namespace {

void usage_error(const std::string& msg) {
    std::fprintf(stderr, "coio-logcollect: %s\n(try coio-logcollect --help)\n", msg.c_str());
}

bool parse_u64(std::string_view s, std::uint64_t& v) {
    if (s.empty()) {
        return false;
    }
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return ec == std::errc() && p == s.data() + s.size();
}

// A byte count with an optional binary suffix: 512, 64k, 64m, 1g.
bool parse_bytes(std::string_view s, std::uint64_t& v) {
    unsigned shift = 0;
    if (!s.empty()) {
        switch (s.back()) {
        case 'k':
        case 'K':
            shift = 10;
            break;
        case 'm':
        case 'M':
            shift = 20;
            break;
        case 'g':
        case 'G':
            shift = 30;
            break;
        default:
            break;
        }
    }
    if (shift != 0) {
        s.remove_suffix(1);
    }
    if (!parse_u64(s, v) || v > (std::uint64_t{1} << 40U) >> shift) {
        return false;
    }
    v <<= shift;
    return true;
}

bool parse_seconds(std::string_view s, std::chrono::milliseconds& out) {
    try {
        std::size_t used = 0;
        const double v = std::stod(std::string(s), &used);
        if (used != s.size() || !(v >= 0) || v > 86400.0 * 365) {
            return false;
        }
        out = std::chrono::milliseconds(static_cast<std::int64_t>(v * 1000.0 + 0.5));
        return true;
    } catch (const std::exception&) {
        return false;
    }
}

std::string_view trim(std::string_view s) {
    const auto b = s.find_first_not_of(" \t\r");
    if (b == std::string_view::npos) {
        return {};
    }
    const auto e = s.find_last_not_of(" \t\r");
    return s.substr(b, e - b + 1);
}

std::optional<coio::address> parse_address(std::string_view text) {
    try {
        return coio::address::parse(text);
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

bool add_source(options& o, std::string_view text, const std::string& where) {
    constexpr std::string_view tls_prefix = "tls://";
    const bool tls = text.substr(0, tls_prefix.size()) == tls_prefix;
    if (tls) {
        text.remove_prefix(tls_prefix.size());
    }
    std::optional<coio::address> a = parse_address(text);
    if (!a) {
        usage_error(where + "bad source '" + std::string(text) +
                    "': expected HOST:PORT with a numeric host (names are not resolved yet)");
        return false;
    }
    if (a->port() == 0) {
        usage_error(where + "bad source '" + std::string(text) + "': port 0");
        return false;
    }
    if (std::find(o.sources.begin(), o.sources.end(), *a) != o.sources.end()) {
        usage_error(where + "source " + a->to_string() + " given twice");
        return false;
    }
    o.sources.push_back(*a);
    o.source_tls.push_back(tls);
    return true;
}

parse_result read_sources_file(options& o, const std::string& path) {
    std::ifstream in(path);
    if (!in) {
        std::fprintf(stderr, "coio-logcollect: cannot read --sources %s: %s\n", path.c_str(),
                     std::strerror(errno));
        return parse_result::failure;
    }
    std::string line;
    std::size_t n = 0;
    while (std::getline(in, line)) {
        ++n;
        std::string_view v = line;
        v = trim(v.substr(0, v.find('#')));
        if (!v.empty() && !add_source(o, v, path + ":" + std::to_string(n) + ": ")) {
            return parse_result::usage_error;
        }
    }
    return parse_result::run;
}

} // namespace

parse_result parse_options(int argc, char** argv, options& o) {
    std::vector<std::string_view> args(argv + 1, argv + argc);
    bool only_sources = false;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string_view a = args[i];
        if (only_sources || a.empty() || a[0] != '-' || a == "-") {
            if (!add_source(o, a, "")) {
                return parse_result::usage_error;
            }
            continue;
        }
        if (a == "--") {
            only_sources = true;
            continue;
        }
        if (a == "-h" || a == "--help") {
            print_help(stdout);
            return parse_result::exit_ok;
        }
        if (a == "--version") {
            std::printf("coio-logcollect %s\n", LOGCOLLECT_VERSION);
            return parse_result::exit_ok;
        }
        if (a == "--list-backends") {
            for (const std::string& b : coio::available_backends()) {
                std::printf("%s\n", b.c_str());
            }
            return parse_result::exit_ok;
        }
        if (a == "--sync") {
            o.sync = true;
            continue;
        }
        if (a == "--status" || a == "--no-status") {
            o.status = a == "--status" ? 1 : 0;
            continue;
        }
        // Options with a value: "--opt VALUE" or "--opt=VALUE".
        std::string_view name = a;
        std::string_view value;
        bool has_value = false;
        if (auto eq = a.find('='); eq != std::string_view::npos && a.starts_with("--")) {
            name = a.substr(0, eq);
            value = a.substr(eq + 1);
            has_value = true;
        }
        static constexpr std::array<std::string_view, 23> with_value = {"-o",
                                                                        "--output",
                                                                        "--format",
                                                                        "--chunk-size",
                                                                        "--max-line",
                                                                        "--backoff-min",
                                                                        "--backoff-max",
                                                                        "--stats-interval",
                                                                        "--listen",
                                                                        "--listen-tls",
                                                                        "--tls-cert",
                                                                        "--tls-key",
                                                                        "--tls-ca",
                                                                        "--sources",
                                                                        "--max-connections",
                                                                        "--push-memory",
                                                                        "--max-frame",
                                                                        "--connect-timeout",
                                                                        "--keepalive",
                                                                        "--ack-timeout",
                                                                        "--idle-timeout",
                                                                        "--message-timeout",
                                                                        "--loops"};
        if (std::find(with_value.begin(), with_value.end(), name) == with_value.end()) {
            usage_error("unknown option " + std::string(a));
            return parse_result::usage_error;
        }
        if (!has_value) {
            if (i + 1 >= args.size()) {
                usage_error("option " + std::string(name) + " needs a value");
                return parse_result::usage_error;
            }
            value = args[++i];
        }
        const std::string bad =
            "bad value for " + std::string(name) + ": '" + std::string(value) + "'";
        std::uint64_t n = 0;
        if (name == "-o" || name == "--output") {
            if (value.empty()) {
                usage_error(bad);
                return parse_result::usage_error;
            }
            o.output = value;
        } else if (name == "--format") {
            if (value == "plain") {
                o.format = output_format::plain;
            } else if (value == "json") {
                o.format = output_format::json;
            } else {
                usage_error(bad + " (plain or json)");
                return parse_result::usage_error;
            }
        } else if (name == "--chunk-size") {
            if (!parse_u64(value, n) || n == 0 || n > (16U << 20U)) {
                usage_error(bad + " (1 .. 16777216 bytes)");
                return parse_result::usage_error;
            }
            o.chunk_size = n;
        } else if (name == "--max-line") {
            if (!parse_u64(value, n) || n == 0 || n > (1U << 30U)) {
                usage_error(bad + " (1 .. 1073741824 bytes)");
                return parse_result::usage_error;
            }
            o.max_line = n;
        } else if (name == "--backoff-min" || name == "--backoff-max") {
            if (!parse_u64(value, n) || n == 0 || n > 3600U * 1000U) {
                usage_error(bad + " (1 .. 3600000 ms)");
                return parse_result::usage_error;
            }
            (name == "--backoff-min" ? o.backoff_min : o.backoff_max) =
                std::chrono::milliseconds(n);
        } else if (name == "--stats-interval") {
            if (!parse_seconds(value, o.stats_interval)) {
                usage_error(bad + " (seconds, 0 = off)");
                return parse_result::usage_error;
            }
        } else if (name == "--connect-timeout" || name == "--ack-timeout" ||
                   name == "--idle-timeout" || name == "--message-timeout") {
            std::chrono::milliseconds& t = name == "--connect-timeout" ? o.connect_timeout
                                           : name == "--ack-timeout"   ? o.ack_timeout
                                           : name == "--idle-timeout"  ? o.idle_timeout
                                                                       : o.message_timeout;
            if (!parse_seconds(value, t)) {
                usage_error(bad + " (seconds, 0 = off)");
                return parse_result::usage_error;
            }
        } else if (name == "--keepalive") {
            if (!parse_u64(value, n) || n > 32767) {
                usage_error(bad + " (whole seconds 0 .. 32767, 0 = off)");
                return parse_result::usage_error;
            }
            o.keepalive = std::chrono::seconds(n);
        } else if (name == "--listen" || name == "--listen-tls") {
            std::optional<coio::address> l;
            if (value.find(':') == std::string_view::npos) {
                if (parse_u64(value, n) && n <= 65535) {
                    l = coio::address::parse("127.0.0.1", static_cast<std::uint16_t>(n));
                }
            } else {
                l = parse_address(value);
            }
            if (!l) {
                usage_error(bad + " (PORT, or HOST:PORT with a numeric host)");
                return parse_result::usage_error;
            }
            (name == "--listen" ? o.listen : o.listen_tls) = l;
        } else if (name == "--tls-cert" || name == "--tls-key" || name == "--tls-ca") {
            if (value.empty()) {
                usage_error(bad + " (a PEM file)");
                return parse_result::usage_error;
            }
            (name == "--tls-cert"  ? o.tls_cert
             : name == "--tls-key" ? o.tls_key
                                   : o.tls_ca) = value;
        } else if (name == "--max-connections") {
            if (!parse_u64(value, n) || n == 0 || n > 1000000) {
                usage_error(bad + " (1 .. 1000000)");
                return parse_result::usage_error;
            }
            o.max_connections = n;
        } else if (name == "--push-memory") {
            if (!parse_bytes(value, n) || n == 0) {
                usage_error(bad + " (bytes, with k, m or g: 64m)");
                return parse_result::usage_error;
            }
            o.push_memory = n;
        } else if (name == "--max-frame") {
            if (!parse_u64(value, n) || n == 0 || n > 9999999999ULL) {
                usage_error(bad + " (1 .. 9999999999 bytes)");
                return parse_result::usage_error;
            }
            o.max_frame = n;
        } else if (name == "--loops") {
            if (!parse_u64(value, n) || n > max_loops) {
                usage_error(bad + " (0 .. " + std::to_string(max_loops) +
                            "; 0 = one per available core)");
                return parse_result::usage_error;
            }
            o.loops = n;
        } else if (name == "--sources") {
            if (parse_result r = read_sources_file(o, std::string(value)); r != parse_result::run) {
                return r;
            }
        }
    }
    if (o.backoff_min > o.backoff_max) {
        usage_error("--backoff-min is above --backoff-max");
        return parse_result::usage_error;
    }
    if (o.listen_tls && (o.tls_cert.empty() || o.tls_key.empty())) {
        usage_error("--listen-tls needs --tls-cert FILE and --tls-key FILE");
        return parse_result::usage_error;
    }
    if (o.tls_cert.empty() != o.tls_key.empty()) {
        usage_error("--tls-cert and --tls-key go together");
        return parse_result::usage_error;
    }
    if (!o.listen_tls && o.tls_ca.empty() && !o.tls_cert.empty()) {
        usage_error("--tls-cert and --tls-key are for --listen-tls or, with --tls-ca, the "
                    "sources");
        return parse_result::usage_error;
    }
    if (!o.tls_ca.empty() && o.sources.empty()) {
        usage_error("--tls-ca is for pull sources (HOST:PORT): none given");
        return parse_result::usage_error;
    }
    const bool some_tls =
        std::find(o.source_tls.begin(), o.source_tls.end(), true) != o.source_tls.end();
    if (some_tls && o.tls_ca.empty()) {
        usage_error("tls://HOST:PORT sources need --tls-ca FILE");
        return parse_result::usage_error;
    }
    if (!some_tls && !o.tls_ca.empty()) {
        o.source_tls.assign(o.sources.size(), true); // --tls-ca alone: every source
    }
    if (o.listen && o.listen_tls && *o.listen == *o.listen_tls && o.listen->port() != 0) {
        usage_error("--listen and --listen-tls name the same address");
        return parse_result::usage_error;
    }
    if (o.loops == 0) { // one per core: resolved before the memory check below uses it
        o.loops = std::min(coio::available_cores(), max_loops);
    }
    const std::size_t all_connections = loop_connections(o) * loop_count(o);
    if (o.push_memory / (all_connections * std::max<std::size_t>(push_listeners(o), 1)) < 1024) {
        usage_error("--push-memory allows less than 1 KiB per connection (--max-connections " +
                    std::to_string(o.max_connections) +
                    (push_listeners(o) > 1 ? " on each of 2 listeners)" : ")"));
        return parse_result::usage_error;
    }
    if (o.sources.empty() && !o.listen && !o.listen_tls) {
        usage_error("no sources: give HOST:PORT arguments, --sources FILE, --listen PORT or "
                    "--listen-tls PORT");
        return parse_result::usage_error;
    }
    return parse_result::run;
}

} // namespace logcollect
