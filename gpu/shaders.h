#pragma once
// SPIR-V of every shader in shaders/, compiled by glslc at build time and embedded in the binary.
#include <cstdint>
#include <span>

namespace whittle::gpu {

enum class ShaderId { Scale, ReduceSum };

std::span<const std::uint32_t> spirv(ShaderId id);
const char* shaderName(ShaderId id);

}  // namespace whittle::gpu
