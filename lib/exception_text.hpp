// lib/exception_text.hpp - what an exception_ptr holds, for messages and policy.
#pragma once

#include <coio/cancel.hpp>

#include <exception>
#include <string>

namespace coio::detail {

// is_cancelled(e): coio/cancel.hpp.

// what() of `e`, or a placeholder for exceptions not derived from std::exception.
inline std::string describe_exception(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        return x.what();
    } catch (...) {
        return "unknown exception (not derived from std::exception)";
    }
}

} // namespace coio::detail
