// coio/sync.hpp - the synchronisation primitives for tasks of one loop
// (asyncio's Event, Lock, Semaphore, BoundedSemaphore, Condition, Queue,
// LifoQueue, PriorityQueue). docs/design.md, "Sync primitives", states the
// shared cancellation rule.
#pragma once

#include <coio/sync/condition.hpp>
#include <coio/sync/event.hpp>
#include <coio/sync/lock.hpp>
#include <coio/sync/lock_guard.hpp>
#include <coio/sync/queue.hpp>
#include <coio/sync/semaphore.hpp>
