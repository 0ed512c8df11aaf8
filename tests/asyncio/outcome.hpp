// tests/asyncio/outcome.hpp - how an await ended, as text, so that tests can
// CHECK it outside the co_await (Catch2's macros are not awaited through).
#pragma once

#include <coio/coio.hpp>

#include <exception>
#include <string>
#include <type_traits>
#include <utility>

namespace coio::test {

// "value 7", "done" (void), "timeout_error", "cancelled_error",
// "exception_group: <what>", "exception: <what>".
template <class A>
coio::task<std::string> outcome(A a) {
    try {
        if constexpr (std::is_void_v<coio::detail::await_result_t<A>>) {
            co_await std::move(a);
            co_return "done";
        } else {
            auto v = co_await std::move(a);
            if constexpr (std::is_arithmetic_v<decltype(v)>) {
                co_return "value " + std::to_string(v);
            } else {
                co_return "value " + std::string(v);
            }
        }
    } catch (const coio::timeout_error&) {
        co_return "timeout_error";
    } catch (const coio::cancelled_error&) {
        co_return "cancelled_error";
    } catch (const coio::exception_group& e) {
        co_return std::string("exception_group: ") + e.what();
    } catch (const std::exception& e) {
        co_return std::string("exception: ") + e.what();
    }
}

} // namespace coio::test
