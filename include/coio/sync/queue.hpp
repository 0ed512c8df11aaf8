// coio/sync/queue.hpp - queue, lifo_queue, priority_queue (asyncio.Queue,
// LifoQueue, PriorityQueue, including Python 3.13's shutdown).
//
//   coio::queue<job> q(100);                 // maxsize 0 = unbounded
//   co_await q.put(j);  job j = co_await q.get();
//   q.put_nowait(j);    j = q.get_nowait();  // throw queue_full / queue_empty
//   q.task_done();      co_await q.join();
//   q.shutdown();                            // puts throw queue_shutdown; gets
//                                            // drain what is left, then throw it
//
// Hand-off and fairness: put() gives its item straight to the longest waiting
// getter, and a get that frees space admits the longest waiting putter, so
// waiters are served in FIFO order and nobody overtakes them (asyncio wakes
// them and lets get_nowait/put_nowait barge in meanwhile). An item handed to
// a getter that has not run yet is no longer in qsize(), but its space is only
// free when that getter runs, as in asyncio; full() counts it, and space
// promised to a woken putter: full() is true exactly when put_nowait() would
// throw queue_full.
//
// Cancellation: every wait (get, put, join) is a cancellation point, and
// cancelled_error always means the operation did not happen:
//  - a getter cancelled while parked takes nothing; a getter that was handed
//    an item but is cancelled before it runs gives the item back - to the next
//    getter, else to the front of the queue (the top for lifo, back into the
//    heap for priority) - so no item is lost and the order is kept;
//  - a putter cancelled before it ran puts nothing; the space it was promised
//    goes to the next putter (asyncio: "wake up the next in line").
// Gets and puts that need not wait do not suspend and do not look at
// pending cancels (asyncio neither).
//
// shutdown(immediate): as Python 3.13. Waiting putters and getters are woken
// and throw queue_shutdown; later puts throw it at once; gets go on while
// items remain. With immediate=true the remaining items - and those handed to
// getters that have not run yet - are dropped and counted as done for join().
//
// One loop only; the queue must outlive the awaits on it. T must be movable.
#pragma once

#include <coio/detail/waiter_list.hpp>
#include <coio/sync/event.hpp>

#include <algorithm>
#include <coroutine>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <optional>
#include <utility>
#include <vector>

namespace coio {

// get_nowait() on an empty queue (asyncio.QueueEmpty).
class queue_empty : public std::exception {
public:
    [[nodiscard]] const char* what() const noexcept override { return "coio: queue is empty"; }
};
// put_nowait() on a full queue (asyncio.QueueFull).
class queue_full : public std::exception {
public:
    [[nodiscard]] const char* what() const noexcept override { return "coio: queue is full"; }
};
// The queue was shut down (asyncio.QueueShutDown).
class queue_shutdown : public std::exception {
public:
    [[nodiscard]] const char* what() const noexcept override { return "coio: queue is shut down"; }
};

namespace detail {

struct queue_putter : sync_waiter {
    bool m_reserved = false; // woken with space promised to it
};
template <class T>
struct queue_getter : sync_waiter {
    std::optional<T> m_item; // handed to it (or taken at once)
};

// Everything that does not depend on T (lib/sync/queue.cpp).
class queue_base {
public:
    queue_base(const queue_base&) = delete;
    queue_base& operator=(const queue_base&) = delete;

    // 0: unbounded.
    [[nodiscard]] std::size_t maxsize() const noexcept { return m_maxsize; }
    [[nodiscard]] bool is_shutdown() const noexcept { return m_shutdown; }
    // One item put earlier is processed. Throws std::logic_error if called
    // more often than items were put (asyncio raises ValueError).
    void task_done();
    // Suspend until every item put has been marked done by task_done().
    [[nodiscard]] event::awaiter join() noexcept { return m_finished.wait(); }

protected:
    explicit queue_base(std::size_t maxsize) noexcept;
    ~queue_base() = default;

    [[nodiscard]] bool full_with(std::size_t stored) const noexcept {
        return m_maxsize != 0 && stored + m_in_flight + m_reserved >= m_maxsize;
    }
    void count_put() noexcept {
        ++m_unfinished;
        m_finished.clear();
    }
    // Promise free space to the longest putters while there is some.
    void admit_putters(std::size_t stored) noexcept;
    // Decide a putter's fate after it resumed: true means "deliver your item
    // now"; otherwise throws (cancelled_error or queue_shutdown).
    bool putter_resume(queue_putter& p, std::size_t stored);
    // Flags, join accounting for `dropped` items, wake everyone.
    void shut_down(bool immediate, std::size_t dropped) noexcept;

    waiter_list m_getters;
    waiter_list m_putters;
    std::size_t m_maxsize;
    std::size_t m_in_flight = 0; // items handed to getters that have not run
    std::size_t m_reserved = 0;  // space promised to putters that have not run
    std::size_t m_unfinished = 0;
    event m_finished; // set while m_unfinished == 0
    bool m_shutdown = false;
    bool m_immediate = false;
};

template <class T>
class fifo_store {
public:
    void push(T v) { m_items.push_back(std::move(v)); }
    void unget(T v) { m_items.push_front(std::move(v)); }
    T pop() {
        T v = std::move(m_items.front());
        m_items.pop_front();
        return v;
    }
    [[nodiscard]] std::size_t size() const noexcept { return m_items.size(); }
    void clear() noexcept { m_items.clear(); }

private:
    std::deque<T> m_items;
};

template <class T>
class lifo_store {
public:
    void push(T v) { m_items.push_back(std::move(v)); }
    void unget(T v) { m_items.push_back(std::move(v)); }
    T pop() {
        T v = std::move(m_items.back());
        m_items.pop_back();
        return v;
    }
    [[nodiscard]] std::size_t size() const noexcept { return m_items.size(); }
    void clear() noexcept { m_items.clear(); }

private:
    std::vector<T> m_items;
};

// Pops the smallest item under Compare, as Python's PriorityQueue (heapq)
// does - the opposite of std::priority_queue.
template <class T, class Compare>
class priority_store {
public:
    void push(T v) {
        m_items.push_back(std::move(v));
        std::push_heap(m_items.begin(), m_items.end(), greater());
    }
    void unget(T v) { push(std::move(v)); }
    T pop() {
        std::pop_heap(m_items.begin(), m_items.end(), greater());
        T v = std::move(m_items.back());
        m_items.pop_back();
        return v;
    }
    [[nodiscard]] std::size_t size() const noexcept { return m_items.size(); }
    void clear() noexcept { m_items.clear(); }

private:
    auto greater() {
        return [this](const T& a, const T& b) { return m_less(b, a); };
    }
    std::vector<T> m_items;
    Compare m_less;
};

} // namespace detail

template <class T, class Store>
class basic_queue : public detail::queue_base {
public:
    explicit basic_queue(std::size_t maxsize = 0) noexcept : queue_base(maxsize) {}

    // Items stored and not handed to a getter.
    [[nodiscard]] std::size_t qsize() const noexcept { return m_store.size(); }
    [[nodiscard]] bool empty() const noexcept { return m_store.size() == 0; }
    // put_nowait() would throw queue_full (never, if maxsize is 0).
    [[nodiscard]] bool full() const noexcept { return full_with(m_store.size()); }

    class put_awaiter : public detail::queue_putter {
    public:
        put_awaiter(basic_queue& q, T item) : m_queue(&q), m_item(std::move(item)) {}
        [[nodiscard]] bool await_ready() {
            if (m_queue->m_shutdown) {
                return true; // await_resume throws queue_shutdown
            }
            if (m_queue->full()) {
                return false;
            }
            m_queue->deliver(std::move(m_item));
            m_delivered = true;
            return true;
        }
        template <class P>
        bool await_suspend(std::coroutine_handle<P> h) {
            return m_queue->m_putters.template park<&detail::sync_phrase::queue_put>(*this, h);
        }
        void await_resume() {
            if (!m_delivered && m_queue->putter_resume(*this, m_queue->m_store.size())) {
                m_queue->deliver(std::move(m_item));
            }
        }

    private:
        basic_queue* m_queue;
        T m_item;
        bool m_delivered = false;
    };

    class get_awaiter : public detail::queue_getter<T> {
    public:
        explicit get_awaiter(basic_queue& q) noexcept : m_queue(&q) {}
        [[nodiscard]] bool await_ready() {
            if (m_queue->m_store.size() != 0) {
                this->m_item.emplace(m_queue->take());
                return true;
            }
            return m_queue->m_shutdown; // empty and shut down: throw at once
        }
        template <class P>
        bool await_suspend(std::coroutine_handle<P> h) {
            return m_queue->m_getters.template park<&detail::sync_phrase::queue_get>(*this, h);
        }
        T await_resume() { return m_queue->getter_resume(*this); }

    private:
        basic_queue* m_queue;
    };

    // Put `item`, suspending while the queue is full. Throws queue_shutdown
    // if the queue is (or gets) shut down, cancelled_error if cancelled -
    // then the item was not put.
    [[nodiscard]] put_awaiter put(T item) { return put_awaiter(*this, std::move(item)); }
    // Remove and return an item, suspending while there is none. Throws
    // queue_shutdown once shut down and empty, cancelled_error if cancelled -
    // then no item was taken.
    [[nodiscard]] get_awaiter get() noexcept { return get_awaiter(*this); }

    void put_nowait(T item) {
        if (m_shutdown) {
            throw queue_shutdown{};
        }
        if (full()) {
            throw queue_full{};
        }
        deliver(std::move(item));
    }
    T get_nowait() {
        if (m_store.size() == 0) {
            if (m_shutdown) {
                throw queue_shutdown{};
            }
            throw queue_empty{};
        }
        return take();
    }

    // Python 3.13 Queue.shutdown (see the top of this file).
    void shutdown(bool immediate = false) noexcept {
        std::size_t dropped = 0;
        if (immediate) {
            dropped = m_store.size();
            m_store.clear();
        }
        shut_down(immediate, dropped);
    }

private:
    // A new item: to the longest getter, else into the store.
    void deliver(T item) {
        count_put();
        hand(std::move(item), false);
    }
    // An item a cancelled getter gives back is first in line again.
    void hand(T item, bool again) {
        if (detail::sync_waiter* w = m_getters.front()) {
            static_cast<detail::queue_getter<T>&>(*w).m_item.emplace(std::move(item));
            ++m_in_flight;
            m_getters.grant(*w);
        } else if (again) {
            m_store.unget(std::move(item));
        } else {
            m_store.push(std::move(item));
        }
    }
    // Take an item from the store for good; its space goes to a putter.
    T take() {
        T v = m_store.pop();
        admit_putters(m_store.size());
        return v;
    }
    T getter_resume(detail::queue_getter<T>& g) {
        const detail::wake how = g.outcome();
        if (!g.handed()) { // taken at once, shut down at once, or cancelled
            if (how == detail::wake::cancelled) {
                g.throw_cancelled();
            }
            if (!g.m_item) {
                throw queue_shutdown{};
            }
            return T(std::move(*g.m_item));
        }
        if (!g.m_item) { // woken by shutdown()
            if (how == detail::wake::revoked) {
                g.throw_cancelled();
            }
            throw queue_shutdown{};
        }
        --m_in_flight;
        if (m_immediate) { // dropped by shutdown(immediate) before we ran
            if (how == detail::wake::revoked) {
                g.throw_cancelled();
            }
            throw queue_shutdown{};
        }
        if (how == detail::wake::revoked) {
            hand(std::move(*g.m_item), true);
            g.throw_cancelled();
        }
        admit_putters(m_store.size());
        return T(std::move(*g.m_item));
    }

    Store m_store;
};

// FIFO queue (asyncio.Queue).
template <class T>
using queue = basic_queue<T, detail::fifo_store<T>>;
// Last in, first out (asyncio.LifoQueue).
template <class T>
using lifo_queue = basic_queue<T, detail::lifo_store<T>>;
// Smallest first under Compare (asyncio.PriorityQueue; std::priority_queue
// pops the largest).
template <class T, class Compare = std::less<T>>
using priority_queue = basic_queue<T, detail::priority_store<T, Compare>>;

} // namespace coio
