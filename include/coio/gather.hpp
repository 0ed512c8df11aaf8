// coio/gather.hpp - run awaitables concurrently and collect their results.
//
//   auto [a, b] = co_await coio::gather(fetch(1), fetch(2));   // std::tuple
//   std::vector<int> v = co_await coio::gather(std::move(tasks)); // range form
//   auto rs = co_await coio::gather(coio::return_exceptions, f(), g()); // result<T> each
//
// Policy (deliberately unlike asyncio.gather):
//  - gather always waits for EVERY child to finish before the caller resumes,
//    because the children live in the caller's frame; none is left running.
//  - Then, if any child threw, the first exception (in completion order) is
//    rethrown; the other outcomes are discarded. Siblings are NOT cancelled when
//    one fails: use task_group for fail-fast.
//  - The return_exceptions form never throws a child's exception; it returns
//    one coio::result<T> per child, in argument order.
//  - Results are in argument order; a void child contributes std::monostate.
//  - Children start in argument order on the next loop pass, each with its own
//    cancel slot. Cancelling the caller cancels every child; gather then waits
//    for all of them and throws cancelled_error.
//  - Arguments are taken by value (tasks, task handles, any awaitable).
#pragma once

#include <coio/detail/gather_state.hpp>
#include <coio/event_loop.hpp>
#include <coio/task.hpp>

#include <cstddef>
#include <tuple>
#include <utility>
#include <vector>

namespace coio {

// Tag selecting the form of gather that returns result<T> per child.
struct return_exceptions_t {
    explicit return_exceptions_t() = default;
};
inline constexpr return_exceptions_t return_exceptions{};

namespace detail {

inline loop_core* gather_loop(loop_core* from_promise) {
    return &core_or_running(from_promise);
}

template <class... A>
class gather_tuple_awaiter : gather_core {
public:
    using results_t = std::tuple<result<await_result_t<A>>...>;

    gather_tuple_awaiter(bool rethrow, A... a) : gather_core(sizeof...(A), rethrow) {
        make_children(std::index_sequence_for<A...>{}, std::move(a)...);
    }

    [[nodiscard]] bool await_ready() const noexcept { return ready(); }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        return start(h, gather_loop(loop_of(h)), slot_of(h));
    }
    results_t await_resume() {
        finish();
        return std::move(m_results);
    }

private:
    template <std::size_t... I>
    void make_children(std::index_sequence<I...>, A... a) {
        ((m_children[I] = run_gather_child<A, await_result_t<A>>(
              std::move(a), &std::get<I>(m_results), &m_counter)),
         ...);
    }

    results_t m_results;
};

template <class A>
class gather_range_awaiter : gather_core {
public:
    using value_t = await_result_t<A>;

    gather_range_awaiter(bool rethrow, std::vector<A> v)
        : gather_core(v.size(), rethrow), m_results(v.size()) {
        for (std::size_t i = 0; i < v.size(); ++i) {
            m_children[i] =
                run_gather_child<A, value_t>(std::move(v[i]), &m_results[i], &m_counter);
        }
    }

    [[nodiscard]] bool await_ready() const noexcept { return ready(); }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        return start(h, gather_loop(loop_of(h)), slot_of(h));
    }
    std::vector<result<value_t>> await_resume() {
        finish();
        return std::move(m_results);
    }

private:
    std::vector<result<value_t>> m_results;
};

template <class R>
gather_value_t<R> unwrap(result<R>&& r) {
    if constexpr (std::is_void_v<R>) {
        std::move(r).value();
        return {};
    } else {
        return std::move(r).value();
    }
}

} // namespace detail

// Variadic form: a tuple of values; rethrows the first failure after all finish.
template <class... A>
task<std::tuple<detail::gather_value_t<detail::await_result_t<A>>...>> gather(A... a) {
    auto rs = co_await detail::gather_tuple_awaiter<A...>(true, std::move(a)...);
    co_return std::apply(
        [](auto&&... r) {
            return std::tuple<detail::gather_value_t<detail::await_result_t<A>>...>(
                detail::unwrap(std::move(r))...);
        },
        std::move(rs));
}

// Variadic form that never throws a child's exception: result<T> per child.
template <class... A>
task<std::tuple<result<detail::await_result_t<A>>...>> gather(return_exceptions_t, A... a) {
    co_return co_await detail::gather_tuple_awaiter<A...>(false, std::move(a)...);
}

// Range form: a vector of values in input order.
template <class A>
task<std::vector<detail::gather_value_t<detail::await_result_t<A>>>> gather(std::vector<A> v) {
    auto rs = co_await detail::gather_range_awaiter<A>(true, std::move(v));
    std::vector<detail::gather_value_t<detail::await_result_t<A>>> out;
    out.reserve(rs.size());
    for (auto& r : rs) {
        out.push_back(detail::unwrap(std::move(r)));
    }
    co_return out;
}

// Range form that never throws a child's exception.
template <class A>
task<std::vector<result<detail::await_result_t<A>>>> gather(return_exceptions_t, std::vector<A> v) {
    co_return co_await detail::gather_range_awaiter<A>(false, std::move(v));
}

} // namespace coio
