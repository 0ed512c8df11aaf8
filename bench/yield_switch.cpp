// yield_switch — the coroutine switch: two tasks on one loop ping-pong with
// coio::yield_now() (asyncio.sleep(0)). Each yield posts the task to the ready queue and
// the loop resumes the other one, so one switch = suspend + queue push + queue pop +
// resume, all in user space. This is the number to hold against thread_switch.
//
// bm_transfer_switch is the other half of the picture: two coroutines handing control to
// each other directly by symmetric transfer (await_suspend returns the other's handle,
// through coio's depth guard, which sends every 64th switch through the ready queue). That
// is the switch inside every `co_await task` and every task's return, without the frame
// allocation (bench/task_await has that) and without the scheduler (yield_switch).
//
// Run:  COIO_BACKEND=epoll ./yield_switch [--benchmark_format=json]
// Items: one item = one switch (each benchmark iteration is one yield of each task, i.e.
// two switches), so ns per switch = 1e9 / items_per_second.
#include <benchmark/benchmark.h>

#include <coio/coio.hpp>

#include <coroutine>

namespace {

coio::task<> partner(const bool* stop) {
    while (!*stop) {
        co_await coio::yield_now();
    }
}

coio::task<> ping_pong(benchmark::State* state) {
    bool stop = false;
    coio::task_handle<> other = coio::create_task(partner(&stop));
    co_await coio::yield_now(); // let the partner start before timing
    for (auto _ : *state) {
        co_await coio::yield_now();
    }
    stop = true;
    co_await other;
    state->SetItemsProcessed(state->iterations() * 2);
}

void bm_yield_switch(benchmark::State& state) {
    coio::run(ping_pong(&state));
}
BENCHMARK(bm_yield_switch);

struct baton {
    std::coroutine_handle<> ping;
    std::coroutine_handle<> pong;
};

// Park the current coroutine in *self and continue `*target` (symmetric transfer, depth
// guarded like task's own awaiters).
struct switch_to {
    std::coroutine_handle<>* self;
    const std::coroutine_handle<>* target;
    static bool await_ready() noexcept { return false; }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
        *self = h;
        return coio::detail::transfer(coio::detail::loop_of(h), *target);
    }
    static void await_resume() noexcept {}
};

coio::task<> pong(baton* b) {
    for (;;) { // never returns: ping destroys this frame while it is suspended
        co_await switch_to{&b->pong, &b->ping};
    }
}

coio::task<> transfer_ping_pong(benchmark::State* state) {
    baton b;
    coio::task<> partner_task = pong(&b);
    auto h = partner_task.release();
    // The partner is never awaited as a task, so give it the loop for the depth guard.
    h.promise().m_loop = &coio::detail::running_loop_core();
    b.pong = h;
    for (auto _ : *state) {
        co_await switch_to{&b.ping, &b.pong};
    }
    h.destroy();
    state->SetItemsProcessed(state->iterations() * 2);
}

void bm_transfer_switch(benchmark::State& state) {
    coio::run(transfer_ping_pong(&state));
}
BENCHMARK(bm_transfer_switch);

} // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    benchmark::AddCustomContext("coio_backend", coio::backend_name());
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
}
