#version 450
// RMSNorm of one row per workgroup (NormParams): mode 0 writes norm(in · inScale) · w; mode 1 adds norm(in) · w to
// out and scales the sum (the residual adds after attention, MLP and PLE, the last with layer_scalar).
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#include "shader_params.h"
#define WG_SIZE 256
layout(local_size_x = WG_SIZE) in;
layout(std430, binding = 0) readonly buffer In { float src[]; };
layout(std430, binding = 1) readonly buffer W { float weight[]; };
layout(std430, binding = 2) buffer Out { float dst[]; };
layout(std430, binding = 3) readonly buffer Bias { float bias[]; };
layout(push_constant) uniform Push { NormParams p; };
#include "reduce.glsl"

void main() {
    const uint t = gl_LocalInvocationID.x, row = gl_WorkGroupID.x;
    const uint inBase = p.inOffset + row * p.stride, outBase = p.outOffset + row * p.stride;
    float ss = 0.0;
    for (uint i = t; i < p.n; i += WG_SIZE) {
        const float v = (p.hasBias != 0u ? src[inBase + i] + bias[i] : src[inBase + i]) * p.inScale;
        ss += v * v;
    }
    const float scale = inversesqrt(workgroupSum(ss) / float(p.n) + p.eps);
    for (uint i = t; i < p.n; i += WG_SIZE) {
        float v = (p.hasBias != 0u ? src[inBase + i] + bias[i] : src[inBase + i]) * p.inScale * scale;
        if (p.hasWeight != 0u) v *= weight[i];
        dst[outBase + i] = p.mode == 0u ? v : (dst[outBase + i] + v) * p.scalar;
    }
}
