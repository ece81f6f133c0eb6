#pragma once
// The Gemma 4 maths as public, pure functions over spans (GEMMA4.md §3). The CPU reference forward is
// written with them and nothing else, and the Vulkan op harness compares every shader against exactly
// these functions. All are f32 with fixed reduction orders, so a result does not depend on the thread
// count or on which thread computes it.
#include <cstdint>
#include <span>

#include "core/engine/weight_view.h"
#include "core/util/thread_pool.h"

namespace whittle::ops {

// GELU with the tanh approximation (gelu_pytorch_tanh).
float geluTanh(float x);

// a · b in eight lanes summed in a fixed order, then the tail.
float dot(const float* a, const float* b, std::int64_t n);

// x ← x / √(mean(x²) + eps) · weight (weight null: no learned scale, as for V). Sum of squares in f64.
void rmsNorm(std::span<float> x, const float* weight, float eps);

// Rotates one head in place at `position`: pair i is (x[i], x[i + hd/2]) turned by position·invFreq[i];
// pairs with invFreq 0 are identities (proportional RoPE). invFreq from ropeInverseFrequencies().
void rope(std::span<float> head, std::span<const float> invFreq, int position);
// The cos and sin one pair is turned by at `position`: of position·invFreq, in double, rounded to float; an
// identity (1, 0) for invFreq 0. rope() uses it, and the Vulkan engine's per-token RoPE table is made of it.
void ropeCosSin(float invFreq, int position, float& c, float& s);

// logits ← cap · tanh(logits / cap).
void softcap(std::span<float> logits, float cap);

// gate ← GELU(gate) · up, element-wise (the gated MLP and the PLE gate).
void gatedGelu(std::span<float> gate, std::span<const float> up);

// Y[t, r] = W[r, :] · X[t, :] for t < T, rows in parallel; each row decoded once per call.
void matmul(ThreadPool& pool, const WeightView& w, const float* x, int T, std::int64_t ldx, float* y, std::int64_t ldy);
// y = W · x on the calling thread.
void matvec(const WeightView& w, const float* x, float* y);

// A layer's KV cache: `capacity` slots of [kvHeads][headDim] keys and values. Position p lives in slot
// p % capacity, so a sliding layer's cache is a ring; a KV-shared layer reads its source layer's cache.
struct KvCacheView {
    const float* k = nullptr;
    const float* v = nullptr;
    int capacity = 0, kvHeads = 0, headDim = 0;
};

// One query head attending over positions [first, last] of the cache (scale 1: the q/k norms carry it),
// softmax in f64 sums. scores needs last − first + 1 floats; out gets headDim floats.
void attendHead(const float* q, const KvCacheView& cache, int kvHead, int first, int last, float* scores, float* out);

// The first position a query at `position` attends to: position − window + 1 on sliding layers, else 0.
int firstAttendedPosition(int position, bool sliding, int window);

// Per-layer inputs of one token (GEMMA4.md §3.1): for each of L slices of P,
// proj ← (RMSNorm(proj · H^-½; norm) + tokenRow · √P) · 2^-½. proj is W_proj·x0 for the token; tokenRow is
// the token's unscaled PLE-table row.
void combinePle(std::span<float> proj, std::span<const float> tokenRow, int layers, int pleDim, int hidden,
                const float* norm, float eps);

}  // namespace whittle::ops
