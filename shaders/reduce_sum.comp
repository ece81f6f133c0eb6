#version 450
// Partial sums of x: each workgroup of 256 adds its elements with subgroupAdd, then combines the
// subgroup results through shared memory, and writes one float per workgroup.
#extension GL_KHR_shader_subgroup_arithmetic : require
#include "shader_params.h"

layout(local_size_x = 256) in;
layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Partial { float partial[]; };
layout(push_constant) uniform Push { ReduceParams p; };

shared float sums[256];  // one slot per subgroup; subgroups are at least 1 invocation wide

void main() {
    const uint i = gl_GlobalInvocationID.x;
    float v = i < p.n ? x[i] : 0.0;
    v = subgroupAdd(v);
    if (subgroupElect()) sums[gl_SubgroupID] = v;
    barrier();
    if (gl_LocalInvocationID.x == 0) {
        float total = 0.0;
        for (uint s = 0; s < gl_NumSubgroups; ++s) total += sums[s];
        partial[gl_WorkGroupID.x] = total;
    }
}
