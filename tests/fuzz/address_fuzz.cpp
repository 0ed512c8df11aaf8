// tests/fuzz/address_fuzz.cpp - libFuzzer target for coio::address parsing:
// parse("host:port" / "[v6]:port"), parse(host, port) and try_parse, which
// the log collector uses for its HOST:PORT sources and --listen (RELIABILITY
// 25; libevent's CVE-2016-10196 was a long bracketed host).
//
// Must hold: no crash or out-of-bounds access on any text; a bad text throws
// std::invalid_argument (nothing else) naming it; try_parse agrees with
// parse; what parses formats back (to_string, host) into text that parses to
// the same address.
#include "fuzz_support.hpp"

#include <coio/net/address.hpp>

#include <stdexcept>

namespace {

// The message quotes what was given (what() ends at a NUL byte, if any).
bool names(const std::invalid_argument& e, std::string_view text) {
    text = text.substr(0, text.find('\0'));
    return std::string_view(e.what()).find(text) != std::string_view::npos;
}

std::optional<coio::address> parse_text(std::string_view text) {
    try {
        return coio::address::parse(text);
    } catch (const std::invalid_argument& e) {
        FUZZ_CHECK(names(e, text));
        return std::nullopt;
    }
}

void check_round_trip(const coio::address& a, std::uint16_t port) {
    FUZZ_CHECK(!a.empty() && (a.is_v4() || a.is_v6()));
    FUZZ_CHECK(a.port() == port);
    FUZZ_CHECK(a.size() > 0 && a.size() <= coio::address::capacity());
    const std::optional<coio::address> again = parse_text(a.to_string());
    FUZZ_CHECK(again && *again == a);
    const std::optional<coio::address> by_host = coio::address::try_parse(a.host(), port);
    FUZZ_CHECK(by_host && *by_host == a);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider fdp(data, size);
    const auto port = fdp.ConsumeIntegral<std::uint16_t>();
    const std::string text = fdp.ConsumeRemainingBytesAsString();

    // "host:port" in one string.
    if (std::optional<coio::address> a = parse_text(text)) {
        check_round_trip(*a, a->port());
    }

    // The host alone, with the port apart: both forms agree.
    const std::optional<coio::address> t = coio::address::try_parse(text, port);
    try {
        const coio::address p = coio::address::parse(text, port);
        FUZZ_CHECK(t && *t == p);
        check_round_trip(p, port);
    } catch (const std::invalid_argument& e) {
        FUZZ_CHECK(!t);
        FUZZ_CHECK(names(e, text));
    }
    return 0;
}
