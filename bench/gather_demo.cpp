// gather_demo — the seeds' claim as a measurement: two workers that each wait 2 s, run with
// gather, take 2 s in total, not 4, because coio::sleep suspends only the task that calls
// it. The control run blocks the thread instead (std::this_thread::sleep_for, Python's
// time.sleep) inside the same gather, and takes the sum.
//
// Run:  ./gather_demo [--seconds 2]
// Output: one JSON line per variant:
//   {"scenario":"gather_sleep","variant":"coio::sleep","workers":2,"worker_s":2,
//    "elapsed_s":2.001,"backend":"epoll"}
#include <coio/coio.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace {

using fsec = std::chrono::duration<double>;

coio::task<> async_worker(fsec d) {
    co_await coio::sleep(d); // suspends this task only
}

coio::task<> blocking_worker(fsec d) {
    std::this_thread::sleep_for(d); // blocks the loop's thread: the other worker waits
    co_return;
}

template <class Worker>
coio::task<double> timed_gather(Worker worker, fsec d) {
    const auto start = std::chrono::steady_clock::now();
    co_await coio::gather(worker(d), worker(d));
    co_return fsec(std::chrono::steady_clock::now() - start).count();
}

void report(const char* variant, double worker_s, double elapsed) {
    std::printf("{\"scenario\":\"gather_sleep\",\"variant\":\"%s\",\"workers\":2,"
                "\"worker_s\":%.3f,\"elapsed_s\":%.3f,\"backend\":\"%s\"}\n",
                variant, worker_s, elapsed, coio::backend_name().c_str());
    std::fflush(stdout);
}

} // namespace

int main(int argc, char** argv) {
    double seconds = 2.0;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            seconds = std::strtod(argv[++i], nullptr);
        } else {
            std::fprintf(stderr, "usage: %s [--seconds S]\n", argv[0]);
            return 2;
        }
    }
    const fsec d(seconds);
    report("coio::sleep", seconds, coio::run(timed_gather(&async_worker, d)));
    report("blocking sleep_for", seconds, coio::run(timed_gather(&blocking_worker, d)));
}
