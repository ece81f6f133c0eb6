#version 450
// dst = src, word by word: the benchmark's bandwidth yardstick for the mat-vec kernels on the same device.
#include "shader_params.h"
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer Src { uint src[]; };
layout(std430, binding = 1) writeonly buffer Dst { uint dst[]; };
layout(push_constant) uniform Push { CopyParams p; };

void main() {
    const uint i = gl_GlobalInvocationID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x * 256u;
    if (i < p.words) dst[i] = src[i];
}
