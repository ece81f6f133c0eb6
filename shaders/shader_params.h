// Push-constant structs shared by the C++ engine and the GLSL shaders (included by both), so the two
// can never disagree on a layout. Scalars only: std430 and C agree on their offsets.
#ifdef __cplusplus
#pragma once
#include <cstdint>
namespace whittle::gpu::shader {
using uint = std::uint32_t;
#endif

struct ScaleParams {
    uint n;
    float alpha;
};

struct ReduceParams {
    uint n;
};

// Weight formats of the row kernels (matvec_rows, gather_row): the FORMAT specialization constant.
#define WHITTLE_FMT_F32 0u
#define WHITTLE_FMT_F16 1u
#define WHITTLE_FMT_BF16 2u
#define WHITTLE_FMT_Q8_0 3u
#define WHITTLE_FMT_Q4_0 4u
#define WHITTLE_FMT_NVFP4 5u

// y[yOffset + r] (+)= scale · W[r, :] · x[xOffset …] for the rows of one bound part of a weight. Workgroup
// (gx, gy) computes row gx + gy · gridWidth: dispatch counts are capped at 65,535 per dimension.
struct MatvecParams {
    uint rows;
    uint cols;
    uint gridWidth;
    uint xOffset;
    uint yOffset;
    uint accumulate;  // 1: add to y
    float scale;      // NVFP4's global scale, else 1
    uint pad;
};

// y[yOffset + n] = Σ_k W[n, k] · x[xOffset + k] for a GPTQ v1 weight [N, K] (core/io/gptq_layout.h).
struct GptqParams {
    uint n;
    uint k;
    uint groups;
    uint xOffset;
    uint yOffset;
    uint gridWidth;  // in workgroups
    uint groupSize;  // g when g_idx[k] = k / g for every k and g is a multiple of 32 / bits (the fast path), else 0
};

// The prefill's matrix–matrix product: Y[t, yOffset + r] = scale · W[r, :] · X[t, xOffset …] for the `tokens` rows t
// of X (xStride floats apart) and of Y (yStride apart), over the rows of one bound part of a row-format weight or
// a whole GPTQ weight (groups, groupSize as GptqParams). Workgroup (gx, gy, gz) computes rows of gx + gy ·
// gridWidth for the tokens of tile gz.
struct MatmulParams {
    uint rows;
    uint cols;
    uint gridWidth;
    uint tokens;
    uint xOffset;
    uint xStride;
    uint yOffset;
    uint yStride;
    float scale;
    uint groups;
    uint groupSize;
};

// One RMSNorm per workgroup over rows of n values at inOffset + row · stride (and outOffset + row · stride):
// mode 0: out = norm(in · inScale) · w;  mode 1: out = (out + norm(in) · w) · scalar (the residual add).
// With hasBias, in + bias is normed (FLAP's down_proj bias, added before the post-FFN norm).
struct NormParams {
    uint n;
    uint inOffset;
    uint outOffset;
    uint stride;
    uint hasWeight;
    uint mode;
    float eps;
    float inScale;
    float scalar;
    uint hasBias;
};

// Per head and token (workgroup (head, 0, token)): RMSNorm (weight optional), then RoPE with the cos/sin the host
// wrote into the token's state record at ropeOffset (none when ropeOffset is WHITTLE_NO_ROPE); the token's heads
// start tokenStride floats after the previous token's. Written in place, or into the KV cache slot
// (position % capacity) · rowWidth + head · headDim when toCache is 1.
struct HeadParams {
    uint headDim;
    uint hasWeight;
    uint ropeOffset;
    uint toCache;
    uint capacity;
    uint rowWidth;
    uint inOffset;
    uint outOffset;
    float eps;
    uint tokenStride;
};
#define WHITTLE_NO_ROPE 0xFFFFFFFFu

// Attention of one query head of one token per workgroup (head, 0, token) over the cache positions
// [first, position] of that token; queries and outputs of consecutive tokens lie tokenStride floats apart.
struct AttentionParams {
    uint headDim;
    uint kvHeads;
    uint group;        // query heads per KV head
    uint capacity;     // cache slots; position p lives in slot p % capacity
    uint window;       // sliding window, 0 on full layers
    uint tokenStride;  // floats between consecutive tokens' queries (and outputs)
};

// gate[gateOffset + i] = GELU_tanh(gate[gateOffset + i]) · up[upOffset + (i / rowLen) · upStride + i % rowLen]:
// n values in rows of rowLen; the up rows lie upStride apart (the PLE gate of a chunk against one layer's slice
// of each token's per-layer inputs), or rowLen apart when contiguous.
struct GeluParams {
    uint n;
    uint gateOffset;
    uint upOffset;
    uint rowLen;
    uint upStride;
};

// The per-layer inputs (GEMMA4.md §3.1), one workgroup per layer slice of pleDim values.
struct PleParams {
    uint pleDim;
    float projScale;  // H^-½
    float rowScale;   // √P
    float eps;
};

struct SoftcapParams {
    uint n;
    float cap;
};

// Decodes the row of each token of the state (workgroup (0, 0, token)) from one bound part of a table, rows
// [firstRow, firstRow + rows), into out[outOffset + token · cols …]; parts that do not hold the token do nothing.
struct GatherParams {
    uint cols;
    uint firstRow;
    uint rows;
    uint outOffset;
};

// The argmax of logits[offset … offset + n).
struct ArgmaxParams {
    uint n;
    uint offset;
};

// Device sampling (sample.comp) of logits[offset … offset + n): push constants fixed at recording ...
struct SampleParams {
    uint n;
    uint offset;
    uint hasSuppressed;  // 1: bit i of the suppressed buffer marks id i as never picked
};
// ... and the sampling state the host writes before each submit, followed by penaltyCount distinct ids.
#define WHITTLE_SAMPLE_MAX_K 256u
struct SampleState {
    float temperature;  // 0: greedy
    uint topK;          // 0: off (then the vocabulary must be at most WHITTLE_SAMPLE_MAX_K)
    float topP;
    float minP;
    float penalty;      // repetition penalty on the ids that follow
    uint penaltyCount;
    float draw;         // the host's uniform draw in [0, 1)
    uint pad;
};

struct CopyParams {
    uint words;
};

#ifdef __cplusplus
}  // namespace whittle::gpu::shader
#endif
