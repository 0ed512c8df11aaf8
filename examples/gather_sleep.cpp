// gather_sleep - the seeds' non-blocking sleep demo: two workers sleep 2 s
// each, concurrently, so the total is about 2 s, not 4.
//
// Python's version:
//     await asyncio.gather(worker("Worker 1"), worker("Worker 2"))
//
// Run: ./build/examples/gather_sleep
#include <coio/coio.hpp>

#include <chrono>
#include <cstdio>
#include <string>

using namespace std::chrono_literals;

namespace {

coio::task<> worker(std::string name) {
    std::printf("%s starting work...\n", name.c_str());
    co_await coio::sleep(2s); // non-blocking: the other worker runs meanwhile
    std::printf("%s finished work!\n", name.c_str());
}

coio::task<> amain() {
    std::printf("With coio::sleep (non-blocking)\n");
    auto start = std::chrono::steady_clock::now();
    co_await coio::gather(worker("Worker 1"), worker("Worker 2"));
    std::chrono::duration<double> total = std::chrono::steady_clock::now() - start;
    std::printf("Total time: %.1f seconds\n", total.count());
    std::printf("Notice: both workers ran at the same time!\n");
}

} // namespace

int main() {
    coio::run(amain());
}
