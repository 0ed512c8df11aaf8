// coio/cancel.hpp - the exception a cancelled await throws.
#pragma once

#include <exception>

namespace coio {

// Thrown by the current or next co_await of a task whose handle's cancel() was
// called (asyncio.CancelledError). Catching it and going on is allowed; the
// request is consumed when it is thrown.
class cancelled_error : public std::exception {
public:
    [[nodiscard]] const char* what() const noexcept override { return "coio: task cancelled"; }
};

namespace detail {

// True if `e` holds a cancelled_error (false for null).
inline bool is_cancelled(const std::exception_ptr& e) noexcept {
    if (!e) {
        return false;
    }
    try {
        std::rethrow_exception(e);
    } catch (const cancelled_error&) {
        return true;
    } catch (...) {
        return false;
    }
}

} // namespace detail

} // namespace coio
