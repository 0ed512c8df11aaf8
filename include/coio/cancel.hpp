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

} // namespace coio
