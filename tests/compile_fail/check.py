#!/usr/bin/env python3
"""tests/compile_fail/check.py COMPILER INCLUDE_DIR SOURCE

Compiles SOURCE (syntax only) with the project's C++ compiler. With g++ older
than 13 it must FAIL with coio's message about temporaries (the compiler would
destroy the temporary twice); with any other compiler it must compile.
"""
import re
import subprocess
import sys

compiler, include, source = sys.argv[1], sys.argv[2], sys.argv[3]
version = subprocess.run([compiler, "--version"], capture_output=True, text=True).stdout
gcc_major = None
if "clang" not in version.lower():
    m = re.search(r"\(.*\) (\d+)\.", version) or re.search(r" (\d+)\.\d+\.\d+", version)
    if m:
        gcc_major = int(m.group(1))
r = subprocess.run([compiler, "-std=c++20", "-fsyntax-only", "-I", include, source],
                   capture_output=True, text=True, timeout=120)
refused = r.returncode != 0
if gcc_major is not None and gcc_major < 13:
    if not refused or "destroys an aggregate or capturing-lambda temporary twice" not in r.stderr:
        print(f"g++ {gcc_major}: expected coio's compile-time refusal, got rc={r.returncode}")
        print(r.stderr[-2000:])
        sys.exit(1)
    print(f"g++ {gcc_major}: refused as expected")
else:
    if refused:
        print(f"{version.splitlines()[0]}: expected it to compile")
        print(r.stderr[-2000:])
        sys.exit(1)
    print(f"{version.splitlines()[0]}: compiles as expected")
