#version 450
// Greedy sampling on the device: the index of the largest logit of logits[offset … offset + n) (the lowest index
// among equals), written to result[0], so only the token id comes back to the host.
#include "shader_params.h"
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer Logits { float logits[]; };
layout(std430, binding = 1) writeonly buffer Result { uint result[]; };
layout(push_constant) uniform Push { ArgmaxParams p; };
shared float bestV[256];
shared uint bestI[256];

void main() {
    const uint t = gl_LocalInvocationID.x;
    float v = -3.4e38;
    uint idx = 0xFFFFFFFFu;
    for (uint i = t; i < p.n; i += 256u)
        if (logits[p.offset + i] > v) { v = logits[p.offset + i]; idx = i; }
    bestV[t] = v;
    bestI[t] = idx;
    barrier();
    for (uint s = 128u; s > 0u; s >>= 1) {
        if (t < s) {
            const float ov = bestV[t + s];
            const uint oi = bestI[t + s];
            if (ov > bestV[t] || (ov == bestV[t] && oi < bestI[t])) { bestV[t] = ov; bestI[t] = oi; }
        }
        barrier();
    }
    if (t == 0u) result[0] = bestI[0];
}
