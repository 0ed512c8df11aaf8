// loop_handoff - the cost of handing work from one loop to another and back
// (issue 15: target under 1 us per round trip loop -> loop -> loop on two
// cores). Two loops (coio::run_loops, pinned to CPUs 0 and 1); loop 0 runs
// the benchmark and hands work to loop 1:
//
//   bm_spawn_round_trip    co_await loops[1].spawn(task) one at a time: the
//                          latency of a hand-off when the other loop is idle
//                          (it sleeps in epoll_wait / io_uring_enter and is
//                          woken through its eventfd; the answer wakes loop 0
//                          the same way).
//   bm_submit_round_trip   the same with coio::submit_to(loop, function).
//   bm_spawn_pipelined     64 spawns in flight at once (gather): the cost per
//                          hand-off when the loops are busy, as in a server
//                          handing records to a writer loop - wake-ups are
//                          batched, each side drains its queue per pass.
//   bm_spawn_same_loop     spawn onto loop 0 itself: the queue round trip
//                          without a thread crossing (the floor).
//   bm_cache_line_round_trip  the floor: two threads on CPUs 0 and 1 pass
//                          one atomic back and forth (spinning). No queue can
//                          hand work over and back faster than this.
//   ..._busy_poll          the same with run_loops_options::busy_poll (1 ms):
//                          an idle loop spins before it sleeps, so a hand-off
//                          is seen within one poll, with no wake-up through
//                          the kernel (the idle core's time is spent on it).
//
// Run:  COIO_BACKEND=epoll ./loop_handoff [--benchmark_format=json]
// One item = one round trip; ns per round trip = 1e9 / items_per_second.
// Time is wall-clock time on loop 0 (the default real time of Google
// Benchmark is CPU time of the calling thread, which would leave out the
// time spent waiting for loop 1).
#include <benchmark/benchmark.h>

#include <coio/coio.hpp>
#include <coio/loops.hpp>

#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <thread>
#include <vector>

namespace {

constexpr std::size_t in_flight = 64;

coio::task<int> answer(int x) {
    co_return x + 1;
}

int answer_now(int x) {
    return x + 1;
}

coio::task<> idle() {
    co_return;
}

coio::task<> spawn_round_trips(benchmark::State* state, std::size_t target) {
    const coio::loop_ref there = coio::loop_ref::all().at(target);
    int v = 0;
    for (auto _ : *state) {
        v = co_await there.spawn(answer(v));
    }
    benchmark::DoNotOptimize(v);
    state->SetItemsProcessed(state->iterations());
}

coio::task<> submit_round_trips(benchmark::State* state) {
    const coio::loop_ref there = coio::loop_ref::all().at(1);
    int v = 0;
    for (auto _ : *state) {
        v = co_await coio::submit_to(there, [v] { return answer_now(v); });
    }
    benchmark::DoNotOptimize(v);
    state->SetItemsProcessed(state->iterations());
}

coio::task<> pipelined_round_trips(benchmark::State* state) {
    const coio::loop_ref there = coio::loop_ref::all().at(1);
    long sum = 0;
    for (auto _ : *state) {
        std::vector<coio::task<int>> batch;
        batch.reserve(in_flight);
        for (std::size_t i = 0; i < in_flight; ++i) {
            batch.push_back(there.spawn(answer(static_cast<int>(i))));
        }
        std::vector<int> results = co_await coio::gather(std::move(batch));
        sum += results.back();
    }
    benchmark::DoNotOptimize(sum);
    state->SetItemsProcessed(state->iterations() * static_cast<long>(in_flight));
}

enum class mode { spawn, submit, pipelined, same_loop };

void run_on_two_loops(benchmark::State& state, mode m, bool busy = false) {
    auto main_of = [&state, m](std::size_t i) -> coio::task<> {
        if (i != 0) {
            return idle();
        }
        switch (m) {
        case mode::spawn:
            return spawn_round_trips(&state, 1);
        case mode::submit:
            return submit_round_trips(&state);
        case mode::pipelined:
            return pipelined_round_trips(&state);
        case mode::same_loop:
            break;
        }
        return spawn_round_trips(&state, 0);
    };
    coio::run_loops_options opts;
    opts.pin = true;
    if (busy) {
        opts.busy_poll = std::chrono::milliseconds(1);
    }
    coio::run_loops(2, main_of, opts);
}

void bm_spawn_round_trip(benchmark::State& state) {
    run_on_two_loops(state, mode::spawn);
}
void bm_submit_round_trip(benchmark::State& state) {
    run_on_two_loops(state, mode::submit);
}
void bm_spawn_pipelined(benchmark::State& state) {
    run_on_two_loops(state, mode::pipelined);
}
void bm_spawn_same_loop(benchmark::State& state) {
    run_on_two_loops(state, mode::same_loop);
}
void bm_spawn_round_trip_busy_poll(benchmark::State& state) {
    run_on_two_loops(state, mode::spawn, true);
}
void bm_submit_round_trip_busy_poll(benchmark::State& state) {
    run_on_two_loops(state, mode::submit, true);
}
void bm_spawn_pipelined_busy_poll(benchmark::State& state) {
    run_on_two_loops(state, mode::pipelined, true);
}
void spin_pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

void pin_to(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    (void)pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

void bm_cache_line_round_trip(benchmark::State& state) {
    cpu_set_t saved;
    (void)pthread_getaffinity_np(pthread_self(), sizeof saved, &saved);
    std::atomic<long> turn{0}; // odd: the other thread's turn
    std::atomic<bool> stop{false};
    std::thread other([&] {
        pin_to(1);
        while (!stop.load(std::memory_order_relaxed)) {
            const long t = turn.load(std::memory_order_acquire);
            if ((t & 1) != 0) {
                turn.store(t + 1, std::memory_order_release);
            }
            spin_pause();
        }
    });
    pin_to(0);
    long t = 0;
    for (auto _ : state) {
        turn.store(++t, std::memory_order_release);
        ++t;
        while (turn.load(std::memory_order_acquire) != t) {
            spin_pause();
        }
    }
    stop.store(true);
    other.join();
    (void)pthread_setaffinity_np(pthread_self(), sizeof saved, &saved);
    state.SetItemsProcessed(state.iterations());
}

BENCHMARK(bm_spawn_round_trip)->UseRealTime();
BENCHMARK(bm_submit_round_trip)->UseRealTime();
BENCHMARK(bm_spawn_pipelined)->UseRealTime();
BENCHMARK(bm_spawn_same_loop)->UseRealTime();
BENCHMARK(bm_spawn_round_trip_busy_poll)->UseRealTime();
BENCHMARK(bm_submit_round_trip_busy_poll)->UseRealTime();
BENCHMARK(bm_spawn_pipelined_busy_poll)->UseRealTime();
BENCHMARK(bm_cache_line_round_trip)->UseRealTime();

} // namespace

BENCHMARK_MAIN();
