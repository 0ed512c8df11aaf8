// coio/detail/race_state.hpp - the machinery behind coio::race and
// coio::race_all_results.
//
// Each awaitable runs in its own child coroutine with its own cancel slot, as
// in gather (gather_state.hpp): the children are posted together and start in
// argument order on the next pass. When a child's body ends it calls
// race_core::child_done before its final suspend; the first one to do so is
// the winner, and child_done requests every other child's slot (hooks only
// post, so nothing is resumed there). The last child to finish switches back
// to the caller - so the caller resumes only once every loser has finished.
#pragma once

#include <coio/cancel.hpp>
#include <coio/detail/gather_state.hpp>

#include <cstddef>
#include <exception>
#include <functional>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace coio::detail {

inline constexpr std::size_t no_winner = ~std::size_t{0};

// How a child's value appears in race's std::variant: void becomes
// std::monostate and a reference a std::reference_wrapper.
template <class R>
struct race_value {
    using type = R;
};
template <>
struct race_value<void> {
    using type = std::monostate;
};
template <class R>
struct race_value<R&> {
    using type = std::reference_wrapper<R>;
};
template <class R>
using race_value_t = typename race_value<R>::type;

// The non-template half (lib/race.cpp): the winner, stopping the losers, the
// decision at the end. The derived awaiters own the children's results.
class race_core : protected gather_core {
public:
    // A child's body ended (its outcome is stored). The first call names the
    // winner and cancels every other child. Runs no user code.
    void child_done(std::size_t index) noexcept;

protected:
    // Throws std::invalid_argument for n == 0 (a race nobody can win).
    explicit race_core(std::size_t n);
    ~race_core() = default;

    // Returns false if the caller must not suspend (its cancel is pending:
    // no child starts).
    bool begin(std::coroutine_handle<> parent, loop_core* loop, cancel_slot* parent_slot);
    // Every child has finished. Detaches from the caller's slot, then throws
    // cancelled_error (consuming the caller's request) if the caller was
    // cancelled, the winner ended with cancelled_error and no child produced
    // a value that must be returned (`keep` says whether one did). Returns
    // the winner's index otherwise.
    std::size_t end(bool winner_cancelled, bool keep);

    std::size_t m_winner = no_winner;

private:
    // "race of 3" and each child's chain (lib/introspect.cpp).
    static void describe_race(const void* self, await_printer& out);
};

// The body of each child: run `a`, store its outcome, tell the race.
template <class A, class R>
gather_child run_race_child(A a, result<R>* out, race_core* race, std::size_t index) {
    try {
        if constexpr (std::is_void_v<R>) {
            co_await std::move(a);
            out->set_value();
        } else {
            out->set_value(co_await std::move(a));
        }
    } catch (...) {
        out->set_exception(std::current_exception());
    }
    race->child_done(index);
}

// True if `r` holds a cancelled_error.
template <class R>
bool ended_cancelled(const result<R>& r) noexcept {
    return is_cancelled(r.exception());
}

// The winner's value out of its result (void as std::monostate), or its
// exception rethrown.
template <class R>
race_value_t<R> take_value(result<R>& r) {
    if constexpr (std::is_void_v<R>) {
        std::move(r).value();
        return {};
    } else if constexpr (std::is_reference_v<R>) {
        return std::ref(r.value());
    } else {
        return std::move(r).value();
    }
}

template <class... A>
class race_tuple_awaiter : public race_core {
public:
    using results_t = std::tuple<result<await_result_t<A>>...>;
    using variant_t = std::variant<race_value_t<await_result_t<A>>...>;

    explicit race_tuple_awaiter(A... a) : race_core(sizeof...(A)) {
        make_children(std::index_sequence_for<A...>{}, std::move(a)...);
    }

    static bool await_ready() noexcept { return false; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        return begin(h, loop_of(h), slot_of(h));
    }
    // The outcome is read afterwards with take_winner() or take_all().
    static void await_resume() noexcept {}

    // Plain race: the winner's value, or its exception.
    variant_t take_winner() {
        const std::size_t w = end(winner_cancelled(std::index_sequence_for<A...>{}), false);
        return winner_value(w, std::index_sequence_for<A...>{});
    }
    // race_all_results: every child's outcome.
    std::size_t take_all() {
        return end(winner_cancelled(std::index_sequence_for<A...>{}),
                   any_value(std::index_sequence_for<A...>{}));
    }
    results_t& results() noexcept { return m_results; }

private:
    template <std::size_t... I>
    void make_children(std::index_sequence<I...>, A... a) {
        ((m_children[I] =
              run_race_child<A, await_result_t<A>>(std::move(a), &std::get<I>(m_results), this, I)),
         ...);
    }
    template <std::size_t... I>
    bool winner_cancelled(std::index_sequence<I...>) const noexcept {
        return ((m_winner == I && ended_cancelled(std::get<I>(m_results))) || ...);
    }
    template <std::size_t... I>
    bool any_value(std::index_sequence<I...>) const noexcept {
        return (std::get<I>(m_results).has_value() || ...);
    }
    template <std::size_t... I>
    variant_t winner_value(std::size_t w, std::index_sequence<I...>) {
        // One arm per child; exactly one matches the winner.
        std::optional<variant_t> v;
        (void)((w == I
                    ? (v.emplace(std::in_place_index<I>, take_value(std::get<I>(m_results))), true)
                    : false) ||
               ...);
        return std::move(*v);
    }

    results_t m_results;
};

template <class A>
class race_range_awaiter : public race_core {
public:
    using value_t = await_result_t<A>;

    explicit race_range_awaiter(std::vector<A> v) : race_core(v.size()), m_results(v.size()) {
        for (std::size_t i = 0; i < v.size(); ++i) {
            m_children[i] = run_race_child<A, value_t>(std::move(v[i]), &m_results[i], this, i);
        }
    }

    static bool await_ready() noexcept { return false; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        return begin(h, loop_of(h), slot_of(h));
    }
    // The outcome is read afterwards with take_winner() or take_all().
    static void await_resume() noexcept {}

    // Plain race: the winner's index (its value is in results()).
    std::size_t take_winner() { return end(winner_cancelled(), false); }
    // race_all_results: the winner's index.
    std::size_t take_all() {
        bool any = false;
        for (const auto& r : m_results) {
            any = any || r.has_value();
        }
        return end(winner_cancelled(), any);
    }
    std::vector<result<value_t>>& results() noexcept { return m_results; }

private:
    bool winner_cancelled() const noexcept {
        return m_winner != no_winner && ended_cancelled(m_results[m_winner]);
    }

    std::vector<result<value_t>> m_results;
};

} // namespace coio::detail
