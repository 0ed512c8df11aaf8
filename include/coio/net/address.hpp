// coio/net/address.hpp - an IPv4 or IPv6 socket address (host and port).
//
// Value type holding the raw sockaddr bytes, so it can be handed to the kernel
// without conversion; no OS headers are needed to use it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace coio {

class address {
public:
    enum class family : std::uint8_t { none, ipv4, ipv6 };

    // An empty address (family none).
    address() noexcept = default;

    // Parse a numeric host ("127.0.0.1", "::1", "[::1]", "fe80::1%lo") and a
    // port. Throws std::invalid_argument naming the text if it is not numeric.
    static address parse(std::string_view host, std::uint16_t port);
    // Parse "host:port" or "[v6]:port". Throws std::invalid_argument.
    static address parse(std::string_view host_and_port);
    // Same as parse, without throwing.
    static std::optional<address> try_parse(std::string_view host, std::uint16_t port) noexcept;

    static address loopback_v4(std::uint16_t port = 0) noexcept;
    static address loopback_v6(std::uint16_t port = 0) noexcept;
    static address any_v4(std::uint16_t port = 0) noexcept;
    static address any_v6(std::uint16_t port = 0) noexcept;

    [[nodiscard]] family family_kind() const noexcept;
    [[nodiscard]] bool is_v4() const noexcept { return family_kind() == family::ipv4; }
    [[nodiscard]] bool is_v6() const noexcept { return family_kind() == family::ipv6; }
    [[nodiscard]] bool empty() const noexcept { return family_kind() == family::none; }

    [[nodiscard]] std::uint16_t port() const noexcept;
    void set_port(std::uint16_t port) noexcept;
    // The host part alone: "127.0.0.1", "::1".
    [[nodiscard]] std::string host() const;
    // "127.0.0.1:8080" or "[::1]:8080".
    [[nodiscard]] std::string to_string() const;

    // Raw sockaddr access for the sys layer and backends.
    [[nodiscard]] const void* data() const noexcept { return m_storage; }
    [[nodiscard]] void* data() noexcept { return m_storage; }
    [[nodiscard]] std::uint32_t size() const noexcept { return m_size; }
    [[nodiscard]] static constexpr std::uint32_t capacity() noexcept { return sizeof(m_storage); }
    // After the kernel has written up to capacity() bytes into data().
    void set_size(std::uint32_t n) noexcept { m_size = n; }

    friend bool operator==(const address& a, const address& b) noexcept;

private:
    alignas(8) unsigned char m_storage[28] = {}; // fits sockaddr_in and sockaddr_in6
    std::uint32_t m_size = 0;
};

} // namespace coio
