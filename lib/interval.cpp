// lib/interval.cpp - the missed-tick rules of coio::interval (interval.hpp).
#include <coio/interval.hpp>

#include <stdexcept>

namespace coio {

interval::interval(clock::time_point first, clock::duration period, missed_tick behaviour)
    : m_next(first), m_period(period), m_behaviour(behaviour) {
    if (period <= clock::duration::zero()) {
        throw std::invalid_argument("coio::interval: the period must be positive");
    }
}

void interval::advance(clock::time_point scheduled, clock::time_point now) noexcept {
    const clock::time_point following = scheduled + m_period;
    if (now < following) {
        m_next = following; // on time, or a little late: the schedule holds
        return;
    }
    switch (m_behaviour) {
    case missed_tick::burst:
        m_next = following; // due already: fires at once, and so on until caught up
        return;
    case missed_tick::delay:
        m_next = now + m_period;
        return;
    case missed_tick::skip:
        break;
    }
    // The first point of the schedule after now.
    const auto periods = (now - scheduled) / m_period; // >= 1
    m_next = scheduled + (periods + 1) * m_period;
}

} // namespace coio
