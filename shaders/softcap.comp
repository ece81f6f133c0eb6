#version 450
// logits ← cap · tanh(logits / cap).
#include "shader_params.h"
layout(local_size_x = 256) in;
layout(std430, binding = 0) buffer Logits { float logits[]; };
layout(push_constant) uniform Push { SoftcapParams p; };
#include "common.glsl"

void main() {
    const uint i = gl_GlobalInvocationID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x * 256u;
    if (i < p.n) logits[i] = p.cap * safeTanh(logits[i] / p.cap);
}
