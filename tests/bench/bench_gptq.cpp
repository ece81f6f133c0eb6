// Benchmark (not a test): GPTQ's cost on E2B's real layer shapes, on this machine's cores, and the time it
// projects for a whole E2B. Prints JSON.
//   bench_gptq [TOKENS_FOR_HESSIAN (default 512)] [--hessian-only]
// Measured in one run:
//   - Hessian accumulation (f64 Σ x xᵀ, on the pool, fed in the engine's 64-token chunks) in tokens per second
//     for K = 1536 and K = 12288 (--hessian-only: just these two rates);
//   - quantizeGptq (g128, symmetric, act-order, damp 0.01) on a 6144 × 1536 layer (E2B's gate/up) and a
//     1536 × 12288 layer (the double-wide down_proj of E2B's KV-shared layers), beside RTN on the same weights;
//   - cancel latency on the wide layer: the run cancelled from another thread at 5 %, 30 % and 70 % of its time,
//     and how long quantizeGptq took to stop;
//   - the projection for E2B's 205 quantized linears at the published calibration (256 × 2048 tokens):
//     solve time fitted as a·N·K² + b·K³ from the two layers, Hessian time per site from the measured rate.
//     The calibration forward passes through the model are not included (they depend on the engine).
#include <QTemporaryDir>

#include <chrono>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fixtures/tiny_checkpoint.h"
#include "core/model/checkpoint.h"
#include "core/quant/gptq.h"
#include "core/recipes/quantize.h"
#include "core/reference/reference_session.h"

using namespace whittle;

namespace {

double since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Activations with a low-rank shared part and per-feature noise (positive definite Hessian, uneven diagonal).
std::vector<float> activations(int T, std::int64_t K, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> d(0.0f, 1.0f);
    const int Z = 16;
    std::vector<float> a(static_cast<std::size_t>(K * Z)), z(static_cast<std::size_t>(Z)), x(static_cast<std::size_t>(T) * std::size_t(K));
    for (float& v : a) v = d(rng);
    for (int t = 0; t < T; ++t) {
        for (float& v : z) v = d(rng);
        for (std::int64_t k = 0; k < K; ++k) {
            float s = 0.3f * d(rng);
            for (int j = 0; j < Z; ++j) s += a[std::size_t(k * Z + j)] * z[std::size_t(j)];
            x[std::size_t(t) * std::size_t(K) + std::size_t(k)] = s * (1.0f + float(k % 5));
        }
    }
    return x;
}

struct LayerTiming {
    double hessianTokensPerSecond, gptqSeconds, rtnSeconds;
    std::vector<std::pair<double, double>> cancels;  // (cancelled at, seconds until quantizeGptq returned)
};

// Runs quantizeGptq again, cancels it from another thread `after` seconds in, and returns how long it took to
// stop (−1: it finished first).
double cancelLatency(const std::vector<float>& w, std::int64_t N, std::int64_t K, const Hessian& h, const GptqOptions& o, ThreadPool& pool,
                     double after) {
    CancelToken token;
    std::chrono::steady_clock::time_point cancelledAt{};
    std::thread canceller([&] {
        std::this_thread::sleep_for(std::chrono::duration<double>(after));
        cancelledAt = std::chrono::steady_clock::now();
        token.cancel();
    });
    bool stopped = false;
    try {
        quantizeGptq(w, N, K, h, o, "bench", pool, token);
    } catch (const CancelledError&) {
        stopped = true;
    }
    const auto end = std::chrono::steady_clock::now();
    canceller.join();
    return stopped ? std::chrono::duration<double>(end - cancelledAt).count() : -1.0;
}

double hessianRate(std::int64_t K, int T, ThreadPool& pool) {
    const std::vector<float> x = activations(T, K, std::uint64_t(K));
    Hessian h(K, &pool);
    const auto t0 = std::chrono::steady_clock::now();
    for (int t = 0; t < T; t += 64) h.add(x.data() + std::size_t(t) * std::size_t(K), std::min(64, T - t));
    h.matrix();  // includes a part batch, and the mirroring every solve pays
    return double(T) / since(t0);
}

LayerTiming timeLayer(std::int64_t N, std::int64_t K, int T, ThreadPool& pool, const std::vector<double>& cancelAt = {}) {
    const double rate = hessianRate(K, T, pool);
    const std::vector<float> x = activations(T, K, std::uint64_t(K));
    Hessian h(K, &pool);
    for (int t = 0; t < T; t += 64) h.add(x.data() + std::size_t(t) * std::size_t(K), std::min(64, T - t));
    std::mt19937_64 rng(7);
    std::normal_distribution<float> d(0.0f, 0.02f);
    std::vector<float> w(static_cast<std::size_t>(N * K));
    for (float& v : w) v = d(rng);
    GptqOptions o;
    o.actOrder = true;
    auto t0 = std::chrono::steady_clock::now();
    quantizeGptq(w, N, K, h, o, "bench", pool, CancelToken{});
    const double gs = since(t0);
    t0 = std::chrono::steady_clock::now();
    quantizeIntRtn(w, N, K, {128, true}, "bench", &pool);
    LayerTiming r{rate, gs, since(t0), {}};
    for (double f : cancelAt) r.cancels.emplace_back(f * gs, cancelLatency(w, N, K, h, o, pool, f * gs));
    return r;
}

}  // namespace

int main(int argc, char** argv) {
    const int T = argc > 1 ? std::atoi(argv[1]) : 512;
    ThreadPool pool;
    if (argc > 2 && std::string(argv[2]) == "--hessian-only") {
        const Json out{{"threads", pool.size()}, {"hessian_tokens", T},
                       {"hessian_tokens_per_s", {{"K1536", hessianRate(1536, T, pool)}, {"K12288", hessianRate(12288, T, pool)}}}};
        std::printf("%s\n", out.dump(2).c_str());
        return 0;
    }
    // The wide layer is also cancelled at 5 % (inside the factorisation of its 12288² Hessian), 30 % and 70 %.
    const LayerTiming a = timeLayer(6144, 1536, T, pool), b = timeLayer(1536, 12288, T, pool, {0.05, 0.3, 0.7});

    // Fit t = α·N·K² + β·K³ through the two layers.
    const double n1 = 6144, k1 = 1536, n2 = 1536, k2 = 12288;
    const double det = n1 * k1 * k1 * k2 * k2 * k2 - n2 * k2 * k2 * k1 * k1 * k1;
    const double alpha = (a.gptqSeconds * k2 * k2 * k2 - b.gptqSeconds * k1 * k1 * k1) / det;
    const double beta = (n1 * k1 * k1 * b.gptqSeconds - n2 * k2 * k2 * a.gptqSeconds) / det;
    // Hessian cost per token ∝ K²: one rate per measured K, interpolated in K².
    auto hessianSecondsPerToken = [&](double K) {
        const double c1 = 1.0 / (a.hessianTokensPerSecond * k1 * k1), c2 = 1.0 / (b.hessianTokensPerSecond * k2 * k2);
        return K <= k1 ? c1 * K * K : K >= k2 ? c2 * K * K : (c1 + (c2 - c1) * (K - k1) / (k2 - k1)) * K * K;
    };

    QTemporaryDir dir;
    TinyCheckpointOptions to;
    to.preset = "e2b-full";
    to.zeros = true;  // sparse files: only the shapes are needed
    NullProgress np;
    makeTinyCheckpoint(std::filesystem::path(dir.path().toStdString()) / "e2b", to, np, CancelToken{});
    const Checkpoint ck = Checkpoint::open(std::filesystem::path(dir.path().toStdString()) / "e2b");
    const QuantizeRecipe q;
    const double tokens = 256.0 * 2048.0;
    double solve = 0, hessian = 0;
    int linears = 0;
    std::map<std::pair<int, int>, std::int64_t> sites;  // (layer, site) → K
    for (const ExpectedTensor& e : ck.table())
        if (quantizes(q, e)) {
            const double N = double(e.shape[0]), K = double(e.shape[1]);
            solve += alpha * N * K * K + beta * K * K * K;
            sites[{e.layer, int(linearSite(e.role))}] = e.shape[1];
            ++linears;
        }
    for (const auto& [site, K] : sites) hessian += tokens * hessianSecondsPerToken(double(K));

    const Json out{{"threads", pool.size()},
                   {"hessian_tokens", T},
                   {"layer_6144x1536", {{"gptq_s", a.gptqSeconds}, {"rtn_s", a.rtnSeconds}, {"gptq_over_rtn", a.gptqSeconds / a.rtnSeconds},
                                        {"hessian_tokens_per_s", a.hessianTokensPerSecond}}},
                   {"layer_1536x12288", {{"gptq_s", b.gptqSeconds}, {"rtn_s", b.rtnSeconds}, {"gptq_over_rtn", b.gptqSeconds / b.rtnSeconds},
                                         {"hessian_tokens_per_s", b.hessianTokensPerSecond}, {"cancel_at_s_latency_s", b.cancels}}},
                   {"fit", {{"alpha_s_per_NK2", alpha}, {"beta_s_per_K3", beta}}},
                   {"e2b_projection", {{"linears", linears}, {"sites", sites.size()}, {"calibration_tokens", tokens},
                                       {"solve_hours", solve / 3600}, {"hessian_hours", hessian / 3600},
                                       {"note", "calibration forward passes not included (2 layer steps per layer per window since layer-by-layer calibration)"}}}};
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
}
