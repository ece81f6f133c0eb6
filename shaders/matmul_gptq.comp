#version 450
// The prefill's Y = X · Wᵀ for a GPTQ v1 weight (core/io/gptq_layout.h), MatmulParams: one invocation per output
// n and tile of TILE tokens, so each code is read and dequantized once per tile. The layout and the two paths are
// matvec_gptq.comp's: whole words per contiguous group (with 4-bit codes against 16-byte loads of X when X's
// offset and stride are multiples of 4), or g_idx read per input (act-order without static groups, 3-bit).
#include "shader_params.h"
#define MAX_TILE 8
layout(local_size_x = 64) in;
layout(constant_id = 0) const uint BITS = 4;
layout(constant_id = 1) const bool RESIDUAL = false;
layout(constant_id = 2) const uint TILE = 8;  // ≤ MAX_TILE

layout(std430, binding = 0) readonly buffer QWeight { uint qweight[]; };
layout(std430, binding = 1) readonly buffer QZeros { uint qzeros[]; };
layout(std430, binding = 2) readonly buffer Scales { uint scales[]; };  // f16 pairs
layout(std430, binding = 3) readonly buffer GIdx { int gIdx[]; };
layout(std430, binding = 4) readonly buffer QResidual { uint qresidual[]; };
layout(std430, binding = 5) readonly buffer ResidualScales { uint rscales[]; };
layout(std430, binding = 6) readonly buffer X { float x[]; };
layout(std430, binding = 6) readonly buffer X4 { vec4 x4[]; };
layout(std430, binding = 7) writeonly buffer Y { float y[]; };
layout(push_constant) uniform Push { MatmulParams p; };

#include "common.glsl"

float f16At(uint i) { return f16Bits((scales[i >> 1] >> ((i & 1u) * 16u)) & 0xFFFFu); }
float rscaleAt(uint i) { return f16Bits((rscales[i >> 1] >> ((i & 1u) * 16u)) & 0xFFFFu); }

uint streamValue(uint first, uint stride, uint i, bool zeros) {
    const uint bit = i * BITS, word = bit >> 5, shift = bit & 31u;
    const uint at = first + word * stride;
    uint v = (zeros ? qzeros[at] : qweight[at]) >> shift;
    if (shift + BITS > 32u) v |= (zeros ? qzeros[at + stride] : qweight[at + stride]) << (32u - shift);
    return v & ((1u << BITS) - 1u);
}

float acc[MAX_TILE];
uint t0, lastToken;

// Adds value v of input k to every token of the tile.
void addValue(const float v, const uint k) {
    for (uint t = 0; t < TILE; ++t) acc[t] += v * x[p.xOffset + min(t0 + t, lastToken) * p.xStride + k];
}

void main() {
    const uint n = gl_GlobalInvocationID.x + gl_WorkGroupID.y * p.gridWidth * 64u;
    if (n >= p.rows) return;
    const uint N = p.rows, K = p.cols, zeroWords = N * BITS / 32u;
    t0 = gl_WorkGroupID.z * TILE;
    lastToken = p.tokens - 1u;
    for (uint t = 0; t < TILE; ++t) acc[t] = 0.0;
    if ((32u % BITS) == 0u && p.groupSize != 0u) {
        const uint per = 32u / BITS, mask = (1u << BITS) - 1u;
        const bool wide = BITS == 4u && !RESIDUAL && (p.xOffset & 3u) == 0u && (p.xStride & 3u) == 0u;
        for (uint g = 0; g * p.groupSize < K; ++g) {
            const float zero = float(streamValue(g * zeroWords, 1u, n, true) + 1u);  // v1 stores zero − 1
            const float scale = f16At(g * N + n), r = RESIDUAL ? rscaleAt(g * N + n) : 0.0;
            const uint k0 = g * p.groupSize, k1 = min(K, k0 + p.groupSize);
            for (uint wi = k0 / per; wi < k1 / per; ++wi) {
                const uint word = qweight[wi * N + n], kb = wi * per;
                if (wide) {
                    const vec4 lo = (vec4(uvec4(word, word >> 4, word >> 8, word >> 12) & 15u) - zero) * scale;
                    const vec4 hi = (vec4(uvec4(word >> 16, word >> 20, word >> 24, word >> 28) & 15u) - zero) * scale;
                    for (uint t = 0; t < TILE; ++t) {
                        const uint xb = (p.xOffset + min(t0 + t, lastToken) * p.xStride + kb) / 4u;
                        acc[t] += dot(lo, x4[xb]) + dot(hi, x4[xb + 1u]);
                    }
                } else {
                    for (uint j = 0; j < per; ++j) {
                        const uint k = kb + j;
                        float v = (float((word >> (j * BITS)) & mask) - zero) * scale;
                        if (RESIDUAL) v += ((qresidual[(k >> 5) * N + n] >> (k & 31u)) & 1u) != 0u ? r : -r;
                        addValue(v, k);
                    }
                }
            }
        }
    } else {
        int group = -1;
        float scale = 0.0, zero = 0.0, r = 0.0;
        for (uint k = 0; k < K; ++k) {
            const int g = gIdx[k];
            if (g != group) {
                group = g;
                scale = f16At(uint(g) * N + n);
                zero = float(streamValue(uint(g) * zeroWords, 1u, n, true) + 1u);
                if (RESIDUAL) r = rscaleAt(uint(g) * N + n);
            }
            float v = scale * (float(streamValue(n, N, k, false)) - zero);
            if (RESIDUAL) v += ((qresidual[(k >> 5) * N + n] >> (k & 31u)) & 1u) != 0u ? r : -r;
            addValue(v, k);
        }
    }
    for (uint t = 0; t < TILE; ++t)
        if (t0 + t <= lastToken) y[p.yOffset + (t0 + t) * p.yStride + n] = acc[t];
}
