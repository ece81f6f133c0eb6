#version 450
// Decode attention, one query head per workgroup: scores q·k over the cache positions [first, position] (a ring
// of `capacity` slots on sliding layers), softmax, then the weighted sum of the values. The scores go through a
// scratch buffer, so any context length fits; a KV-shared layer simply binds its source layer's cache.
#include "shader_params.h"
#define WG_SIZE 64
#define STATE_BINDING 5
layout(local_size_x = WG_SIZE) in;
layout(std430, binding = 0) readonly buffer Q { float q[]; };
layout(std430, binding = 1) readonly buffer K { float kc[]; };
layout(std430, binding = 2) readonly buffer V { float vc[]; };
layout(std430, binding = 3) coherent buffer Scores { float scores[]; };
layout(std430, binding = 4) writeonly buffer Out { float dst[]; };
layout(push_constant) uniform Push { AttentionParams p; };
#include "reduce.glsl"
#include "token_state.glsl"

void main() {
    const uint t = gl_LocalInvocationID.x, h = gl_WorkGroupID.x, hd = p.headDim;
    const uint kvh = h / p.group, last = statePosition;
    const uint first = p.window != 0u && last + 1u > p.window ? last + 1u - p.window : 0u;
    const uint qBase = h * hd, sBase = h * p.scoresStride, rowWidth = p.kvHeads * hd;
    float mx = -3.0e38;
    for (uint pos = first + t; pos <= last; pos += WG_SIZE) {
        const uint kBase = (pos % p.capacity) * rowWidth + kvh * hd;
        float s = 0.0;
        for (uint i = 0; i < hd; ++i) s += q[qBase + i] * kc[kBase + i];
        scores[sBase + pos - first] = s;
        mx = max(mx, s);
    }
    mx = workgroupMax(mx);
    float sum = 0.0;
    for (uint pos = first + t; pos <= last; pos += WG_SIZE) {
        const float e = exp(scores[sBase + pos - first] - mx);
        scores[sBase + pos - first] = e;
        sum += e;
    }
    sum = workgroupSum(sum);
    memoryBarrierBuffer();
    barrier();
    const float inv = 1.0 / sum;
    for (uint i = t; i < hd; i += WG_SIZE) {
        float acc = 0.0;
        for (uint pos = first; pos <= last; ++pos) acc += scores[sBase + pos - first] * inv * vc[(pos % p.capacity) * rowWidth + kvh * hd + i];
        dst[qBase + i] = acc;
    }
}
