// lib/net/address.cpp
#include <coio/net/address.hpp>

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <charconv>
#include <cstring>
#include <stdexcept>

namespace coio {

static_assert(sizeof(sockaddr_in6) <= address::capacity());
static_assert(sizeof(sockaddr_in) <= address::capacity());

namespace {
const sockaddr_in* v4(const address& a) {
    return static_cast<const sockaddr_in*>(a.data());
}
const sockaddr_in6* v6(const address& a) {
    return static_cast<const sockaddr_in6*>(a.data());
}
} // namespace

std::optional<address> address::try_parse(std::string_view host, std::uint16_t port) noexcept {
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    if (host.empty() || host.size() > 63) {
        return std::nullopt;
    }
    char text[64];
    std::memcpy(text, host.data(), host.size());
    text[host.size()] = '\0';

    address a;
    sockaddr_in sin{};
    if (::inet_pton(AF_INET, text, &sin.sin_addr) == 1) {
        sin.sin_family = AF_INET;
        sin.sin_port = htons(port);
        std::memcpy(a.m_storage, &sin, sizeof sin);
        a.m_size = sizeof sin;
        return a;
    }
    sockaddr_in6 sin6{};
    char* pct = std::strchr(text, '%');
    if (pct != nullptr) {
        *pct = '\0';
        const char* zone = pct + 1;
        unsigned idx = ::if_nametoindex(zone);
        if (idx == 0) {
            auto [end, ec] = std::from_chars(zone, zone + std::strlen(zone), idx);
            if (ec != std::errc{} || *end != '\0') {
                return std::nullopt;
            }
        }
        sin6.sin6_scope_id = idx;
    }
    if (::inet_pton(AF_INET6, text, &sin6.sin6_addr) == 1) {
        sin6.sin6_family = AF_INET6;
        sin6.sin6_port = htons(port);
        std::memcpy(a.m_storage, &sin6, sizeof sin6);
        a.m_size = sizeof sin6;
        return a;
    }
    return std::nullopt;
}

address address::parse(std::string_view host, std::uint16_t port) {
    if (auto a = try_parse(host, port)) {
        return *a;
    }
    throw std::invalid_argument("coio::address: '" + std::string(host) +
                                "' is not a numeric IPv4 or IPv6 address");
}

address address::parse(std::string_view text) {
    std::size_t colon = text.rfind(':');
    bool bracketed = !text.empty() && text.front() == '[';
    if (colon == std::string_view::npos || (bracketed && text[colon - 1] != ']') ||
        (!bracketed && text.find(':') != colon)) {
        throw std::invalid_argument("coio::address: '" + std::string(text) +
                                    "' is not host:port (write IPv6 as [addr]:port)");
    }
    std::string_view port_text = text.substr(colon + 1);
    unsigned port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc{} || end != port_text.data() + port_text.size() || port > 65535 ||
        port_text.empty()) {
        throw std::invalid_argument("coio::address: bad port in '" + std::string(text) + "'");
    }
    // Name the whole input, not only the host part (for ":80" that is empty).
    std::string_view host = text.substr(0, colon);
    if (auto a = try_parse(host, static_cast<std::uint16_t>(port))) {
        return *a;
    }
    throw std::invalid_argument("coio::address: '" + std::string(text) + "': '" +
                                std::string(host) + "' is not a numeric IPv4 or IPv6 address");
}

address address::loopback_v4(std::uint16_t port) noexcept {
    return *try_parse("127.0.0.1", port);
}
address address::loopback_v6(std::uint16_t port) noexcept {
    return *try_parse("::1", port);
}
address address::any_v4(std::uint16_t port) noexcept {
    return *try_parse("0.0.0.0", port);
}
address address::any_v6(std::uint16_t port) noexcept {
    return *try_parse("::", port);
}

address::family address::family_kind() const noexcept {
    if (m_size == 0) {
        return family::none;
    }
    sa_family_t f{};
    std::memcpy(&f, m_storage, sizeof f);
    return f == AF_INET ? family::ipv4 : f == AF_INET6 ? family::ipv6 : family::none;
}

std::uint16_t address::port() const noexcept {
    switch (family_kind()) {
    case family::ipv4:
        return ntohs(v4(*this)->sin_port);
    case family::ipv6:
        return ntohs(v6(*this)->sin6_port);
    case family::none:
        break;
    }
    return 0;
}

void address::set_port(std::uint16_t port) noexcept {
    if (is_v4()) {
        static_cast<sockaddr_in*>(data())->sin_port = htons(port);
    } else if (is_v6()) {
        static_cast<sockaddr_in6*>(data())->sin6_port = htons(port);
    }
}

std::string address::host() const {
    char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2] = {};
    if (is_v4()) {
        ::inet_ntop(AF_INET, &v4(*this)->sin_addr, buf, sizeof buf);
        return buf;
    }
    if (is_v6()) {
        ::inet_ntop(AF_INET6, &v6(*this)->sin6_addr, buf, sizeof buf);
        std::string out = buf;
        if (v6(*this)->sin6_scope_id != 0) {
            out += '%';
            out += std::to_string(v6(*this)->sin6_scope_id);
        }
        return out;
    }
    return {};
}

std::string address::to_string() const {
    if (empty()) {
        return "(no address)";
    }
    // Appended piece by piece: g++ 12 at -O3 warns falsely (-Wrestrict, GCC
    // bug 105329) on `"[" + std::string`.
    std::string out;
    out.reserve(64);
    out += is_v6() ? "[" : "";
    out += host();
    out += is_v6() ? "]:" : ":";
    out += std::to_string(port());
    return out;
}

bool operator==(const address& a, const address& b) noexcept {
    return a.m_size == b.m_size && std::memcmp(a.m_storage, b.m_storage, a.m_size) == 0;
}

} // namespace coio
