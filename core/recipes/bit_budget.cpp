#include "core/recipes/bit_budget.h"

#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

#include "core/error.h"
#include "core/io/gptq_layout.h"
#include "core/recipes/gptq_calibration.h"
#include "core/reference/reference_model.h"

namespace whittle {

std::vector<IntOptions> budgetCandidates() {
    // {groupSize, symmetric, bits, residual}
    return {{64, false, 2, false}, {128, false, 3, false}, {64, false, 2, true}, {128, true, 4, false}, {64, true, 4, false}, {128, true, 8, false}};
}

std::string formatName(const IntOptions& f) {
    std::string s = "INT" + std::to_string(f.bits) + (f.groupSize ? " g" + std::to_string(f.groupSize) : std::string(" per channel"));
    if (!f.symmetric) s += " asym";
    if (f.residual) s += " + residual";
    return s;
}

std::string formatId(const IntOptions& f) {
    std::string s = "int" + std::to_string(f.bits) + (f.groupSize ? "-g" + std::to_string(f.groupSize) : std::string("-perchannel"));
    if (!f.symmetric) s += "-asym";
    if (f.residual) s += "-res";
    return s;
}

IntOptions parseFormatId(const std::string& id) {
    const auto refuse = [&]() {
        return UsageError("'" + id + "' is not a format: write int<2|3|4|8>-g<N>|-perchannel[-asym][-res], e.g. int4-g128 or int2-g64-asym-res");
    };
    std::vector<std::string> parts;
    for (std::size_t a = 0, b; a <= id.size(); a = b + 1) {
        b = id.find('-', a);
        if (b == std::string::npos) b = id.size();
        parts.push_back(id.substr(a, b - a));
    }
    if (parts.size() < 2 || parts.size() > 4 || parts[0].size() != 4 || parts[0].rfind("int", 0) != 0) throw refuse();
    IntOptions f;
    f.bits = parts[0][3] - '0';
    if (f.bits != 2 && f.bits != 3 && f.bits != 4 && f.bits != 8) throw refuse();
    if (parts[1] == "perchannel") f.groupSize = 0;
    else {
        if (parts[1].size() < 2 || parts[1][0] != 'g' || parts[1].find_first_not_of("0123456789", 1) != std::string::npos || parts[1].size() > 8)
            throw refuse();
        f.groupSize = std::stoi(parts[1].substr(1));
        if (f.groupSize <= 0) throw refuse();
    }
    std::size_t i = 2;
    f.symmetric = !(i < parts.size() && parts[i] == "asym");
    if (!f.symmetric) ++i;
    f.residual = i < parts.size() && parts[i] == "res";
    if (f.residual) ++i;
    if (i != parts.size()) throw refuse();
    return f;
}

std::uint64_t gptqStoredBits(const IntOptions& f, std::int64_t N, std::int64_t K) {
    const std::int64_t g = f.groupSize ? f.groupSize : K, G = (K + g - 1) / g;
    std::uint64_t bits = std::uint64_t(K * N * f.bits)  // qweight
                         + std::uint64_t(G * N * f.bits)  // qzeros
                         + std::uint64_t(G * N * 16)      // scales
                         + std::uint64_t(K * 32);         // g_idx
    if (f.residual) bits += std::uint64_t(K * N) + std::uint64_t(G * N * 16);
    return bits;
}

namespace {

using RowMatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Σ_n a_n · H · a_nᵀ over the rows of A [N, K] (row-major), in fixed blocks of rows spread over the pool and
// summed in block order, so the figure (and the plan chosen from it) does not depend on the thread count.
double quadraticForm(const std::vector<float>& a, std::int64_t N, std::int64_t K, const Eigen::MatrixXf& H, ThreadPool& pool) {
    constexpr std::int64_t rowsPerBlock = 32;
    const std::int64_t blocks = (N + rowsPerBlock - 1) / rowsPerBlock;
    std::vector<double> part(static_cast<std::size_t>(blocks), 0.0);
    pool.parallelFor(std::size_t(blocks), [&](std::size_t b) {
        const std::int64_t r0 = std::int64_t(b) * rowsPerBlock, r1 = std::min(N, r0 + rowsPerBlock);
        const Eigen::Map<const RowMatF> A(a.data() + r0 * K, r1 - r0, K);
        const RowMatF AH = A * H;  // H is symmetric
        part[b] = double(AH.cwiseProduct(A).sum());
    });
    double sum = 0;
    for (double p : part) sum += p;
    return sum;
}

}  // namespace

std::vector<TensorSensitivity> measureSensitivity(const Checkpoint& ck, const std::function<bool(const ExpectedTensor&)>& selected,
                                                  const std::vector<std::vector<int>>& windows, const std::vector<IntOptions>& candidates,
                                                  const GptqOptions& options, Progress& progress, const CancelToken& cancel) {
    std::uint64_t total = 0;
    for (const ExpectedTensor& e : ck.table())
        if (e.linear && e.read && selected(e)) total += std::uint64_t(e.shape[0] * e.shape[1]);
    StageMeter meter(progress, "measuring sensitivity", total);
    std::vector<TensorSensitivity> out;
    std::vector<float> w, delta;
    calibrateLayers(ck, selected, windows, options, cancel,
                    [&](ReferenceModel& model, int layer, const SiteLinears& sites, const std::map<LinearSite, Hessian>& hessians) {
                        for (const auto& [site, linears] : sites) {
                            const std::vector<double> hd = hessians.at(site).matrix();
                            const std::int64_t K = hessians.at(site).dim();
                            const Eigen::MatrixXf H = Eigen::Map<const Eigen::MatrixXd>(hd.data(), K, K).cast<float>();
                            for (const ExpectedTensor* e : linears) {
                                cancel.throwIfCancelled();
                                const WeightView& view = model.linearWeight(e->role, layer);
                                const std::int64_t N = view.rows;
                                w.resize(std::size_t(view.numel()));
                                model.pool().parallelFor(std::size_t(N), [&](std::size_t r) { view.row(std::int64_t(r), &w[r * std::size_t(K)]); });
                                const double energy = quadraticForm(w, N, K, H, model.pool());
                                TensorSensitivity s;
                                s.name = e->name;
                                s.weights = std::uint64_t(N * K);
                                for (const IntOptions& f : candidates) {
                                    const bool ok = gptqShapeProblem(f.bits, f.residual, N, K).empty();
                                    s.available.push_back(ok);
                                    s.bits.push_back(gptqStoredBits(f, N, K));
                                    if (!ok) {
                                        s.error.push_back(std::numeric_limits<double>::infinity());
                                        continue;
                                    }
                                    const IntTensor t = quantizeIntRtn(w, N, K, f, e->name, &model.pool());
                                    delta.resize(w.size());
                                    model.pool().parallelFor(std::size_t(N), [&](std::size_t r) {
                                        float* d = &delta[r * std::size_t(K)];
                                        dequantizeIntRow(t, std::int64_t(r), d);
                                        for (std::int64_t k = 0; k < K; ++k) d[k] = w[r * std::size_t(K) + std::size_t(k)] - d[k];
                                    });
                                    const double err = quadraticForm(delta, N, K, H, model.pool());
                                    s.error.push_back(energy > 0 ? err / energy : 0.0);
                                }
                                out.push_back(std::move(s));
                                meter.advance(std::uint64_t(N * K));
                            }
                        }
                    });
    meter.finish();
    return out;
}

std::vector<int> chooseFormats(const std::vector<TensorSensitivity>& tensors, std::uint64_t budget) {
    const std::size_t T = tensors.size();
    std::vector<int> smallest(T, -1);
    std::uint64_t minBits = 0, weights = 0;
    for (std::size_t t = 0; t < T; ++t) {
        const TensorSensitivity& s = tensors[t];
        for (std::size_t c = 0; c < s.bits.size(); ++c)
            if (s.available[c] && (smallest[t] < 0 || s.bits[c] < s.bits[std::size_t(smallest[t])])) smallest[t] = int(c);
        if (smallest[t] < 0) throw UsageError({}, s.name, "no candidate format can hold this tensor's shape");
        minBits += s.bits[std::size_t(smallest[t])];
        weights += s.weights;
    }
    if (minBits > budget) {
        char buf[160];
        std::snprintf(buf, sizeof buf, "the bit budget of %.3f bits per weight is below the smallest the candidate formats allow (%.3f)",
                      double(budget) / double(weights), double(minBits) / double(weights));
        throw UsageError(buf);
    }
    // Each tensor's argmin of error + λ·bits (ties to fewer bits, then to the earlier candidate).
    auto pick = [&](double lambda, std::uint64_t& bits) {
        std::vector<int> choice(T);
        bits = 0;
        for (std::size_t t = 0; t < T; ++t) {
            const TensorSensitivity& s = tensors[t];
            int best = smallest[t];
            double bestCost = s.error[std::size_t(best)] + lambda * double(s.bits[std::size_t(best)]);
            for (std::size_t c = 0; c < s.bits.size(); ++c) {
                if (!s.available[c]) continue;
                const double cost = s.error[c] + lambda * double(s.bits[c]);
                if (cost < bestCost || (cost == bestCost && s.bits[c] < s.bits[std::size_t(best)])) {
                    best = int(c);
                    bestCost = cost;
                }
            }
            choice[t] = best;
            bits += s.bits[std::size_t(best)];
        }
        return choice;
    };
    std::uint64_t bits = 0;
    std::vector<int> choice = pick(0.0, bits);
    if (bits > budget) {
        // The smallest λ whose choice fits: bisection between a λ that does not fit and one that does.
        double lo = 0, hi = 1e-12;
        std::vector<int> fits = pick(hi, bits);
        while (bits > budget && hi < 1e300) {
            lo = hi;
            hi *= 4;
            fits = pick(hi, bits);
        }
        if (bits > budget) fits = smallest;  // λ so large that only size matters
        for (int i = 0; i < 200 && hi > lo * (1 + 1e-12); ++i) {
            const double mid = 0.5 * (lo + hi);
            std::uint64_t b = 0;
            std::vector<int> c = pick(mid, b);
            if (b <= budget) {
                hi = mid;
                fits = std::move(c);
            } else {
                lo = mid;
            }
        }
        choice = std::move(fits);
    }
    bits = 0;
    for (std::size_t t = 0; t < T; ++t) bits += tensors[t].bits[std::size_t(choice[t])];
    // The Lagrangian points leave bits unused between them: spend them on the upgrades that save the most
    // error per bit, one at a time.
    for (;;) {
        double bestRatio = 0;
        std::size_t bestT = T;
        int bestC = -1;
        for (std::size_t t = 0; t < T; ++t) {
            const TensorSensitivity& s = tensors[t];
            const std::size_t cur = std::size_t(choice[t]);
            for (std::size_t c = 0; c < s.bits.size(); ++c) {
                if (!s.available[c] || !(s.error[c] < s.error[cur])) continue;
                const std::int64_t extra = std::int64_t(s.bits[c]) - std::int64_t(s.bits[cur]);
                if (extra > 0 && bits + std::uint64_t(extra) > budget) continue;
                const double ratio = extra <= 0 ? std::numeric_limits<double>::infinity() : (s.error[cur] - s.error[c]) / double(extra);
                if (ratio > bestRatio) {
                    bestRatio = ratio;
                    bestT = t;
                    bestC = int(c);
                }
            }
        }
        if (bestT == T) break;
        bits = bits - tensors[bestT].bits[std::size_t(choice[bestT])] + tensors[bestT].bits[std::size_t(bestC)];
        choice[bestT] = bestC;
    }
    return choice;
}

std::map<std::string, IntOptions> BitBudgetPlan::formats() const {
    std::map<std::string, IntOptions> m;
    for (std::size_t t = 0; t < tensors.size(); ++t) m.emplace(tensors[t].name, candidates[std::size_t(choice[t])]);
    return m;
}

Json toJson(const BitBudgetPlan& p) {
    Json rows = Json::array();
    for (std::size_t t = 0; t < p.tensors.size(); ++t) {
        const TensorSensitivity& s = p.tensors[t];
        const std::size_t c = std::size_t(p.choice[t]);
        const IntOptions& f = p.candidates[c];
        Json errors = Json::object();
        for (std::size_t i = 0; i < p.candidates.size(); ++i)
            if (s.available[i]) errors[formatName(p.candidates[i])] = s.error[i];
        rows.push_back({{"name", s.name},
                        {"format", formatName(f)},
                        {"bits", f.bits},
                        {"group_size", f.groupSize},
                        {"symmetric", f.symmetric},
                        {"residual", f.residual},
                        {"bits_per_weight", double(s.bits[c]) / double(s.weights)},
                        {"predicted_error", s.error[c]},
                        {"candidate_errors", errors}});
    }
    return {{"target_bits_per_weight", p.targetBitsPerWeight}, {"bits_per_weight", p.bitsPerWeight},
            {"predicted_error", p.predictedError},            {"calibration_windows", p.calibrationWindows},
            {"calibration_tokens", p.calibrationTokens},      {"seconds", p.seconds},
            {"tensors", rows}};
}

std::string formatPlanTable(const BitBudgetPlan& p) {
    std::size_t width = 6;
    for (const auto& s : p.tensors) width = std::max(width, s.name.size());
    std::ostringstream o;
    char line[512];
    std::snprintf(line, sizeof line, "%-*s  %-20s  %6s  %15s\n", int(width), "tensor", "format", "bpw", "predicted error");
    o << line;
    std::map<std::string, int> counts;
    for (std::size_t t = 0; t < p.tensors.size(); ++t) {
        const TensorSensitivity& s = p.tensors[t];
        const std::size_t c = std::size_t(p.choice[t]);
        const std::string f = formatName(p.candidates[c]);
        ++counts[f];
        std::snprintf(line, sizeof line, "%-*s  %-20s  %6.3f  %15.3e\n", int(width), s.name.c_str(), f.c_str(), double(s.bits[c]) / double(s.weights),
                      s.error[c]);
        o << line;
    }
    std::snprintf(line, sizeof line, "%zu tensors at %.3f bits per weight (target %.3f); predicted error %.4e; ", p.tensors.size(), p.bitsPerWeight,
                  p.targetBitsPerWeight, p.predictedError);
    o << line;
    bool first = true;
    for (const auto& [f, n] : counts) {
        o << (first ? "" : ", ") << n << " × " << f;
        first = false;
    }
    o << "\n";
    return o.str();
}

}  // namespace whittle
