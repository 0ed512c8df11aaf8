// task_await — the cost of one `co_await child()` where the child completes at once: the
// child's frame is allocated, the parent transfers into it (symmetric transfer), the child
// returns, the final awaiter transfers back, and the frame is freed. This is the everyday
// "call an async function that does not actually wait" cost of coio::task.
//
// Run:  COIO_BACKEND=epoll ./task_await [--benchmark_format=json]
// Items: one item = one awaited child. Output: Google Benchmark's table or JSON; the context
// carries "coio_backend" so one line per backend can be told apart.
#include <benchmark/benchmark.h>

#include <coio/coio.hpp>

namespace {

coio::task<int> ready_child(int v) {
    co_return v + 1;
}

coio::task<> await_loop(benchmark::State* state) {
    int acc = 0;
    for (auto _ : *state) {
        acc = co_await ready_child(acc);
        benchmark::DoNotOptimize(acc);
    }
    state->SetItemsProcessed(state->iterations());
}

void bm_await_ready_child(benchmark::State& state) {
    coio::run(await_loop(&state));
}
BENCHMARK(bm_await_ready_child);

} // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    benchmark::AddCustomContext("coio_backend", coio::backend_name());
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
}
