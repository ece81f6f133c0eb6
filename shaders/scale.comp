#version 450
// y[i] = alpha * x[i]: the smallest real compute job, used to prove the pipeline end to end.
#include "shader_params.h"

layout(local_size_x = 256) in;
layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Y { float y[]; };
layout(push_constant) uniform Push { ScaleParams p; };

void main() {
    const uint i = gl_GlobalInvocationID.x;
    if (i < p.n) y[i] = p.alpha * x[i];
}
