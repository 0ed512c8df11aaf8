// lib/net/resolve.cpp - getaddrinfo on the pool; connect tries each address.
#include <coio/net/connection.hpp>
#include <coio/net/error.hpp>
#include <coio/net/resolve.hpp>
#include <coio/to_thread.hpp>

#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

namespace coio {

namespace {

class dns_error_category final : public std::error_category {
public:
    [[nodiscard]] const char* name() const noexcept override { return "dns"; }
    [[nodiscard]] std::string message(int code) const override { return ::gai_strerror(code); }
};

// Runs on a pool thread. Returns addresses or throws net_error.
std::vector<address> blocking_resolve(const std::string& host, std::uint16_t port) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    addrinfo* res = nullptr;
    std::string service = std::to_string(port);
    int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
    if (rc != 0) {
        std::error_code ec = rc == EAI_SYSTEM ? std::error_code(errno, std::system_category())
                                              : std::error_code(rc, dns_category());
        throw net_error(ec, "resolve " + host + ":" + service);
    }
    std::unique_ptr<addrinfo, void (*)(addrinfo*)> hold(res, ::freeaddrinfo);
    std::vector<address> out;
    for (const addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
            ai->ai_addrlen > address::capacity()) {
            continue;
        }
        address a;
        std::memcpy(a.data(), ai->ai_addr, ai->ai_addrlen);
        a.set_size(static_cast<std::uint32_t>(ai->ai_addrlen));
        if (std::find(out.begin(), out.end(), a) == out.end()) {
            out.push_back(a);
        }
    }
    if (out.empty()) {
        throw net_error(std::error_code(EAI_NONAME, dns_category()),
                        "resolve " + host + ":" + service + " (no IPv4 or IPv6 address)");
    }
    return out;
}

} // namespace

const std::error_category& dns_category() noexcept {
    static const dns_error_category c;
    return c;
}

task<std::vector<address>> resolve(std::string host, std::uint16_t port) {
    if (auto numeric = address::try_parse(host, port)) {
        co_return std::vector<address>{*numeric};
    }
    co_return co_await to_thread(blocking_resolve, std::move(host), port);
}

// Tries each address in turn (asyncio's create_connection without happy
// eyeballs); the error names the host and every address tried.
task<socket> connect(std::string host, std::uint16_t port) {
    if (auto numeric = address::try_parse(host, port)) {
        co_return co_await connect(*numeric);
    }
    std::vector<address> addrs = co_await resolve(host, port);
    std::string tried;
    std::error_code last;
    for (const address& a : addrs) {
        socket s = socket::open_tcp(a.family_kind());
        io_result r = co_await s.connect(a);
        if (r) {
            s.set_nodelay(true);
            co_return s;
        }
        last = r.error;
        tried += (tried.empty() ? "" : ", ") + a.to_string();
    }
    throw net_error(last, "connect to " + host + ":" + std::to_string(port) + " (" + tried + ")");
}

} // namespace coio
