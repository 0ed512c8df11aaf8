// coio/detail/channel_state.hpp - the state behind coio::channel.
//
// One mutex guards everything: the ring of values (allocated once, capacity
// + 1 slots: the extra one takes back a value a cancelled receive gives
// back), the parked receive (at most one) and the parked senders (FIFO).
// Hand-off, so that a value never waits in the ring while someone waits for
// it: a send that finds the receive parked moves its value straight into
// the receive's awaiter; a receive that takes a value from a full ring moves
// the longest-parked sender's value into the freed slot. The waiter is then
// woken after the mutex is released (remote_waiter.hpp: posted at once on
// its own loop's thread, otherwise through that loop's call_soon_threadsafe).
// Plain threads (send_blocking, recv_blocking) wait on condition variables.
//
// Values are moved under the mutex, so T must be nothrow-movable; nothing
// else of T's runs under it (values a closed channel drops are destroyed
// after unlocking - a T may itself hold a sender of this channel).
#pragma once

#include <coio/detail/remote_waiter.hpp>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

namespace coio {

// What try_send reports (Tokio's TrySendError without the value: on
// anything but ok the value was not moved from).
enum class channel_status : unsigned char { ok, full, closed };

} // namespace coio

namespace coio::detail {

// A parked send, with its value.
template <class T>
struct send_waiter : remote_waiter {
    T* m_value = nullptr;
    bool m_sent = false; // written under the mutex by whoever takes it out
};

// A parked receive, with the slot its value is moved into.
template <class T>
struct recv_waiter : remote_waiter {
    std::optional<T> m_item;
};

// The parts that do not depend on T (lib/channel.cpp).
class channel_core {
public:
    channel_core(const channel_core&) = delete;
    channel_core& operator=(const channel_core&) = delete;

    // Sender objects alive; the last one to go closes the receiving side.
    void add_sender() noexcept { m_senders.fetch_add(1, std::memory_order_relaxed); }
    [[nodiscard]] bool last_sender_gone() noexcept {
        return m_senders.fetch_sub(1, std::memory_order_acq_rel) == 1;
    }
    // Blocking calls must not run on a loop's thread (they would stall it).
    static void refuse_on_loop(const char* what);

protected:
    explicit channel_core(std::size_t capacity);
    ~channel_core() = default;

    std::mutex m_mutex;
    std::condition_variable m_items; // recv_blocking waits here
    std::condition_variable m_space; // send_blocking waits here
    remote_waiter_list m_send_waiters;
    remote_waiter_list m_recv_list; // the parked receive, if any (at most one)
    std::size_t m_capacity;
    std::size_t m_head = 0;
    std::size_t m_size = 0;
    bool m_closed = false; // no more sends: the receiver closed or went away
    bool m_no_senders = false;

private:
    std::atomic<std::size_t> m_senders{1};
};

template <class T>
class channel_state final : public channel_core {
    static_assert(std::is_nothrow_move_constructible_v<T>,
                  "coio::channel<T> moves values under its mutex: T must be nothrow-movable");

public:
    explicit channel_state(std::size_t capacity)
        : channel_core(capacity), m_ring(std::make_unique<std::optional<T>[]>(capacity + 1)) {}

    [[nodiscard]] std::size_t capacity() const noexcept { return m_capacity; }
    [[nodiscard]] std::size_t size() {
        std::lock_guard lock(m_mutex);
        return m_size;
    }
    [[nodiscard]] bool closed_for_senders() {
        std::lock_guard lock(m_mutex);
        return m_closed;
    }
    [[nodiscard]] bool closed_for_receiver() {
        std::lock_guard lock(m_mutex);
        return m_size == 0 && (m_closed || m_no_senders);
    }

    // --- sending --------------------------------------------------------
    // Deliver `v` if the channel is open and not full (moves from v only
    // then). Wakes the receive it handed the value to, or a blocked
    // recv_blocking.
    channel_status try_send(T& v) {
        remote_waiter* woken = nullptr;
        {
            std::lock_guard lock(m_mutex);
            if (m_closed) {
                return channel_status::closed;
            }
            if (m_size >= m_capacity) {
                return channel_status::full;
            }
            woken = deliver(v);
        }
        m_items.notify_one();
        if (woken != nullptr) {
            wake_remote(*woken);
        }
        return channel_status::ok;
    }

    // co_await send: true if sent, false if closed, or parks `w` (returns
    // nullopt) when full.
    std::optional<bool> send_or_park(send_waiter<T>& w, T& v) {
        remote_waiter* woken = nullptr;
        {
            std::lock_guard lock(m_mutex);
            if (m_closed) {
                return false;
            }
            if (m_size >= m_capacity) {
                w.m_value = &v;
                w.park(m_mutex, m_send_waiters);
                return std::nullopt;
            }
            woken = deliver(v);
        }
        m_items.notify_one();
        if (woken != nullptr) {
            wake_remote(*woken);
        }
        return true;
    }

    bool send_blocking(T& v) {
        refuse_on_loop("coio::channel_sender::send_blocking");
        remote_waiter* woken = nullptr;
        {
            std::unique_lock lock(m_mutex);
            m_space.wait(lock, [this] { return m_closed || m_size < m_capacity; });
            if (m_closed) {
                return false;
            }
            woken = deliver(v);
        }
        m_items.notify_one();
        if (woken != nullptr) {
            wake_remote(*woken);
        }
        return true;
    }

    // --- receiving ------------------------------------------------------
    // A value if one is buffered (admitting a parked sender to the freed
    // slot), else nullopt. `ended` says whether none can ever come.
    std::optional<T> try_recv(bool* ended = nullptr) {
        remote_waiter* woken = nullptr;
        std::optional<T> out;
        {
            std::lock_guard lock(m_mutex);
            if (m_size == 0) {
                if (ended != nullptr) {
                    *ended = m_closed || m_no_senders;
                }
                return std::nullopt;
            }
            out.emplace(pop());
            woken = admit_sender();
        }
        after_pop(woken);
        return out;
    }

    // co_await recv: a value or the end (true, in `out`), or parks `w`
    // (false) while nothing is buffered and senders remain.
    bool recv_or_park(recv_waiter<T>& w, std::optional<T>& out) {
        remote_waiter* woken = nullptr;
        {
            std::lock_guard lock(m_mutex);
            if (m_size == 0) {
                if (m_closed || m_no_senders) {
                    return true; // the end: out stays empty
                }
                if (!m_recv_list.empty()) {
                    throw std::logic_error(
                        "coio::channel_receiver: recv() is already being awaited");
                }
                w.park(m_mutex, m_recv_list);
                return false;
            }
            out.emplace(pop());
            woken = admit_sender();
        }
        after_pop(woken);
        return true;
    }

    // A receive woken with a value whose cancel came meanwhile gives it back
    // (at the front: it is still the next value).
    void give_back(T v) noexcept {
        std::lock_guard lock(m_mutex);
        m_head = (m_head + m_capacity) % (m_capacity + 1);
        m_ring[m_head].emplace(std::move(v));
        ++m_size;
    }

    std::optional<T> recv_blocking() {
        refuse_on_loop("coio::channel_receiver::recv_blocking");
        remote_waiter* woken = nullptr;
        std::optional<T> out;
        {
            std::unique_lock lock(m_mutex);
            m_items.wait(lock, [this] { return m_size > 0 || m_closed || m_no_senders; });
            if (m_size == 0) {
                return std::nullopt;
            }
            out.emplace(pop());
            woken = admit_sender();
        }
        after_pop(woken);
        return out;
    }

    // --- closing --------------------------------------------------------
    // No more sends (receiver's close(), or the receiver going away, which
    // also drops what is buffered). Wakes every parked sender with "closed".
    void close(bool receiver_gone) {
        remote_waiter* woken = nullptr;
        remote_waiter* receive = nullptr;
        std::vector<T> dropped;
        {
            std::lock_guard lock(m_mutex);
            m_closed = true;
            if (receiver_gone) {
                dropped.reserve(m_size);
                while (m_size > 0) {
                    dropped.push_back(pop());
                }
            }
            woken = m_send_waiters.take_all();
            // A receive parked by another task of the receiver's loop
            // (nothing is buffered then): nothing can come any more.
            receive = m_recv_list.pop_front();
        }
        m_space.notify_all();
        m_items.notify_all();
        wake_chain(woken);
        if (receive != nullptr) {
            wake_remote(*receive);
        }
        // `dropped` is destroyed here, outside the mutex.
    }

    // The last sender went away: the receiver gets what is buffered, then
    // the end.
    void senders_gone() {
        remote_waiter* woken = nullptr;
        {
            std::lock_guard lock(m_mutex);
            m_no_senders = true;
            woken = m_recv_list.pop_front(); // woken empty-handed: the end (or null)
        }
        m_items.notify_all();
        if (woken != nullptr) {
            wake_remote(*woken);
        }
    }

private:
    // With the mutex held, not full: to the parked receive, else the ring.
    // Returns the receive to wake.
    remote_waiter* deliver(T& v) noexcept {
        if (!m_recv_list.empty()) {
            auto* r = static_cast<recv_waiter<T>*>(m_recv_list.pop_front());
            r->m_item.emplace(std::move(v));
            return r;
        }
        m_ring[(m_head + m_size) % (m_capacity + 1)].emplace(std::move(v));
        ++m_size;
        return nullptr;
    }
    T pop() noexcept {
        std::optional<T>& slot = m_ring[m_head];
        T v = std::move(*slot);
        slot.reset();
        m_head = (m_head + 1) % (m_capacity + 1);
        --m_size;
        return v;
    }
    // With the mutex held, after a pop: the longest-parked sender's value
    // takes the freed slot. Returns the sender to wake.
    remote_waiter* admit_sender() noexcept {
        if (m_size >= m_capacity) {
            return nullptr; // still full (a value given back took the extra slot)
        }
        auto* s = static_cast<send_waiter<T>*>(m_send_waiters.pop_front());
        if (s == nullptr) {
            return nullptr;
        }
        m_ring[(m_head + m_size) % (m_capacity + 1)].emplace(std::move(*s->m_value));
        ++m_size;
        s->m_sent = true;
        return s;
    }
    void after_pop(remote_waiter* woken) {
        if (woken != nullptr) {
            wake_remote(*woken);
        } else {
            m_space.notify_one(); // room for a blocked send_blocking
        }
    }
    static void wake_chain(remote_waiter* w) noexcept {
        while (w != nullptr) {
            remote_waiter* next = remote_waiter_list::next_taken(*w);
            wake_remote(*w);
            w = next;
        }
    }

    std::unique_ptr<std::optional<T>[]> m_ring;
};

} // namespace coio::detail
