#version 450
// Decodes each token's row of a table part (one workgroup per token of the state) (f32/f16/bf16, Q8_0 or Q4_0
// blocks) into out: the PLE table when it lives in VRAM. Every part is dispatched; only the one holding the token writes, so the recorded command buffer
// never changes with the token.
#include "shader_params.h"
#define STATE_BINDING 1
layout(local_size_x = 64) in;
layout(constant_id = 0) const uint FORMAT = WHITTLE_FMT_BF16;
layout(std430, binding = 0) readonly buffer Table { uint w[]; };
layout(std430, binding = 2) writeonly buffer Out { float dst[]; };
layout(push_constant) uniform Push { GatherParams p; };
#include "common.glsl"
#include "token_state.glsl"

uint half2(uint off) { return (w[off >> 2] >> ((off & 2u) * 8u)) & 0xFFFFu; }
uint byteAt(uint off) { return (w[off >> 2] >> ((off & 3u) * 8u)) & 255u; }

void main() {
    const uint tok = tokenId(gl_WorkGroupID.z), outBase = p.outOffset + gl_WorkGroupID.z * p.cols;
    if (tok < p.firstRow || tok >= p.firstRow + p.rows) return;
    const uint row = tok - p.firstRow, cols = p.cols;
    for (uint i = gl_LocalInvocationID.x; i < cols; i += 64u) {
        float v;
        if (FORMAT == WHITTLE_FMT_F32) v = uintBitsToFloat(w[row * cols + i]);
        else if (FORMAT == WHITTLE_FMT_F16) v = f16Bits(half2(2u * (row * cols + i)));
        else if (FORMAT == WHITTLE_FMT_BF16) v = bf16Bits(half2(2u * (row * cols + i)));
        else if (FORMAT == WHITTLE_FMT_Q8_0) {
            const uint off = row * (cols / 32u) * 34u + (i / 32u) * 34u;
            v = f16Bits(half2(off)) * float(bitfieldExtract(int(byteAt(off + 2u + i % 32u)), 0, 8));
        } else {  // Q4_0: an f16 scale, then 16 bytes whose low nibbles are values 0–15 and high nibbles 16–31
            const uint off = row * (cols / 32u) * 18u + (i / 32u) * 18u, j = i % 32u;
            const uint q = (byteAt(off + 2u + (j & 15u)) >> (j < 16u ? 0u : 4u)) & 15u;
            v = f16Bits(half2(off)) * (float(q) - 8.0);
        }
        dst[outBase + i] = v;
    }
}
