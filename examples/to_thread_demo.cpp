// to_thread_demo - CPU-heavy work on the thread pool keeps the loop responsive.
//
// A heartbeat task prints every 100 ms while two prime counts run in
// parallel on the pool (C++ has no GIL, so they use both cores; the seeds
// reach for a process pool in Python). Run the same count inline on the loop
// with --inline and the heartbeat stops until it is done.
//
// Run: ./build/examples/to_thread_demo [--inline]
#include <coio/coio.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>

using namespace std::chrono_literals;

namespace {

long count_primes(long below) {
    long n = 0;
    for (long i = 2; i < below; ++i) {
        bool prime = true;
        for (long d = 2; d * d <= i; ++d) {
            if (i % d == 0) {
                prime = false;
                break;
            }
        }
        n += prime ? 1 : 0;
    }
    return n;
}

coio::task<> heartbeat(std::chrono::steady_clock::time_point t0, bool* done) {
    while (!*done) {
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - t0);
        std::printf("  heartbeat at %5lld ms\n", static_cast<long long>(ms.count()));
        co_await coio::sleep(100ms);
    }
}

coio::task<std::pair<long, long>> crunch(bool inline_work, bool* done) {
    std::pair<long, long> out;
    if (inline_work) {
        out = {count_primes(3'000'000), count_primes(3'000'001)};
    } else {
        auto [a, b] = co_await coio::gather(coio::to_thread(count_primes, 3'000'000L),
                                            coio::to_thread(count_primes, 3'000'001L));
        out = {a, b};
    }
    *done = true;
    co_return out;
}

coio::task<> amain(bool inline_work) {
    bool done = false;
    auto t0 = std::chrono::steady_clock::now();
    std::printf("counting primes %s\n", inline_work ? "INLINE (the loop is blocked)"
                                                    : "on the pool (the loop keeps beating)");
    auto [work, beat] = co_await coio::gather(crunch(inline_work, &done), heartbeat(t0, &done));
    (void)beat;
    std::printf("primes below 3,000,000: %ld (twice: %ld) in %.1f s\n", work.first, work.second,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

} // namespace

int main(int argc, char** argv) {
    bool inline_work = argc > 1 && std::strcmp(argv[1], "--inline") == 0;
    coio::run(amain(inline_work));
}
