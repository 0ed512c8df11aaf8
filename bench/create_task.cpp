// create_task — asyncio.create_task + await: schedule a child as its own task (root frame
// + task frame, loop bookkeeping), then await its handle. The child starts on the next
// loop iteration, finishes at once, and its completion posts the parent back; so one item
// is two frame allocations and two passes through the ready queue.
//
// Run:  COIO_BACKEND=epoll ./create_task [--benchmark_format=json]
// Items: one item = one create_task + co_await of the handle.
#include <benchmark/benchmark.h>

#include <coio/coio.hpp>

namespace {

coio::task<int> child(int v) {
    co_return v + 1;
}

coio::task<> spawn_loop(benchmark::State* state) {
    int acc = 0;
    for (auto _ : *state) {
        coio::task_handle<int> h = coio::create_task(child(acc));
        acc = co_await h;
        benchmark::DoNotOptimize(acc);
    }
    state->SetItemsProcessed(state->iterations());
}

void bm_create_task_await(benchmark::State& state) {
    coio::run(spawn_loop(&state));
}
BENCHMARK(bm_create_task_await);

} // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    benchmark::AddCustomContext("coio_backend", coio::backend_name());
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
}
