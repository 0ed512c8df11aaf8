// tests/pch/test_pch.hpp - the precompiled header of every unit test
// (tests/meson.build): Catch and coio's public headers, which every test
// file includes anyway. Parsing them was about 40% of a test file's compile.

#include "support/support.hpp"

#include <coio/coio.hpp>

#include <catch2/catch.hpp>
