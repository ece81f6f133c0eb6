#version 450
// The per-layer inputs of one token (GEMMA4.md §3.1), one workgroup per layer slice l:
// proj[l] ← (RMSNorm(proj[l] · H^-½; norm) + tokenRow[l] · √P) · 2^-½.
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#include "shader_params.h"
#define WG_SIZE 64
layout(local_size_x = WG_SIZE) in;
layout(std430, binding = 0) buffer Proj { float proj[]; };
layout(std430, binding = 1) readonly buffer Norm { float norm[]; };
layout(std430, binding = 2) readonly buffer TokenRow { float tokenRow[]; };
layout(push_constant) uniform Push { PleParams p; };
#include "reduce.glsl"

void main() {
    const uint t = gl_LocalInvocationID.x, base = gl_WorkGroupID.x * p.pleDim;
    float ss = 0.0;
    for (uint i = t; i < p.pleDim; i += WG_SIZE) {
        const float v = proj[base + i] * p.projScale;
        ss += v * v;
    }
    const float scale = inversesqrt(workgroupSum(ss) / float(p.pleDim) + p.eps);
    const float mix = 0.70710678118654752;
    for (uint i = t; i < p.pleDim; i += WG_SIZE)
        proj[base + i] = (proj[base + i] * p.projScale * scale * norm[i] + tokenRow[base + i] * p.rowScale) * mix;
}
