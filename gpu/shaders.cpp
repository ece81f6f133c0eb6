#include "gpu/shaders.h"

namespace whittle::gpu {

namespace {
#include "shader_blobs.inc"
}  // namespace

std::span<const std::uint32_t> spirv(ShaderId id) {
    switch (id) {
#define WHITTLE_SHADER(id, file, defines) \
    case ShaderId::id: return kSpirv_##id;
#include "shaders/shader_list.h"
#undef WHITTLE_SHADER
    }
    return {};
}

const char* shaderName(ShaderId id) {
    switch (id) {
#define WHITTLE_SHADER(id, file, defines) \
    case ShaderId::id: return #id;
#include "shaders/shader_list.h"
#undef WHITTLE_SHADER
    }
    return "?";
}

}  // namespace whittle::gpu
