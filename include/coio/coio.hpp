// coio/coio.hpp - everything.
#pragma once

#include <coio/cancel.hpp>
#include <coio/event_loop.hpp>
#include <coio/gather.hpp>
#include <coio/net/address.hpp>
#include <coio/net/connection.hpp>
#include <coio/net/copy.hpp>
#include <coio/net/datagram.hpp>
#include <coio/net/error.hpp>
#include <coio/net/resolve.hpp>
#include <coio/net/server.hpp>
#include <coio/net/socket.hpp>
#include <coio/net/split.hpp>
#include <coio/net/stream.hpp>
#include <coio/net/unix.hpp>
#include <coio/result.hpp>
#include <coio/shield.hpp>
#include <coio/signal.hpp>
#include <coio/sleep.hpp>
#include <coio/sync.hpp>
#include <coio/task.hpp>
#include <coio/task_group.hpp>
#include <coio/task_handle.hpp>
#include <coio/timeout.hpp>
#include <coio/to_thread.hpp>
