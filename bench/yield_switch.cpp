// yield_switch — the coroutine switch: two tasks on one loop ping-pong with
// coio::yield_now() (asyncio.sleep(0)). Each yield posts the task to the ready queue and
// the loop resumes the other one, so one switch = suspend + queue push + queue pop +
// resume, all in user space. This is the number to hold against thread_switch.
//
// Run:  COIO_BACKEND=epoll ./yield_switch [--benchmark_format=json]
// Items: one item = one switch (each benchmark iteration is one yield of each task, i.e.
// two switches), so ns per switch = 1e9 / items_per_second.
#include <benchmark/benchmark.h>

#include <coio/coio.hpp>

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

} // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    benchmark::AddCustomContext("coio_backend", coio::backend_name());
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
}
