#version 450
// y = W · x for a weight stored row by row (f32, f16, bf16, Q8_0 and Q4_0 blocks, NVFP4 as ModelOpt stores it):
// two layouts, chosen by the ROWS specialization constant.
//   ROWS ≥ 1 (GPUs): each workgroup computes ROWS consecutive output rows; each invocation accumulates a strided
//     share of each row's values (or blocks), so neighbouring invocations read neighbouring words, then one
//     reduction adds the shares of all ROWS rows at once.
//   ROWS = 0 (CPU devices such as lavapipe): one invocation per row, no reduction and no barrier — there a
//     workgroup's barriers cost far more than its arithmetic, and the CPU's caches serve the strided rows.
// FORMAT is a specialization constant too, so each pipeline holds one decoder.
#include "shader_params.h"
#define WG_SIZE 64
layout(local_size_x = WG_SIZE) in;
layout(constant_id = 0) const uint FORMAT = WHITTLE_FMT_F32;
layout(constant_id = 1) const uint ROWS = 1;

layout(std430, binding = 0) readonly buffer Weights { uint w[]; };
layout(std430, binding = 1) readonly buffer BlockScales { uint bs[]; };  // NVFP4's E4M3 scales [rows, cols/16]
layout(std430, binding = 2) readonly buffer X { float x[]; };
// The same buffers seen 16 bytes at a time, for the CPU layout's wide loads.
layout(std430, binding = 0) readonly buffer Weights4 { uvec4 w4[]; };
layout(std430, binding = 2) readonly buffer X4 { vec4 x4[]; };
layout(std430, binding = 3) buffer Y { float y[]; };
layout(push_constant) uniform Push { MatvecParams p; };

#include "common.glsl"

shared float partials[8 * WG_SIZE];  // ROWS ≤ 8

uint byteAt(uint off) { return (w[off >> 2] >> ((off & 3u) * 8u)) & 255u; }
// Four bytes starting at an even byte offset (GGUF blocks are 34 or 18 bytes: 2-byte aligned).
uint word2(uint off) {
    const uint i = off >> 2;
    return (off & 2u) == 0u ? w[i] : (w[i] >> 16) | (w[i + 1] << 16);
}
uint half2(uint off) { return (w[off >> 2] >> ((off & 2u) * 8u)) & 0xFFFFu; }

// Σ over the values (or blocks) t, t + STEP, t + 2·STEP, … of one row.
float rowShare(const uint row, const uint t, const uint STEP) {
    const uint cols = p.cols, xo = p.xOffset;
    float acc = 0.0;
    if (FORMAT == WHITTLE_FMT_F32) {
        const uint base = row * cols;
        for (uint i = t; i < cols; i += STEP) acc += uintBitsToFloat(w[base + i]) * x[xo + i];
    } else if (FORMAT == WHITTLE_FMT_F16 || FORMAT == WHITTLE_FMT_BF16) {
        const uint base = row * cols;  // in halves
        if ((cols & 1u) == 0u) {
            const uint wb = base >> 1;
            for (uint j = t; j < cols / 2; j += STEP) {
                const uint v = w[wb + j];
                const float a = FORMAT == WHITTLE_FMT_F16 ? f16Bits(v & 0xFFFFu) : bf16Bits(v & 0xFFFFu);
                const float b = FORMAT == WHITTLE_FMT_F16 ? f16Bits(v >> 16) : bf16Bits(v >> 16);
                acc += a * x[xo + 2 * j] + b * x[xo + 2 * j + 1];
            }
        } else {
            for (uint i = t; i < cols; i += STEP) {
                const uint h = half2(2 * (base + i));
                acc += (FORMAT == WHITTLE_FMT_F16 ? f16Bits(h) : bf16Bits(h)) * x[xo + i];
            }
        }
    } else if (FORMAT == WHITTLE_FMT_Q8_0) {
        const uint blocks = cols / 32, rowBytes = blocks * 34;
        for (uint b = t; b < blocks; b += STEP) {
            const uint off = row * rowBytes + b * 34;
            const float d = f16Bits(half2(off));
            const uint xb = xo + b * 32;
            float s = 0.0;
            for (uint j = 0; j < 8; ++j) {
                const int q = int(word2(off + 2 + 4 * j));
                s += float(bitfieldExtract(q, 0, 8)) * x[xb + 4 * j] + float(bitfieldExtract(q, 8, 8)) * x[xb + 4 * j + 1] +
                     float(bitfieldExtract(q, 16, 8)) * x[xb + 4 * j + 2] + float(bitfieldExtract(q, 24, 8)) * x[xb + 4 * j + 3];
            }
            acc += d * s;
        }
    } else if (FORMAT == WHITTLE_FMT_Q4_0) {
        const uint blocks = cols / 32, rowBytes = blocks * 18;
        for (uint b = t; b < blocks; b += STEP) {
            const uint off = row * rowBytes + b * 18;
            const float d = f16Bits(half2(off));
            const uint xb = xo + b * 32;
            float s = 0.0;
            for (uint j = 0; j < 4; ++j) {
                const uint q = word2(off + 2 + 4 * j);
                for (uint k = 0; k < 4; ++k) {
                    const uint byte = (q >> (8 * k)) & 255u;
                    s += (float(byte & 15u) - 8.0) * x[xb + 4 * j + k] + (float(byte >> 4) - 8.0) * x[xb + 16 + 4 * j + k];
                }
            }
            acc += d * s;
        }
    } else if (FORMAT == WHITTLE_FMT_NVFP4) {
        const uint blocks = cols / 16;
        for (uint b = t; b < blocks; b += STEP) {
            const uint codeWord = (row * cols / 2 + b * 8) >> 2;  // 8 bytes of codes, 4-byte aligned
            const uint sOff = row * blocks + b;
            const float d = e4m3((bs[sOff >> 2] >> ((sOff & 3u) * 8u)) & 255u);
            const uint xb = xo + b * 16;
            float s = 0.0;
            for (uint h = 0; h < 2; ++h) {
                const uint c = w[codeWord + h];
                for (uint k = 0; k < 8; ++k) s += e2m1((c >> (4 * k)) & 15u) * x[xb + 8 * h + k];
            }
            acc += d * s;
        }
    }
    return acc;
}

void main() {
    if (ROWS == 0) {
        const uint row = gl_GlobalInvocationID.x + gl_WorkGroupID.y * p.gridWidth * WG_SIZE;
        if (row >= p.rows) return;
        float acc;
        if ((FORMAT == WHITTLE_FMT_BF16 || FORMAT == WHITTLE_FMT_F16) && (p.cols & 7u) == 0u && (p.xOffset & 3u) == 0u) {
            // Eight halves per 16-byte load (rows start 16-byte aligned when cols is a multiple of 8).
            acc = 0.0;
            const uint base = row * (p.cols / 8), xb = p.xOffset / 4;
            for (uint j = 0; j < p.cols / 8; ++j) {
                const uvec4 v = w4[base + j];
                const vec4 xa = x4[xb + 2 * j], xc = x4[xb + 2 * j + 1];
                vec4 lo, hi;
                if (FORMAT == WHITTLE_FMT_BF16) {
                    lo = uintBitsToFloat(uvec4(v.x << 16, v.x & 0xFFFF0000u, v.y << 16, v.y & 0xFFFF0000u));
                    hi = uintBitsToFloat(uvec4(v.z << 16, v.z & 0xFFFF0000u, v.w << 16, v.w & 0xFFFF0000u));
                } else {
                    lo = vec4(unpackHalf2x16(v.x), unpackHalf2x16(v.y));
                    hi = vec4(unpackHalf2x16(v.z), unpackHalf2x16(v.w));
                }
                acc += dot(lo, xa) + dot(hi, xc);
            }
        } else {
            acc = rowShare(row, 0u, 1u);
        }
        acc *= p.scale;
        y[p.yOffset + row] = p.accumulate != 0u ? y[p.yOffset + row] + acc : acc;
        return;
    }
    const uint first = (gl_WorkGroupID.x + gl_WorkGroupID.y * p.gridWidth) * ROWS;
    if (first >= p.rows) return;  // uniform over the workgroup
    const uint t = gl_LocalInvocationID.x;
    for (uint r = 0; r < ROWS; ++r) partials[r * WG_SIZE + t] = first + r < p.rows ? rowShare(first + r, t, WG_SIZE) : 0.0;
    barrier();
    for (uint s = WG_SIZE / 2; s > 0; s >>= 1) {
        if (t < s)
            for (uint r = 0; r < ROWS; ++r) partials[r * WG_SIZE + t] += partials[r * WG_SIZE + t + s];
        barrier();
    }
    if (t < ROWS && first + t < p.rows) {
        const float acc = partials[t * WG_SIZE] * p.scale;
        const uint at = p.yOffset + first + t;
        y[at] = p.accumulate != 0u ? y[at] + acc : acc;
    }
}
