// coio/result.hpp - a value or the exception that replaced it.
//
// What gather(return_exceptions, ...) hands back per child, and what a task's
// promise stores until the awaiting coroutine picks it up.
#pragma once

#include <exception>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>

namespace coio {

namespace detail {
template <class T>
struct stored {
    using type = T;
};
template <class T>
struct stored<T&> {
    using type = T*;
};
template <>
struct stored<void> {
    using type = std::monostate;
};
} // namespace detail

template <class T>
class result {
    using stored_t = typename detail::stored<T>::type;

public:
    result() = default;

    [[nodiscard]] bool empty() const noexcept { return m_v.index() == 0; }
    [[nodiscard]] bool has_value() const noexcept { return m_v.index() == 1; }
    [[nodiscard]] bool has_exception() const noexcept { return m_v.index() == 2; }
    explicit operator bool() const noexcept { return has_value(); }

    [[nodiscard]] std::exception_ptr exception() const noexcept {
        return has_exception() ? std::get<2>(m_v) : nullptr;
    }

    // The value; rethrows the stored exception. Throws std::logic_error if empty.
    decltype(auto) value() & {
        check();
        if constexpr (std::is_void_v<T>) {
            return;
        } else if constexpr (std::is_reference_v<T>) {
            return static_cast<T>(*std::get<1>(m_v));
        } else {
            return static_cast<T&>(std::get<1>(m_v));
        }
    }
    decltype(auto) value() && {
        check();
        if constexpr (std::is_void_v<T>) {
            return;
        } else if constexpr (std::is_reference_v<T>) {
            return static_cast<T>(*std::get<1>(m_v));
        } else {
            return T(std::move(std::get<1>(m_v)));
        }
    }

    template <class... Args>
    void set_value(Args&&... args) {
        if constexpr (std::is_reference_v<T>) {
            m_v.template emplace<1>(std::addressof(args)...);
        } else {
            m_v.template emplace<1>(std::forward<Args>(args)...);
        }
    }
    void set_exception(std::exception_ptr e) noexcept { m_v.template emplace<2>(std::move(e)); }

private:
    void check() const {
        if (has_exception()) {
            std::rethrow_exception(std::get<2>(m_v));
        }
        if (empty()) {
            throw std::logic_error("coio::result: no value (the task has not finished)");
        }
    }

    std::variant<std::monostate, stored_t, std::exception_ptr> m_v;
};

} // namespace coio
