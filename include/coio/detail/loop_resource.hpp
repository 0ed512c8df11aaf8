// coio/detail/loop_resource.hpp - something a loop must let go of when
// run_until_complete ends or the loop is destroyed.
//
// A call_later callback that has not run yet holds a timer in the loop but
// belongs to no task, so cancelling the tasks at the end of run() does not
// reach it. It attaches a loop_resource (loop_core::attach); the loop calls
// m_close for each one still attached once run_until_complete has finished
// everything else, and in its destructor: m_close must drop the timer and
// release what the loop held. Loop thread only.
#pragma once

namespace coio::detail {

struct loop_resource {
    void (*m_close)(loop_resource& self) noexcept = nullptr;
    loop_resource* m_prev = nullptr;
    loop_resource* m_next = nullptr;
    bool m_attached = false;
};

} // namespace coio::detail
