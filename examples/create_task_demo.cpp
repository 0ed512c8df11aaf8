// create_task_demo - the seeds' task_a / task_b: two tasks scheduled with
// create_task run concurrently on one loop.
//
// Python's version:
//     t1 = asyncio.create_task(task_a()); t2 = asyncio.create_task(task_b())
//     await t1; await t2
//
// Run: ./build/examples/create_task_demo     (takes about 2 s)
// Prints, in this order:
//     Task A: starting I/O operation
//     Task B: starting I/O operation
//     Task A: I/O complete
//     Task B: I/O complete
//     All tasks done.
#include <coio/coio.hpp>

#include <chrono>
#include <cstdio>

using namespace std::chrono_literals;

namespace {

coio::task<> task_a() {
    std::printf("Task A: starting I/O operation\n");
    co_await coio::sleep(1s); // simulate e.g. a file or network read
    std::printf("Task A: I/O complete\n");
}

coio::task<> task_b() {
    std::printf("Task B: starting I/O operation\n");
    co_await coio::sleep(2s); // simulate another I/O
    std::printf("Task B: I/O complete\n");
}

coio::task<> amain() {
    // Both start on the next loop iteration, before either is awaited.
    coio::task_handle<> t1 = coio::create_task(task_a());
    coio::task_handle<> t2 = coio::create_task(task_b());
    co_await t1;
    co_await t2;
    std::printf("All tasks done.\n");
}

} // namespace

int main() {
    coio::run(amain());
}
