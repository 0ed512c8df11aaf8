// coio/net/resolve.hpp - name resolution off the loop thread.
//
// getaddrinfo blocks, so resolve() runs it on the to_thread pool (as asyncio's
// loop.getaddrinfo runs it in the default executor); the loop keeps serving
// meanwhile. A failure throws net_error whose code is in dns_category() and
// whose what() names the host: "resolve nosuch.example:80: Name or service not known".
#pragma once

#include <coio/net/address.hpp>
#include <coio/task.hpp>

#include <cstdint>
#include <string>
#include <system_error>
#include <vector>

namespace coio {

// The category of getaddrinfo's EAI_* codes (messages from gai_strerror).
const std::error_category& dns_category() noexcept;

// Addresses for host:port, in getaddrinfo's order (TCP). A numeric host is
// returned at once without a lookup.
task<std::vector<address>> resolve(std::string host, std::uint16_t port);

} // namespace coio
