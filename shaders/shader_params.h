// Push-constant structs shared by the C++ engine and the GLSL shaders (included by both), so the two
// can never disagree on a layout. Scalars only: std430 and C agree on their offsets.
#ifdef __cplusplus
#pragma once
#include <cstdint>
namespace whittle::gpu::shader {
using uint = std::uint32_t;
#endif

struct ScaleParams {
    uint n;
    float alpha;
};

struct ReduceParams {
    uint n;
};

#ifdef __cplusplus
}  // namespace whittle::gpu::shader
#endif
