#version 450
// One attention head of one token per workgroup (HeadParams): RMSNorm over the head (q/k with their learned scale, v without),
// RoPE at the token's position with the cos/sin from the token state, then in place or into the KV cache slot.
#include "shader_params.h"
#define WG_SIZE 64
#define STATE_BINDING 2
layout(local_size_x = WG_SIZE) in;
layout(std430, binding = 0) readonly buffer In { float src[]; };
layout(std430, binding = 1) readonly buffer W { float weight[]; };
layout(std430, binding = 3) buffer Out { float dst[]; };
layout(push_constant) uniform Push { HeadParams p; };
#include "reduce.glsl"
#include "token_state.glsl"

shared float head[512];

void main() {
    const uint t = gl_LocalInvocationID.x, h = gl_WorkGroupID.x, tok = gl_WorkGroupID.z, hd = p.headDim;
    const uint inBase = p.inOffset + tok * p.tokenStride + h * hd;
    float ss = 0.0;
    for (uint i = t; i < hd; i += WG_SIZE) {
        const float v = src[inBase + i];
        head[i] = v;
        ss += v * v;
    }
    const float scale = inversesqrt(workgroupSum(ss) / float(hd) + p.eps);  // its barriers publish head[]
    for (uint i = t; i < hd; i += WG_SIZE) head[i] = p.hasWeight != 0u ? head[i] * scale * weight[i] : head[i] * scale;
    barrier();
    const uint outBase = p.outOffset + (p.toCache != 0u ? (tokenPosition(tok) % p.capacity) * p.rowWidth : tok * p.tokenStride) + h * hd;
    if (p.ropeOffset == WHITTLE_NO_ROPE) {
        for (uint i = t; i < hd; i += WG_SIZE) dst[outBase + i] = head[i];
    } else {
        const uint half_ = hd / 2;
        for (uint i = t; i < half_; i += WG_SIZE) {
            const float c = tokenRope(tok, p.ropeOffset + i), s = tokenRope(tok, p.ropeOffset + half_ + i);
            const float a = head[i], b = head[i + half_];
            dst[outBase + i] = a * c - b * s;
            dst[outBase + i + half_] = b * c + a * s;
        }
    }
}
