// blocking_sleep - why a blocking call inside a coroutine stalls everything:
// two workers "sleep" 2 s each. With std::this_thread::sleep_for (blocking,
// like Python's time.sleep) the loop is frozen and they run one after the
// other: ~4 s. With co_await coio::sleep they overlap: ~2 s.
//
// Run: ./build/examples/blocking_sleep     (takes about 6 s)
#include <coio/coio.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

using namespace std::chrono_literals;

namespace {

coio::task<> blocking_worker(std::string name) {
    std::printf("  %s starting work...\n", name.c_str());
    std::this_thread::sleep_for(2s); // BLOCKING: nothing else on the loop runs
    std::printf("  %s finished work!\n", name.c_str());
    co_return;
}

coio::task<> async_worker(std::string name) {
    std::printf("  %s starting work...\n", name.c_str());
    co_await coio::sleep(2s); // NON-BLOCKING: the other worker runs meanwhile
    std::printf("  %s finished work!\n", name.c_str());
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

coio::task<> amain() {
    std::printf("With std::this_thread::sleep_for (BLOCKING)\n");
    auto t0 = std::chrono::steady_clock::now();
    co_await coio::gather(blocking_worker("Worker 1"), blocking_worker("Worker 2"));
    std::printf("Total time: %.1f seconds\n\n", seconds_since(t0));

    std::printf("With coio::sleep (NON-BLOCKING)\n");
    t0 = std::chrono::steady_clock::now();
    co_await coio::gather(async_worker("Worker 1"), async_worker("Worker 2"));
    std::printf("Total time: %.1f seconds\n", seconds_since(t0));
}

} // namespace

int main() {
    coio::run(amain());
}
