#include "gpu/shaders.h"

namespace whittle::gpu {

namespace {
const std::uint32_t kScale[] = {
#include "shaders/scale.spv.inc"
};
const std::uint32_t kReduceSum[] = {
#include "shaders/reduce_sum.spv.inc"
};
}  // namespace

std::span<const std::uint32_t> spirv(ShaderId id) {
    switch (id) {
    case ShaderId::Scale: return kScale;
    case ShaderId::ReduceSum: return kReduceSum;
    }
    return {};
}

const char* shaderName(ShaderId id) {
    switch (id) {
    case ShaderId::Scale: return "scale";
    case ShaderId::ReduceSum: return "reduce_sum";
    }
    return "?";
}

}  // namespace whittle::gpu
