#version 450
// The prefill's Y = X · Wᵀ for a weight stored row by row (the formats of matvec_rows.comp), MatmulParams: one
// invocation per weight row and tile of TILE tokens, so each row's values are read and decoded once per tile
// instead of once per token — the whole point of batching the prompt. Eight values are decoded at a time, so
// cols must be a multiple of 8 and X's offset and stride multiples of 4 (recordMatmul falls back to mat-vecs
// otherwise). Neighbouring invocations read neighbouring rows: the CPU-device layout of matvec_rows.comp; a
// GPU would rather tile rows through shared memory (not written: prefill on GPUs runs this same kernel).
#include "shader_params.h"
#define WG_SIZE 64
#define MAX_TILE 8
layout(local_size_x = WG_SIZE) in;
layout(constant_id = 0) const uint FORMAT = WHITTLE_FMT_F32;
layout(constant_id = 1) const uint TILE = 8;  // ≤ MAX_TILE

layout(std430, binding = 0) readonly buffer Weights { uint w[]; };
layout(std430, binding = 0) readonly buffer Weights4 { uvec4 w4[]; };
layout(std430, binding = 1) readonly buffer BlockScales { uint bs[]; };  // NVFP4's E4M3 scales [rows, cols/16]
layout(std430, binding = 2) readonly buffer X4 { vec4 x4[]; };
layout(std430, binding = 3) buffer Y { float y[]; };
layout(push_constant) uniform Push { MatmulParams p; };

#include "common.glsl"

uint half2(uint off) { return (w[off >> 2] >> ((off & 2u) * 8u)) & 0xFFFFu; }
// Four bytes starting at an even byte offset (GGUF blocks are 34 or 18 bytes: 2-byte aligned).
uint word2(uint off) {
    const uint i = off >> 2;
    return (off & 2u) == 0u ? w[i] : (w[i] >> 16) | (w[i + 1] << 16);
}
vec4 signedBytes(uint v) { return vec4(bitfieldExtract(int(v), 0, 8), bitfieldExtract(int(v), 8, 8), bitfieldExtract(int(v), 16, 8), bitfieldExtract(int(v), 24, 8)); }
vec4 nibbles(uint v, uint shift) { return vec4(uvec4(v >> shift, v >> (shift + 8u), v >> (shift + 16u), v >> (shift + 24u)) & 15u); }
vec4 fp4(uint c, uint first) {
    return vec4(e2m1((c >> (4u * first)) & 15u), e2m1((c >> (4u * first + 4u)) & 15u), e2m1((c >> (4u * first + 8u)) & 15u),
                e2m1((c >> (4u * first + 12u)) & 15u));
}

// Values 8·k8 … 8·k8 + 7 of `row`, decoded.
void load8(const uint row, const uint k8, out vec4 lo, out vec4 hi) {
    const uint cols = p.cols;
    if (FORMAT == WHITTLE_FMT_F32) {
        const uint i = (row * cols + 8u * k8) / 4u;
        lo = uintBitsToFloat(w4[i]);
        hi = uintBitsToFloat(w4[i + 1u]);
    } else if (FORMAT == WHITTLE_FMT_F16 || FORMAT == WHITTLE_FMT_BF16) {
        const uvec4 v = w4[(row * cols + 8u * k8) / 8u];
        if (FORMAT == WHITTLE_FMT_BF16) {
            lo = uintBitsToFloat(uvec4(v.x << 16, v.x & 0xFFFF0000u, v.y << 16, v.y & 0xFFFF0000u));
            hi = uintBitsToFloat(uvec4(v.z << 16, v.z & 0xFFFF0000u, v.w << 16, v.w & 0xFFFF0000u));
        } else {
            lo = vec4(unpackHalf2x16(v.x), unpackHalf2x16(v.y));
            hi = vec4(unpackHalf2x16(v.z), unpackHalf2x16(v.w));
        }
    } else if (FORMAT == WHITTLE_FMT_Q8_0) {
        const uint off = row * (cols / 32u) * 34u + (k8 / 4u) * 34u, j = k8 % 4u;
        const float d = f16Bits(half2(off));
        lo = signedBytes(word2(off + 2u + 8u * j)) * d;
        hi = signedBytes(word2(off + 6u + 8u * j)) * d;
    } else if (FORMAT == WHITTLE_FMT_Q4_0) {
        // Block values 0–15 are the low nibbles of its 16 bytes, 16–31 the high ones.
        const uint off = row * (cols / 32u) * 18u + (k8 / 4u) * 18u, j = k8 % 4u;
        const float d = f16Bits(half2(off));
        const uint byte0 = 8u * (j & 1u), shift = j >= 2u ? 4u : 0u;
        lo = (nibbles(word2(off + 2u + byte0), shift) - 8.0) * d;
        hi = (nibbles(word2(off + 6u + byte0), shift) - 8.0) * d;
    } else {  // NVFP4: 16-value blocks, 8 bytes of codes each
        const uint b = k8 / 2u, sOff = row * (cols / 16u) + b;
        const float d = e4m3((bs[sOff >> 2] >> ((sOff & 3u) * 8u)) & 255u);
        const uint c = w[((row * cols / 2u + b * 8u) >> 2) + (k8 & 1u)];
        lo = fp4(c, 0u) * d;
        hi = fp4(c, 4u) * d;
    }
}

void main() {
    const uint row = gl_GlobalInvocationID.x + gl_WorkGroupID.y * p.gridWidth * WG_SIZE;
    if (row >= p.rows) return;
    const uint t0 = gl_WorkGroupID.z * TILE, last = p.tokens - 1u;
    float acc[MAX_TILE];
    for (uint t = 0; t < TILE; ++t) acc[t] = 0.0;
    for (uint k8 = 0; k8 < p.cols / 8u; ++k8) {
        vec4 lo, hi;
        load8(row, k8, lo, hi);
        for (uint t = 0; t < TILE; ++t) {
            // A tile past the last token re-reads the last token's input; only real tokens are written.
            const uint xb = (p.xOffset + min(t0 + t, last) * p.xStride + 8u * k8) / 4u;
            acc[t] += dot(lo, x4[xb]) + dot(hi, x4[xb + 1u]);
        }
    }
    for (uint t = 0; t < TILE; ++t)
        if (t0 + t <= last) y[p.yOffset + (t0 + t) * p.yStride + row] = acc[t] * p.scale;
}
