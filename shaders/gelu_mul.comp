#version 450
// gate ← GELU_tanh(gate) · up, element-wise (GeluParams: the gated MLP, and the PLE gate times the layer's per-layer
// input).
#include "shader_params.h"
layout(local_size_x = 64) in;
layout(std430, binding = 0) buffer Gate { float gate[]; };
layout(std430, binding = 1) readonly buffer Up { float up[]; };
layout(push_constant) uniform Push { GeluParams p; };
#include "common.glsl"

void main() {
    const uint i = gl_GlobalInvocationID.x;
    if (i < p.n) gate[p.gateOffset + i] = geluTanh(gate[p.gateOffset + i]) * up[p.upOffset + (i / p.rowLen) * p.upStride + i % p.rowLen];
}
