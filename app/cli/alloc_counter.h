#pragma once
// whittle-cli replaces the global operator new with a counting one so `bench` can report allocations
// per decoded token (the decode loop must allocate nothing).
#include <cstdint>

namespace whittle::cli {
std::uint64_t allocationCount();
}
