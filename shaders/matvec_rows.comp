#version 450
// y = W · x for a weight stored row by row (f32, f16, bf16, Q8_0 and Q4_0 blocks, NVFP4 as ModelOpt stores it):
// one workgroup per output row; each invocation accumulates a strided share of the row's values (or blocks),
// then the workgroup adds the shares. FORMAT is a specialization constant, so each pipeline holds one decoder.
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#include "shader_params.h"
#define WG_SIZE 64
layout(local_size_x = WG_SIZE) in;
layout(constant_id = 0) const uint FORMAT = WHITTLE_FMT_F32;

layout(std430, binding = 0) readonly buffer Weights { uint w[]; };
layout(std430, binding = 1) readonly buffer BlockScales { uint bs[]; };  // NVFP4's E4M3 scales [rows, cols/16]
layout(std430, binding = 2) readonly buffer X { float x[]; };
layout(std430, binding = 3) buffer Y { float y[]; };
layout(push_constant) uniform Push { MatvecParams p; };

#include "common.glsl"
#include "reduce.glsl"

uint byteAt(uint off) { return (w[off >> 2] >> ((off & 3u) * 8u)) & 255u; }
// Four bytes starting at an even byte offset (GGUF blocks are 34 or 18 bytes: 2-byte aligned).
uint word2(uint off) {
    const uint i = off >> 2;
    return (off & 2u) == 0u ? w[i] : (w[i] >> 16) | (w[i + 1] << 16);
}
uint half2(uint off) { return (w[off >> 2] >> ((off & 2u) * 8u)) & 0xFFFFu; }

void main() {
    const uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * p.gridWidth;
    if (row >= p.rows) return;  // uniform over the workgroup
    const uint t = gl_LocalInvocationID.x;
    const uint cols = p.cols, xo = p.xOffset;
    float acc = 0.0;
    if (FORMAT == WHITTLE_FMT_F32) {
        const uint base = row * cols;
        for (uint i = t; i < cols; i += WG_SIZE) acc += uintBitsToFloat(w[base + i]) * x[xo + i];
    } else if (FORMAT == WHITTLE_FMT_F16 || FORMAT == WHITTLE_FMT_BF16) {
        const uint base = row * cols;  // in halves
        if ((cols & 1u) == 0u) {
            const uint wb = base >> 1;
            for (uint j = t; j < cols / 2; j += WG_SIZE) {
                const uint v = w[wb + j];
                const float a = FORMAT == WHITTLE_FMT_F16 ? f16Bits(v & 0xFFFFu) : bf16Bits(v & 0xFFFFu);
                const float b = FORMAT == WHITTLE_FMT_F16 ? f16Bits(v >> 16) : bf16Bits(v >> 16);
                acc += a * x[xo + 2 * j] + b * x[xo + 2 * j + 1];
            }
        } else {
            for (uint i = t; i < cols; i += WG_SIZE) {
                const uint h = half2(2 * (base + i));
                acc += (FORMAT == WHITTLE_FMT_F16 ? f16Bits(h) : bf16Bits(h)) * x[xo + i];
            }
        }
    } else if (FORMAT == WHITTLE_FMT_Q8_0) {
        const uint blocks = cols / 32, rowBytes = blocks * 34;
        for (uint b = t; b < blocks; b += WG_SIZE) {
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
        for (uint b = t; b < blocks; b += WG_SIZE) {
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
        for (uint b = t; b < blocks; b += WG_SIZE) {
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
    acc = workgroupSum(acc) * p.scale;
    if (t == 0) y[p.yOffset + row] = p.accumulate != 0u ? y[p.yOffset + row] + acc : acc;
}
