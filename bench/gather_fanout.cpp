// gather_fanout — coio::gather over N children that each finish at once (N = 10 and
// 1,000): build the vector of tasks, gather them (each child gets its own cancel slot and
// starts on the next loop pass), collect the results in order.
//
// Run:  COIO_BACKEND=epoll ./gather_fanout [--benchmark_format=json]
// Items: one item = one child, so ns per child = 1e9 / items_per_second; the time per
// iteration is the whole gather.
#include <benchmark/benchmark.h>

#include <coio/coio.hpp>

#include <cstdint>
#include <vector>

namespace {

coio::task<int> child(int v) {
    co_return v;
}

coio::task<> gather_loop(benchmark::State* state) {
    const auto n = static_cast<int>(state->range(0));
    std::int64_t sum = 0;
    for (auto _ : *state) {
        std::vector<coio::task<int>> children;
        children.reserve(static_cast<std::size_t>(n));
        for (int i = 0; i < n; ++i) {
            children.push_back(child(i));
        }
        std::vector<int> values = co_await coio::gather(std::move(children));
        sum += values.back();
        benchmark::DoNotOptimize(sum);
    }
    state->SetItemsProcessed(state->iterations() * n);
}

void bm_gather(benchmark::State& state) {
    coio::run(gather_loop(&state));
}
BENCHMARK(bm_gather)->Arg(10)->Arg(1000);

} // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    benchmark::AddCustomContext("coio_backend", coio::backend_name());
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
}
