// loadgen_options.cpp — command-line parsing for loadgen; see loadgen.cpp for the options.
#include "loadgen_options.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace bench {
namespace {

constexpr const char* k_usage =
    "usage: loadgen --port P [--host 127.0.0.1] [--connections N] [--size BYTES]\n"
    "               [--depth D] [--duration S] [--warmup S] [--threads T] [--cpu C[,C...]]\n"
    "               [--setup-timeout S] [--drain-timeout S] [--reconnect]\n"
    "               [--tls [--tls-ca FILE] [--tls-version 1.2|1.3] [--tls-ciphersuites S]\n"
    "                      [--tls-ciphers S] [--tls-resume]]\n"
    "       loadgen --port P --idle [--hold S] [--connections N] [--size BYTES] [--tls ...]\n";

[[noreturn]] void usage_error(std::string_view what, std::string_view value = {}) {
    std::fprintf(stderr, "loadgen: %.*s%s%.*s\n%s", static_cast<int>(what.size()), what.data(),
                 value.empty() ? "" : ": ", static_cast<int>(value.size()), value.data(), k_usage);
    std::exit(2);
}

template <typename T>
T parse_number(std::string_view name, std::string_view text, T lo, T hi) {
    T v{};
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc{} || end != text.data() + text.size() || v < lo || v > hi) {
        usage_error(std::string(name) + " wants a number in range", text);
    }
    return v;
}

// Fills addr from host/port, or exits: only loopback targets are allowed.
void resolve_loopback(loadgen_options& o) {
    std::string host = o.host == "localhost" ? "127.0.0.1" : o.host;
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    in_addr v4{};
    in6_addr v6{};
    if (inet_pton(AF_INET, host.c_str(), &v4) == 1) {
        if ((ntohl(v4.s_addr) >> 24) != 127) {
            usage_error("refusing a non-loopback target (only 127.0.0.0/8, ::1, localhost)",
                        o.host);
        }
        auto* sin = reinterpret_cast<sockaddr_in*>(&o.addr);
        sin->sin_family = AF_INET;
        sin->sin_port = htons(o.port);
        sin->sin_addr = v4;
        o.addr_len = sizeof(sockaddr_in);
        o.addr_text = host + ":" + std::to_string(o.port);
    } else if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
        if (std::memcmp(&v6, &in6addr_loopback, sizeof v6) != 0) {
            usage_error("refusing a non-loopback target (only 127.0.0.0/8, ::1, localhost)",
                        o.host);
        }
        auto* sin6 = reinterpret_cast<sockaddr_in6*>(&o.addr);
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(o.port);
        sin6->sin6_addr = v6;
        o.addr_len = sizeof(sockaddr_in6);
        o.addr_text = "[" + host + "]:" + std::to_string(o.port);
    } else {
        // No name lookup at all: a resolver could map any name anywhere.
        usage_error("host must be a loopback address literal or 'localhost'", o.host);
    }
}

std::vector<int> parse_cpus(std::string_view text) {
    std::vector<int> cpus;
    if (text == "-1") {
        return cpus;
    }
    while (!text.empty()) {
        std::size_t comma = text.find(',');
        cpus.push_back(parse_number<int>("--cpu", text.substr(0, comma), 0, CPU_SETSIZE - 1));
        text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    }
    return cpus;
}

} // namespace

loadgen_options parse_loadgen_options(int argc, char** argv) {
    loadgen_options o;
    bool have_port = false;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        bool* flag = arg == "--idle"         ? &o.idle
                     : arg == "--reconnect"  ? &o.reconnect
                     : arg == "--tls"        ? &o.tls
                     : arg == "--tls-resume" ? &o.tls_resume
                                             : nullptr;
        if (flag != nullptr) {
            *flag = true;
            continue;
        }
        if (arg == "--help" || arg == "-h") {
            std::fputs(k_usage, stdout);
            std::exit(0);
        }
        if (i + 1 >= argc) {
            usage_error("missing value or unknown option", arg);
        }
        std::string_view v = argv[++i];
        if (arg == "--host") {
            o.host = std::string(v);
        } else if (arg == "--port") {
            o.port = parse_number<std::uint16_t>(arg, v, 1, 65535);
            have_port = true;
        } else if (arg == "--connections") {
            o.connections = parse_number<std::uint32_t>(arg, v, 1, 10'000'000);
        } else if (arg == "--size") {
            o.size = parse_number<std::size_t>(arg, v, 1, std::size_t{1} << 30);
        } else if (arg == "--depth") {
            o.depth = parse_number<std::uint32_t>(arg, v, 1, 1'000'000);
        } else if (arg == "--duration") {
            o.duration_s = parse_number<double>(arg, v, 0.001, 86400.0);
        } else if (arg == "--warmup") {
            o.warmup_s = parse_number<double>(arg, v, 0.0, 86400.0);
        } else if (arg == "--threads") {
            o.threads = parse_number<std::uint32_t>(arg, v, 1, 1024);
        } else if (arg == "--cpu") {
            o.cpus = parse_cpus(v);
        } else if (arg == "--hold") {
            o.hold_s = parse_number<double>(arg, v, 0.0, 86400.0);
        } else if (arg == "--setup-timeout") {
            o.setup_timeout_s = parse_number<double>(arg, v, 0.001, 86400.0);
        } else if (arg == "--drain-timeout") {
            o.drain_timeout_s = parse_number<double>(arg, v, 0.001, 86400.0);
        } else if (arg == "--tls-ca") {
            o.tls_ca = std::string(v);
        } else if (arg == "--tls-ciphersuites") {
            o.tls_ciphersuites = std::string(v);
        } else if (arg == "--tls-ciphers") {
            o.tls_ciphers = std::string(v);
        } else if (arg == "--tls-version") {
            if (v != "1.2" && v != "1.3") {
                usage_error("--tls-version wants 1.2 or 1.3", v);
            }
            o.tls_version = v == "1.2" ? 12 : 13;
        } else {
            usage_error("unknown option", arg);
        }
    }
    if (!have_port) {
        usage_error("--port is required");
    }
    if (o.idle && o.reconnect) {
        usage_error("--idle and --reconnect exclude each other");
    }
    if (!o.tls && (!o.tls_ca.empty() || o.tls_resume)) {
        usage_error("--tls-ca and --tls-resume need --tls");
    }
    if (o.tls_resume && !o.reconnect) {
        usage_error("--tls-resume needs --reconnect (only reconnecting connections resume)");
    }
    resolve_loopback(o);
    return o;
}

} // namespace bench
