"""examples/task_dump: two clients connected and echoed, then SIGUSR1 prints
every task - the named client tasks waiting in their chain (handle ->
read_request -> ...), the ticker in a sleep - and the server keeps serving;
SIGINT then exits 0."""
import argparse
import asyncio
import os
import re
import signal

from exsupport import Example, check, run


async def body(workdir):
    ap = argparse.ArgumentParser()
    ap.add_argument("--task-dump", required=True)
    args = ap.parse_args()
    ex = Example([args.task_dump, "--listen", "0"], workdir, "task_dump")
    try:
        port = await ex.port()
        conns = []
        for i in range(2):
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(f"hello {i}\n".encode())
            await w.drain()
            got = await asyncio.wait_for(r.readline(), 5)
            check(got == f"hello {i}\n".encode(), f"echo came back as {got!r}")
            conns.append((r, w))

        # The dump, once both clients wait for their next line (they do: each
        # got its echo, so its handler is back in read_request).
        os.kill(ex.p.pid, signal.SIGUSR1)
        loop = asyncio.get_running_loop()
        end = loop.time() + 10
        while "'ticker'" not in ex.out() and loop.time() < end:
            await asyncio.sleep(0.02)
        out = ex.out()
        check(re.search(r"^\d+ tasks on the \w+ loop$", out, re.M), f"no header:\n{out}")
        for i in (1, 2):
            check(re.search(rf"^task #\d+ 'client {i}' \(waiting\): handle -> read_request -> ",
                            out, re.M), f"client {i} missing or not waiting:\n{out}")
        check(re.search(r"^task #\d+ 'ticker' \(waiting\): ticker -> sleep \d+\.\d\d s left$",
                        out, re.M), f"ticker not in its sleep:\n{out}")
        check(re.search(r"'main' .*serve -> ", out), f"no main task:\n{out}")

        # Still serving after the dump.
        r, w = conns[0]
        w.write(b"again\n")
        await w.drain()
        check(await asyncio.wait_for(r.readline(), 5) == b"again\n", "no echo after the dump")

        rc = await ex.stop(signal.SIGINT)
        check(rc == 0, f"exit status {rc}:\n{ex.err()}")
        for r, w in conns:
            w.close()
        check("bye\n" in ex.out(), ex.out())
        check(ex.err() == "", f"stderr:\n{ex.err()}")
        print(out)
    finally:
        ex.kill()


if __name__ == "__main__":
    run(body, 60)
