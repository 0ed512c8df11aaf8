// lib/net/error.cpp - errno to io_status.
#include <coio/net/error.hpp>

#include <cerrno>
#include <cstring>
#include <string>

namespace coio {

std::string_view to_string(io_status s) noexcept {
    switch (s) {
    case io_status::ok:
        return "ok";
    case io_status::eof:
        return "eof";
    case io_status::reset:
        return "reset";
    case io_status::refused:
        return "refused";
    case io_status::timed_out:
        return "timed out";
    case io_status::cancelled:
        return "cancelled";
    case io_status::error:
        return "error";
    }
    return "?";
}

std::string io_result::message() const {
    std::string out(to_string(status));
    if (error) {
        out += ": ";
        out += error.message();
    }
    return out;
}

namespace detail {

io_result make_io_result(int r, std::size_t bytes) noexcept {
    if (r >= 0) {
        return {io_status::ok, bytes, {}};
    }
    int e = -r;
    io_status s = io_status::error;
    switch (e) {
    case ECONNRESET:
    case EPIPE:
    case ECONNABORTED:
        s = io_status::reset;
        break;
    case ECONNREFUSED:
        s = io_status::refused;
        break;
    case ETIMEDOUT:
        s = io_status::timed_out;
        break;
    case ECANCELED:
        s = io_status::cancelled;
        break;
    default:
        break;
    }
    return {s, bytes, std::error_code(e, std::system_category())};
}

void throw_net_error(int err, std::string_view op, std::string_view target) {
    std::string what(op);
    if (!target.empty()) {
        what += ' ';
        what += target;
    }
    throw net_error(std::error_code(err, std::system_category()), what);
}

} // namespace detail
} // namespace coio
