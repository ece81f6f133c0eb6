#version 450
// Attention of one query head of one token per workgroup (AttentionParams): the query against the cache positions
// [first, position] of its token (a ring of `capacity` slots on sliding layers), in tiles of WG_SIZE positions
// with an online softmax — a running maximum and sum rescale what was accumulated so far — so no scores buffer is
// needed and any context length fits. Decode runs one token; a prefill chunk runs its tokens together, each with
// its own position (the chunk's keys are already in the cache: causal order comes from the positions). A
// KV-shared layer simply binds its source layer's cache.
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#include "shader_params.h"
#define WG_SIZE 64
#define STATE_BINDING 4
layout(local_size_x = WG_SIZE) in;
layout(std430, binding = 0) readonly buffer Q { float q[]; };
layout(std430, binding = 1) readonly buffer K { float kc[]; };
layout(std430, binding = 2) readonly buffer V { float vc[]; };
layout(std430, binding = 3) writeonly buffer Out { float dst[]; };
layout(push_constant) uniform Push { AttentionParams p; };
#include "reduce.glsl"
#include "token_state.glsl"

shared float query[512];
shared float weights[WG_SIZE];

void main() {
    const uint t = gl_LocalInvocationID.x, h = gl_WorkGroupID.x, tok = gl_WorkGroupID.z, hd = p.headDim;
    const uint last = tokenPosition(tok);
    const uint first = p.window != 0u && last + 1u > p.window ? last + 1u - p.window : 0u;
    const uint qBase = tok * p.tokenStride + h * hd, rowWidth = p.kvHeads * hd, kvBase = (h / p.group) * hd;
    for (uint i = t; i < hd; i += WG_SIZE) query[i] = q[qBase + i];
    barrier();
    float runMax = -3.0e38, runSum = 0.0;
    float acc[512 / WG_SIZE];
    for (uint j = 0; j < 512 / WG_SIZE; ++j) acc[j] = 0.0;
    for (uint base = first; base <= last; base += WG_SIZE) {
        const uint pos = base + t;
        float s = -3.0e38;
        if (pos <= last) {
            const uint kBase = (pos % p.capacity) * rowWidth + kvBase;
            s = 0.0;
            for (uint i = 0; i < hd; ++i) s += query[i] * kc[kBase + i];
        }
        const float newMax = max(runMax, workgroupMax(s));
        const float e = pos <= last ? exp(s - newMax) : 0.0;
        weights[t] = e;
        const float rescale = exp(runMax - newMax);  // 0 on the first tile
        runSum = runSum * rescale + workgroupSum(e);  // its barriers publish weights[]
        const uint n = min(uint(WG_SIZE), last - base + 1u);
        for (uint i = t, j = 0; i < hd; i += WG_SIZE, ++j) {
            float a = acc[j] * rescale;
            for (uint k = 0; k < n; ++k) a += weights[k] * vc[((base + k) % p.capacity) * rowWidth + kvBase + i];
            acc[j] = a;
        }
        runMax = newMax;
        barrier();  // weights[] is rewritten by the next tile
    }
    const float inv = 1.0 / runSum;
    for (uint i = t, j = 0; i < hd; i += WG_SIZE, ++j) dst[qBase + i] = acc[j] * inv;
}
