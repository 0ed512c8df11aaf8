// tests/pch/test_pch.hpp - precompiled for every test binary: Catch2's single
// header and coio's umbrella header dominate the compile time of each test.
#include <catch2/catch.hpp>
#include <coio/coio.hpp>
