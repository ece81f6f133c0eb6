#version 450
// Token selection on the device, so only the token id comes back: the steps of core/engine/sampler.cpp on one
// row of logits, in one workgroup. The host writes the sampling state (SampleState, then the distinct ids of the
// repetition window) before the submit and draws the uniform number from its own seeded generator, so a seed
// gives the same tokens on both engines.
//   1. work ← logits with the repetition penalty on the window's ids, suppressed ids (a bit set) at −∞;
//   2. greedy (temperature 0): the first index of the maximum;
//   3. otherwise the top K (K = top-k, or the whole vocabulary when that is at most WHITTLE_SAMPLE_MAX_K): a radix
//      select finds the K-th largest value, the K candidates (ties by lowest id, as the host's partial sort)
//      are bitonic-sorted in shared memory, then temperature, top-p, min-p and the draw as on the host.
// Probabilities are f32 here and f64 on the host: a draw within ~1e-6 of a cumulative boundary may pick the
// neighbouring token (the op harness counts such draws).
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#include "shader_params.h"
#define WG_SIZE 256
layout(local_size_x = WG_SIZE) in;
layout(std430, binding = 0) readonly buffer Logits { float logits[]; };
layout(std430, binding = 1) readonly buffer Suppressed { uint suppressed[]; };  // bit i: id i is never picked
layout(std430, binding = 2) readonly buffer State {
    SampleState st;
    uint penaltyIds[];
};
layout(std430, binding = 3) coherent buffer Work { float work[]; };
layout(std430, binding = 4) writeonly buffer Result { uint result[]; };
layout(push_constant) uniform Push { SampleParams p; };
#include "reduce.glsl"

shared float candV[WHITTLE_SAMPLE_MAX_K];
shared uint candI[WHITTLE_SAMPLE_MAX_K];
shared uint gtBefore[WG_SIZE];
shared uint eqBefore[WG_SIZE];
shared uint aboveTau;

bool isSuppressed(uint i) { return p.hasSuppressed != 0u && ((suppressed[i >> 5] >> (i & 31u)) & 1u) != 0u; }
// An order-preserving key of a float: larger floats give larger keys.
uint sortKey(float f) {
    const uint u = floatBitsToUint(f);
    return (u & 0x80000000u) != 0u ? ~u : u | 0x80000000u;
}
// Whether candidate a comes before b in the host's order: larger logit first, then lower id.
bool before(uint a, uint b) { return candV[a] > candV[b] || (candV[a] == candV[b] && candI[a] < candI[b]); }

void main() {
    const uint t = gl_LocalInvocationID.x, n = p.n;
    const float negInf = uintBitsToFloat(0xFF800000u);
    for (uint i = t; i < n; i += WG_SIZE) work[i] = isSuppressed(i) ? negInf : logits[p.offset + i];
    memoryBarrierBuffer();
    barrier();
    if (t < st.penaltyCount) {
        // Distinct ids (the host dedups): positive logits divided, negative multiplied, as transformers does.
        const uint id = penaltyIds[t];
        if (id < n && !isSuppressed(id)) {
            const float l = work[id];
            work[id] = l > 0.0 ? l / st.penalty : l * st.penalty;
        }
    }
    memoryBarrierBuffer();
    barrier();
    if (st.temperature == 0.0) {
        float best = negInf;
        uint bestI = 0xFFFFFFFFu;
        for (uint i = t; i < n; i += WG_SIZE)
            if (work[i] > best || bestI == 0xFFFFFFFFu) { best = work[i]; bestI = i; }  // strided: the first max of this lane
        candV[t] = best;
        candI[t] = bestI;
        barrier();
        for (uint h = WG_SIZE / 2; h > 0; h >>= 1) {
            if (t < h && candI[t + h] != 0xFFFFFFFFu && (candI[t] == 0xFFFFFFFFu || before(t + h, t))) {
                candV[t] = candV[t + h];
                candI[t] = candI[t + h];
            }
            barrier();
        }
        if (t == 0u) result[0] = candI[0];
        return;
    }
    const uint K = st.topK > 0u && st.topK < n ? st.topK : n;  // the host makes sure K ≤ WHITTLE_SAMPLE_MAX_K
    // The K-th largest key τ, a bit at a time from the top: the largest τ with at least K keys ≥ τ.
    uint tau = 0u;
    for (int bit = 31; bit >= 0; --bit) {
        const uint cand = tau | (1u << uint(bit));
        float count = 0.0;
        for (uint i = t; i < n; i += WG_SIZE) count += sortKey(work[i]) >= cand ? 1.0 : 0.0;
        if (workgroupSum(count) >= float(K)) tau = cand;
    }
    // Each lane owns a contiguous range of ids, so ties with τ keep the lowest ids, as the host's sort does.
    const uint per = (n + WG_SIZE - 1u) / WG_SIZE, lo = min(n, t * per), hi = min(n, lo + per);
    uint gt = 0u, eq = 0u;
    for (uint i = lo; i < hi; ++i) {
        const uint k = sortKey(work[i]);
        gt += k > tau ? 1u : 0u;
        eq += k == tau ? 1u : 0u;
    }
    gtBefore[t] = gt;
    eqBefore[t] = eq;
    candV[t] = negInf;  // slots past K sort last
    candI[t] = 0xFFFFFFFFu;
    barrier();
    if (t == 0u) {  // exclusive prefix sums over the lanes
        uint g = 0u, e = 0u;
        for (uint j = 0; j < WG_SIZE; ++j) {
            const uint gj = gtBefore[j], ej = eqBefore[j];
            gtBefore[j] = g;
            eqBefore[j] = e;
            g += gj;
            e += ej;
        }
        aboveTau = g;  // < K by the choice of τ
    }
    barrier();
    // Keys above τ take slots [0, aboveTau), the lowest-id ties the rest up to K.
    uint at = gtBefore[t], rank = eqBefore[t];
    for (uint i = lo; i < hi; ++i) {
        const uint k = sortKey(work[i]);
        uint slot = 0xFFFFFFFFu;
        if (k > tau) slot = at++;
        else if (k == tau) {
            if (rank < K - aboveTau) slot = aboveTau + rank;
            ++rank;
        }
        if (slot != 0xFFFFFFFFu) {
            candV[slot] = work[i];
            candI[slot] = i;
        }
    }
    barrier();
    // Bitonic sort of the WG_SIZE slots into the host's order.
    for (uint size = 2u; size <= WG_SIZE; size <<= 1) {
        for (uint stride = size >> 1; stride > 0u; stride >>= 1) {
            const uint other = t ^ stride;
            if (other > t) {
                const bool forward = (t & size) == 0u;
                if (forward ? before(other, t) : before(t, other)) {
                    const float v = candV[t];
                    const uint id = candI[t];
                    candV[t] = candV[other];
                    candI[t] = candI[other];
                    candV[other] = v;
                    candI[other] = id;
                }
            }
            barrier();
        }
    }
    if (t != 0u) return;
    // Temperature, top-p, min-p and the draw, as core/engine/sampler.cpp does them.
    const float mx = candV[0];
    float sum = 0.0;
    for (uint i = 0; i < K; ++i) {
        const float e = exp((candV[i] - mx) / st.temperature);
        candV[i] = e;  // now the unnormalised probability
        sum += e;
    }
    uint keep = K;
    if (st.topP < 1.0) {
        float acc = 0.0;
        for (uint i = 0; i < K; ++i) {
            acc += candV[i] / sum;
            if (acc >= st.topP) {
                keep = i + 1u;
                break;
            }
        }
    }
    if (st.minP > 0.0) {
        const float floor_ = st.minP * candV[0];
        uint k = 1u;
        while (k < keep && candV[k] >= floor_) ++k;
        keep = k;
    }
    float kept = 0.0;
    for (uint i = 0; i < keep; ++i) kept += candV[i];
    if (!(kept > 0.0)) {
        result[0] = candI[0];
        return;
    }
    const float u = st.draw * kept;
    float acc = 0.0;
    for (uint i = 0; i < keep; ++i) {
        acc += candV[i];
        if (u < acc) {
            result[0] = candI[i];
            return;
        }
    }
    result[0] = candI[keep - 1u];
}
