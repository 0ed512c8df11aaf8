// lib/channel.cpp - the non-template half of coio::channel
// (detail/channel_state.hpp).
#include <coio/detail/channel_state.hpp>
#include <coio/event_loop.hpp>

#include <stdexcept>
#include <string>

namespace coio::detail {

channel_core::channel_core(std::size_t capacity) : m_capacity(capacity) {
    if (capacity == 0) {
        throw std::invalid_argument("coio::channel: the capacity must be at least 1");
    }
}

void channel_core::refuse_on_loop(const char* what) {
    if (event_loop::current() != nullptr) {
        throw std::logic_error(std::string(what) +
                               ": called on an event loop's thread (it would block the loop; "
                               "co_await the async form instead)");
    }
}

} // namespace coio::detail
