// timer_churn — timer insert + cancel while 1,000,000 timers are pending: the cost every
// sleep, wait_for or timeout pays to arm its deadline and to disarm it when the awaited
// thing wins. Uses the loop's timer heap through the loop handle's add_timer/remove_timer (the
// interface awaitables use) with coio::detail::timer_node, as a sleep_awaiter does.
//
// Two deadlines for the churned timer: "random" (uniform among the pending ones: the usual
// case) and "earliest" (sifts to the top of the heap: the worst case, log2(1e6) = 20 levels).
//
// Run:  COIO_BACKEND=epoll ./timer_churn [--benchmark_format=json]
// Items: one item = one insert + one cancel.
#include <benchmark/benchmark.h>

#include <coio/coio.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <random>

namespace {

constexpr std::size_t k_pending = 1'000'000;

void no_fire(coio::detail::timer_node& /*unused*/) noexcept {}

// The loop and its 1,000,000 pending timers, built once: Google Benchmark calls the function
// several times while it sizes the run, and rebuilding the heap each time would dominate.
struct pending_timers {
    coio::event_loop loop;
    std::unique_ptr<coio::detail::timer_node[]> nodes =
        std::make_unique<coio::detail::timer_node[]>(k_pending);
    std::chrono::steady_clock::time_point base =
        std::chrono::steady_clock::now() + std::chrono::hours(1);
    std::mt19937_64 rng{42};
    std::uniform_int_distribution<std::int64_t> spread{1, 3'600'000'000'000}; // within 1 h

    pending_timers() {
        for (std::size_t i = 0; i < k_pending; ++i) {
            nodes[i].m_deadline = base + std::chrono::nanoseconds(spread(rng));
            nodes[i].m_fire = &no_fire;
            coio::detail::core_of(loop).add_timer(nodes[i]);
        }
    }
    ~pending_timers() {
        for (std::size_t i = 0; i < k_pending; ++i) {
            coio::detail::core_of(loop).remove_timer(nodes[i]);
        }
    }
    pending_timers(const pending_timers&) = delete;
    pending_timers& operator=(const pending_timers&) = delete;
};
std::unique_ptr<pending_timers> g_pending;

void bm_timer_insert_cancel(benchmark::State& state) {
    const bool earliest = state.range(0) == 1;
    if (!g_pending) {
        g_pending = std::make_unique<pending_timers>();
    }
    pending_timers& p = *g_pending;
    // Deadlines drawn before timing, so the clock and the generator are not measured.
    constexpr std::size_t k_deadlines = 4096;
    std::vector<coio::detail::timer_node::time_point> deadlines(k_deadlines);
    for (auto& d : deadlines) {
        d = earliest ? p.base : p.base + std::chrono::nanoseconds(p.spread(p.rng));
    }
    coio::detail::timer_node t;
    t.m_fire = &no_fire;
    std::size_t i = 0;
    for (auto _ : state) {
        t.m_deadline = deadlines[i++ & (k_deadlines - 1)];
        coio::detail::core_of(p.loop).add_timer(t);
        coio::detail::core_of(p.loop).remove_timer(t);
    }
    state.SetItemsProcessed(state.iterations());
    state.SetLabel(earliest ? "earliest" : "random");
}
BENCHMARK(bm_timer_insert_cancel)->Arg(0)->Arg(1);

} // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    benchmark::AddCustomContext("coio_backend", coio::backend_name());
    benchmark::RunSpecifiedBenchmarks();
    g_pending.reset(); // every timer removed before the loop goes
    benchmark::Shutdown();
}
