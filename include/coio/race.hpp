// coio/race.hpp - race and race_all_results: the first awaitable to finish
// wins, the others are cancelled and waited for (Asio's `||`, Tokio's
// `select!`, asyncio.wait(FIRST_COMPLETED) followed by cancel-and-wait).
//
//   std::variant<std::string, std::monostate> r =
//       co_await coio::race(reader.readline(), coio::sleep(5s));
//   if (r.index() == 1) { ... the sleep won: timed out ... }
//
//   coio::race_result<int> r = co_await coio::race(std::move(tasks)); // range form
//   use(r.index, r.value);
//
// Policy:
//  - Every argument runs as a child with its own cancel slot, started in
//    argument order on the next loop pass (as in gather). The first child
//    whose await ENDS - with a value or an exception - is the winner; every
//    other child is cancelled at once.
//  - The caller resumes only when every child has finished: a loser's timer,
//    socket operation or awaited task is really cancelled, nothing it started
//    is still running (unlike asyncio.wait, which leaves them to you).
//  - race returns the winner's value (a std::variant whose index() is the
//    winner's position; void gives std::monostate, T& a reference_wrapper),
//    or rethrows the winner's exception.
//  - Losers' outcomes are dropped: their exceptions (usually cancelled_error)
//    and - the case to know about - a value a loser produced anyway because
//    its operation completed before the cancel reached it (a read_chunk
//    whose data had arrived, a queue get handed an item, a task that caught
//    the cancel and returned). When a loser's value must not be lost - the
//    children consume data - use race_all_results, which returns every
//    child's outcome. (Sync primitives never lose a hand-off: a cancelled
//    get or acquire gives it back; so race(q.get(), sleep(d)) is safe.)
//  - A task_handle passed in is awaited, so losing cancels that TASK (as
//    awaiting a handle forwards a cancel); wrap it in shield(h) to race
//    without cancelling it.
//  - Cancelling the caller cancels every child; once all have finished,
//    cancelled_error is thrown - unless the first child to finish ended
//    with a value (the cancel came too late): that value is returned and the
//    caller's request stays pending for its next await (cancel_slot.hpp).
//  - An empty range throws std::invalid_argument when awaited.
//  - Arguments are taken by value (tasks, task handles, any awaitable).
#pragma once

#include <coio/detail/race_state.hpp>
#include <coio/task.hpp>

#include <cstddef>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

namespace coio {

// What the range form of race returns: the winner's position and value.
template <class T>
struct race_result {
    std::size_t index;
    T value;
};

// What race_all_results returns: the winner's position and every child's
// outcome (a std::tuple of result<T> for the variadic form, a vector for the
// range form), in argument order.
template <class Results>
struct race_outcomes {
    std::size_t winner;
    Results results;
};

// Variadic form: the winner's value as a std::variant (index() = position).
template <class... A>
task<std::variant<detail::race_value_t<detail::await_result_t<A>>...>> race(A... a) {
    detail::race_tuple_awaiter<A...> aw(std::move(a)...);
    co_await aw;
    co_return aw.take_winner();
}

// Range form: {index, value} of the winner (void children: std::monostate).
template <class A>
task<race_result<detail::race_value_t<detail::await_result_t<A>>>> race(std::vector<A> v) {
    detail::race_range_awaiter<A> aw(std::move(v));
    co_await aw;
    const std::size_t w = aw.take_winner();
    co_return race_result<detail::race_value_t<detail::await_result_t<A>>>{
        w, detail::take_value(aw.results()[w])};
}

// Like race, but never throws a child's exception and drops nothing: returns
// the winner's position and one result<T> per child - the winner's, and each
// loser's (usually cancelled_error; a value if it completed before the
// cancel reached it). Throws cancelled_error only if the caller was cancelled
// and no child produced a value.
template <class... A>
task<race_outcomes<std::tuple<result<detail::await_result_t<A>>...>>> race_all_results(A... a) {
    detail::race_tuple_awaiter<A...> aw(std::move(a)...);
    co_await aw;
    const std::size_t w = aw.take_all();
    co_return race_outcomes<std::tuple<result<detail::await_result_t<A>>...>>{
        w, std::move(aw.results())};
}

// Range form of race_all_results.
template <class A>
task<race_outcomes<std::vector<result<detail::await_result_t<A>>>>>
race_all_results(std::vector<A> v) {
    detail::race_range_awaiter<A> aw(std::move(v));
    co_await aw;
    const std::size_t w = aw.take_all();
    co_return race_outcomes<std::vector<result<detail::await_result_t<A>>>>{
        w, std::move(aw.results())};
}

} // namespace coio
