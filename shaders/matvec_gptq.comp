#version 450
// y = W · x for a GPTQ v1 weight (core/io/gptq_layout.h): one invocation per output n. The layout stores column n
// of Wᵀ as a bit stream down the words qweight[·, n], so neighbouring invocations read neighbouring words.
// BITS ∈ {2, 3, 4, 8} and RESIDUAL (Whittle's binary residual) are specialization constants; g_idx is read per
// input, so act-order with static groups and plain k / g grouping both run here.
#include "shader_params.h"
layout(local_size_x = 64) in;
layout(constant_id = 0) const uint BITS = 4;
layout(constant_id = 1) const bool RESIDUAL = false;

layout(std430, binding = 0) readonly buffer QWeight { uint qweight[]; };
layout(std430, binding = 1) readonly buffer QZeros { uint qzeros[]; };
layout(std430, binding = 2) readonly buffer Scales { uint scales[]; };  // f16 pairs
layout(std430, binding = 3) readonly buffer GIdx { int gIdx[]; };
layout(std430, binding = 4) readonly buffer QResidual { uint qresidual[]; };
layout(std430, binding = 5) readonly buffer ResidualScales { uint rscales[]; };
layout(std430, binding = 6) readonly buffer X { float x[]; };
layout(std430, binding = 6) readonly buffer X4 { vec4 x4[]; };  // the same input, 16 bytes at a time
layout(std430, binding = 7) writeonly buffer Y { float y[]; };
layout(push_constant) uniform Push { GptqParams p; };

#include "common.glsl"

float f16At(uint i) { return f16Bits((scales[i >> 1] >> ((i & 1u) * 16u)) & 0xFFFFu); }
float rscaleAt(uint i) { return f16Bits((rscales[i >> 1] >> ((i & 1u) * 16u)) & 0xFFFFu); }

// Value i of a bit stream of BITS-bit values whose consecutive words lie `stride` words apart from `first`.
uint streamValue(uint first, uint stride, uint i, bool zeros) {
    const uint bit = i * BITS, word = bit >> 5, shift = bit & 31u;
    const uint at = first + word * stride;
    uint v = (zeros ? qzeros[at] : qweight[at]) >> shift;
    if (shift + BITS > 32u) v |= (zeros ? qzeros[at + stride] : qweight[at + stride]) << (32u - shift);
    return v & ((1u << BITS) - 1u);
}

void main() {
    const uint n = gl_GlobalInvocationID.x + gl_WorkGroupID.y * p.gridWidth * 64u;
    if (n >= p.n) return;
    const uint N = p.n, K = p.k, zeroWords = N * BITS / 32u;
    if ((32u % BITS) == 0u && p.groupSize != 0u) {
        // Contiguous groups (RTN, GPTQ without act-order or with static groups): each group's scale, zero and
        // residual magnitude once, then whole words of codes.
        const uint per = 32u / BITS, mask = (1u << BITS) - 1u;
        float total = 0.0;
        for (uint g = 0; g * p.groupSize < K; ++g) {
            const float zero = float(streamValue(g * zeroWords, 1u, n, true) + 1u);  // v1 stores zero − 1
            const uint k0 = g * p.groupSize, k1 = min(K, k0 + p.groupSize);
            float sum = 0.0, signed_ = 0.0;
            for (uint wi = k0 / per; wi < k1 / per; ++wi) {
                const uint word = qweight[wi * N + n];
                const uint kb = wi * per;
                if (BITS == 4u && (p.xOffset & 3u) == 0u) {
                    // Eight codes against two 16-byte loads of x (fewer, wider loads: much faster on CPU devices).
                    const uint xb = (p.xOffset + kb) / 4u;
                    const vec4 lo = vec4(uvec4(word, word >> 4, word >> 8, word >> 12) & 15u) - zero;
                    const vec4 hi = vec4(uvec4(word >> 16, word >> 20, word >> 24, word >> 28) & 15u) - zero;
                    sum += dot(lo, x4[xb]) + dot(hi, x4[xb + 1u]);
                } else {
                    for (uint j = 0; j < per; ++j) sum += (float((word >> (j * BITS)) & mask) - zero) * x[p.xOffset + kb + j];
                }
                if (RESIDUAL) {
                    for (uint j = 0; j < per; ++j) {
                        const uint k = kb + j;
                        const float xv = x[p.xOffset + k];
                        signed_ += ((qresidual[(k >> 5) * N + n] >> (k & 31u)) & 1u) != 0u ? xv : -xv;
                    }
                }
            }
            total += f16At(g * N + n) * sum;
            if (RESIDUAL) total += rscaleAt(g * N + n) * signed_;
        }
        y[p.yOffset + n] = total;
        return;
    }
    int group = -1;
    float scale = 0.0, zero = 0.0, r = 0.0;
    float acc = 0.0;
    uint word = 0u;
    for (uint k = 0; k < K; ++k) {
        const int g = gIdx[k];
        if (g != group) {
            group = g;
            scale = f16At(uint(g) * N + n);
            zero = float(streamValue(uint(g) * zeroWords, 1u, n, true) + 1u);  // v1 stores zero − 1
            if (RESIDUAL) r = rscaleAt(uint(g) * N + n);
        }
        uint q;
        if ((32u % BITS) == 0u) {
            const uint per = 32u / BITS, j = k % per;
            if (j == 0u) word = qweight[(k / per) * N + n];
            q = (word >> (j * BITS)) & ((1u << BITS) - 1u);
        } else {
            q = streamValue(n, N, k, false);
        }
        float v = scale * (float(q) - zero);
        if (RESIDUAL) v += ((qresidual[(k >> 5) * N + n] >> (k & 31u)) & 1u) != 0u ? r : -r;
        acc += v * x[p.xOffset + k];
    }
    y[p.yOffset + n] = acc;
}
