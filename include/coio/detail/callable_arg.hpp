// coio/detail/callable_arg.hpp - how coio's APIs take callables (handlers,
// bodies, jobs) so that no compiler can make them dangle.
//
// The rule: a callable is taken by forwarding reference in a plain function
// and copied or moved into state coio owns before any coroutine frame exists;
// coroutines get that state by value.
//
// And a guard for a bug of g++ 12 (seen with 12.2; clang is correct): an
// aggregate or lambda-closure temporary created in the same full-expression
// as a co_await, such as
//     co_await coio::start_server(handler{state}, "127.0.0.1", 0);
//     co_await coio::start_server([st](coio::socket s) -> coio::task<> {...}, ...);
// is copied bit for bit into the coroutine frame and then destroyed twice, a
// heap use-after-free (the same family as equeim/tremotesf2#551). Nothing the
// callee does can repair it - the two destructions happen in the caller's
// frame - so on that compiler these APIs refuse such a temporary when it has
// a destructor that matters, at compile time, with a message saying what to
// write instead: build it in a named variable and pass the name (coio copies
// it), or coio::moved(std::move(name)) for a handler that cannot be copied.
// An rvalue cannot be told from a temporary, hence coio::moved for that case.
#pragma once

#include <string_view>
#include <type_traits>
#include <utility>

namespace coio {

// Hands a named callable to a coio API by move (see above): the API moves
// from it while the call runs. Only for rvalues: a name is passed as itself.
template <class T>
struct moved_arg {
    T&& value;
};
template <class T>
requires(!std::is_lvalue_reference_v<T>)
    [[nodiscard]] constexpr moved_arg<T> moved(T&& value) noexcept {
    return {std::move(value)};
}

namespace detail {

template <class T>
struct unwrap_moved {
    using type = T;
};
template <class T>
struct unwrap_moved<moved_arg<T>> {
    using type = T;
};
// The type an API stores for an argument deduced as Arg.
template <class Arg>
using owned_t = typename unwrap_moved<std::decay_t<Arg>>::type;

// The stored copy (or move) of a callable argument.
template <class Arg>
owned_t<Arg> take_callable(Arg&& a) {
    if constexpr (std::is_same_v<std::decay_t<Arg>, moved_arg<owned_t<Arg>>>) {
        return owned_t<Arg>(std::move(a.value));
    } else {
        return owned_t<Arg>(std::forward<Arg>(a));
    }
}

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
// g++ names a closure type "<lambda(...)>" in __PRETTY_FUNCTION__.
template <class T>
constexpr bool gcc_closure_type() {
    constexpr std::string_view name = __PRETTY_FUNCTION__;
    return name.find("<lambda") != std::string_view::npos;
}
template <class Arg>
inline constexpr bool gcc12_double_destroyed_temporary =
    !std::is_lvalue_reference_v<Arg> && std::is_class_v<std::remove_cvref_t<Arg>> &&
    !std::is_trivially_destructible_v<std::remove_cvref_t<Arg>> &&
    (std::is_aggregate_v<std::remove_cvref_t<Arg>> || gcc_closure_type<std::remove_cvref_t<Arg>>());
#else
template <class Arg>
inline constexpr bool gcc12_double_destroyed_temporary = false;
#endif

// Called by an API taking `Arg&& a`: refuses what g++ 12 would destroy twice.
template <class Arg>
constexpr void check_callable_arg() {
    static_assert(!gcc12_double_destroyed_temporary<Arg>,
                  "coio: g++ 12 destroys an aggregate or capturing-lambda temporary twice when it "
                  "is made in the same statement as co_await (a use-after-free; see "
                  "docs/design.md, Known compiler issues). Build it in a named variable and pass "
                  "the name, or pass coio::moved(std::move(name)).");
}

} // namespace detail
} // namespace coio
