#pragma once
// SPIR-V of every shader in shaders/shader_list.h, compiled by glslc at build time and embedded in the binary.
#include <cstdint>
#include <span>

namespace whittle::gpu {

enum class ShaderId {
#define WHITTLE_SHADER(id, file, defines) id,
#include "shaders/shader_list.h"
#undef WHITTLE_SHADER
};

std::span<const std::uint32_t> spirv(ShaderId id);
const char* shaderName(ShaderId id);

}  // namespace whittle::gpu
