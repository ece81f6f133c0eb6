#include "core/recipes/flap.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <numeric>
#include <random>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/io/atomic_output.h"
#include "core/model/tensor_table.h"
#include "core/recipes/recipe.h"
#include "core/recipes/recipe_json.h"
#include "core/reference/reference_model.h"
#include "core/reference/reference_session.h"
#include "core/model/checkpoint_files.h"

namespace fs = std::filesystem;

namespace whittle {

using recipe_json::onlyKeys;
using recipe_json::positiveInt;

Json toJson(const FlapRecipe& f) {
    Json j{{"ratio", f.ratio},
                {"metric", f.metric},
                {"bias_compensation", f.biasCompensation},
                {"min_keep", f.minKeep},
                {"multiple", f.multiple},
                {"seed", f.seed},
                {"calibration", toJson(f.calibration)}};
    if (!f.widths.empty()) j["widths"] = f.widths;
    return j;
}

FlapRecipe parseFlapRecipe(const Json& j, const std::string& src) {
    if (!j.is_object()) throw FormatError(src, {}, "'flap' must be an object");
    onlyKeys(j, {"ratio", "metric", "bias_compensation", "min_keep", "multiple", "seed", "calibration", "widths"}, "flap", src);
    FlapRecipe f;
    auto number = [&](const char* key, double lo, double hi, double fallback) {
        if (!j.contains(key)) return fallback;
        const Json& v = j[key];
        if (!v.is_number() || !(v.get<double>() > lo && v.get<double>() <= hi))
            throw FormatError(src, {}, "'flap." + std::string(key) + "' must be a number in (" + std::to_string(lo).substr(0, 3) + ", " +
                                           std::to_string(hi).substr(0, 3) + "]");
        return v.get<double>();
    };
    f.ratio = number("ratio", 0.0, 0.9, f.ratio);
    f.minKeep = number("min_keep", 0.0, 1.0, f.minKeep);
    if (j.contains("metric")) {
        if (!j["metric"].is_string() || (j["metric"] != "wifv" && j["metric"] != "random"))
            throw FormatError(src, {}, "'flap.metric' must be \"wifv\" or \"random\"");
        f.metric = j["metric"].get<std::string>();
    }
    if (j.contains("bias_compensation")) {
        if (!j["bias_compensation"].is_boolean()) throw FormatError(src, {}, "'flap.bias_compensation' must be true or false");
        f.biasCompensation = j["bias_compensation"].get<bool>();
    }
    if (j.contains("multiple")) f.multiple = positiveInt(j["multiple"], "flap.multiple", src);
    if (j.contains("seed")) {
        if (!j["seed"].is_number_unsigned()) throw FormatError(src, {}, "'flap.seed' must be a non-negative integer");
        f.seed = j["seed"].get<std::uint64_t>();
    }
    if (j.contains("calibration")) parseCalibrationText(j["calibration"], "flap.calibration", src, f.calibration);
    if (j.contains("widths")) {
        if (!j["widths"].is_array() || j["widths"].empty()) throw FormatError(src, {}, "'flap.widths' must list one kept width per layer");
        for (const Json& w : j["widths"]) f.widths.push_back(positiveInt(w, "flap.widths", src));
    }
    return f;
}

namespace {

// The fewest channels a layer of F keeps under min_keep.
int minKeptWidth(int F, double minKeep) { return std::min(F, int(std::ceil(minKeep * F - 1e-9))); }

// A width FLAP may keep: the whole layer, or a multiple of `multiple` not below min_keep's share.
bool allowedWidth(int w, int F, double minKeep, int multiple) { return w == F || (w > 0 && w < F && w % multiple == 0 && w >= minKeptWidth(F, minKeep)); }

}  // namespace

void checkFlapWidths(const Gemma4Config& c, const FlapRecipe& f, const std::string& src) {
    if (f.widths.empty()) return;
    if (f.widths.size() != c.layers.size())
        throw UsageError(src, {}, "flap.widths lists " + std::to_string(f.widths.size()) + " widths for a model of " + std::to_string(c.layers.size()) +
                                      " layers (it was planned for another model?)");
    for (const LayerSpec& l : c.layers) {
        const int w = f.widths[std::size_t(l.index)], F = l.ffnWidth;
        if (!allowedWidth(w, F, f.minKeep, f.multiple))
            throw UsageError(src, {}, "flap.widths: layer " + std::to_string(l.index) + " keeps " + std::to_string(w) + " of its " + std::to_string(F) +
                                          " channels; a kept width is the whole layer or a multiple of " + std::to_string(f.multiple) +
                                          " from " + std::to_string(minKeptWidth(F, f.minKeep)) + " (min_keep) up");
    }
}

std::vector<std::vector<int>> keepBestChannels(const std::vector<std::vector<double>>& scores, const std::vector<int>& widths) {
    if (widths.size() != scores.size()) throw Error("internal: FLAP widths for another number of layers");
    std::vector<std::vector<int>> kept(scores.size());
    for (std::size_t l = 0; l < scores.size(); ++l) {
        const int F = int(scores[l].size());
        if (widths[l] < 1 || widths[l] > F) throw Error("internal: a FLAP width outside its layer");
        std::vector<int> order(static_cast<std::size_t>(F));
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return scores[l][std::size_t(a)] > scores[l][std::size_t(b)]; });
        kept[l].assign(order.begin(), order.begin() + widths[l]);
        std::sort(kept[l].begin(), kept[l].end());
    }
    return kept;
}

void ChannelStats::add(const float* x, int tokens, int width) {
    if (std::size_t(width) != sum.size()) throw Error("internal: FLAP statistics of the wrong width");
    for (int t = 0; t < tokens; ++t) {
        const float* row = x + std::size_t(t) * std::size_t(width);
        for (std::size_t j = 0; j < sum.size(); ++j) {
            const double v = row[j];
            sum[j] += v;
            sumSq[j] += v * v;
        }
    }
    count += tokens;
}

double ChannelStats::variance(std::size_t j) const {
    if (count == 0) return 0.0;
    const double m = mean(j);
    return std::max(0.0, sumSq[j] / double(count) - m * m);
}

std::vector<double> wifvScores(const ChannelStats& stats, const WeightView& down) {
    const std::size_t F = stats.sum.size();
    if (std::size_t(down.cols) != F) throw Error({}, down.name, "internal: down_proj's columns differ from the statistics' channels");
    std::vector<double> colNorm(F, 0.0);
    std::vector<float> row(F);
    for (std::int64_t i = 0; i < down.rows; ++i) {
        down.row(i, row.data());
        for (std::size_t j = 0; j < F; ++j) colNorm[j] += double(row[j]) * double(row[j]);
    }
    std::vector<double> s(F);
    for (std::size_t j = 0; j < F; ++j) s[j] = stats.variance(j) * colNorm[j];
    return s;
}

std::vector<std::vector<int>> selectChannels(const std::vector<std::vector<double>>& scores, double ratio, double minKeep, int multiple) {
    if (!(ratio > 0 && ratio < 1)) throw UsageError("the FLAP ratio must be in (0, 1)");
    if (multiple < 1) throw UsageError("the FLAP width multiple must be positive");
    struct Entry {
        double z;
        int layer, channel;
    };
    std::vector<Entry> all;
    std::vector<int> maxRemove(scores.size()), floorKeep(scores.size());
    std::int64_t total = 0;
    for (std::size_t l = 0; l < scores.size(); ++l) {
        const auto& s = scores[l];
        const int F = int(s.size());
        total += F;
        floorKeep[l] = minKeptWidth(F, minKeep);
        maxRemove[l] = F - floorKeep[l];
        double mean = 0, var = 0;
        for (double v : s) mean += v;
        mean /= std::max(1, F);
        for (double v : s) var += (v - mean) * (v - mean);
        const double sd = std::sqrt(var / std::max(1, F));
        for (int j = 0; j < F; ++j) all.push_back({sd > 0 ? (s[std::size_t(j)] - mean) / sd : 0.0, int(l), j});
    }
    std::stable_sort(all.begin(), all.end(), [](const Entry& a, const Entry& b) { return a.z < b.z; });
    const std::int64_t target = std::llround(ratio * double(total));
    std::vector<int> removed(scores.size(), 0);
    std::int64_t done = 0;
    for (const Entry& e : all) {
        if (done >= target) break;
        if (removed[std::size_t(e.layer)] < maxRemove[std::size_t(e.layer)]) {
            ++removed[std::size_t(e.layer)];
            ++done;
        }
    }
    std::vector<int> widths(scores.size());
    for (std::size_t l = 0; l < scores.size(); ++l) {
        const int F = int(scores[l].size());
        const int want = F - removed[l];
        // The allowed width nearest the ranking's (the larger on a tie): a multiple not below the floor, or F.
        int keep = F;
        for (int k = multiple; k < F; k += multiple)
            if (allowedWidth(k, F, minKeep, multiple) && std::abs(k - want) < std::abs(keep - want)) keep = k;
        widths[l] = keep;
    }
    return keepBestChannels(scores, widths);
}

std::vector<ChannelStats> collectFlapStatistics(const ReferenceModel& model, const std::vector<std::vector<int>>& windows, Progress& progress,
                                                const CancelToken& cancel) {
    if (windows.empty()) throw UsageError("FLAP needs at least one calibration window");
    std::vector<ChannelStats> stats;
    for (const LayerSpec& l : model.config().layers) stats.emplace_back(l.ffnWidth);
    std::size_t maxLen = 0;
    std::uint64_t tokens = 0;
    for (const auto& w : windows) {
        maxLen = std::max(maxLen, w.size());
        tokens += w.size();
    }
    ReferenceSession session(model, int(maxLen), 64);
    LinearTap tap;
    tap.layer = LinearTap::kEveryLayer;
    tap.sites = {LinearSite::MlpDown};
    tap.observeLayer = [&](int layer, LinearSite, const float* x, int T, int width) { stats[std::size_t(layer)].add(x, T, width); };
    session.setLinearTap(tap);
    StageMeter meter(progress, "FLAP statistics", tokens);
    for (const auto& w : windows) {
        cancel.throwIfCancelled();
        session.reset();
        session.forward(w);
        meter.advance(w.size());
    }
    meter.finish();
    return stats;
}

Json toJson(const FlapReport& r) {
    return Json{{"ratio_requested", r.ratioRequested},
                {"ratio_removed", r.ratioRemoved},
                {"widths_before", r.widthsBefore},
                {"widths_after", r.widthsAfter},
                {"params_before", r.paramsBefore},
                {"params_after", r.paramsAfter},
                {"bias_compensation", r.biasCompensation},
                {"metric", r.metric},
                {"calibration_windows", r.calibrationWindows},
                {"calibration_tokens", r.calibrationTokens},
                {"bytes_written", r.bytesWritten},
                {"seconds", r.seconds}};
}

FlapSelection selectFlapChannels(const Checkpoint& ck, const FlapRecipe& f, FlapReport& rep, Progress& progress, const CancelToken& cancel) {
    const Gemma4Config& c = ck.config();
    const fs::path src = ck.dir();
    rep.ratioRequested = f.ratio;
    rep.metric = f.metric;
    rep.biasCompensation = f.biasCompensation;
    checkFlapWidths(c, f, src.string());  // before the calibration run

    // The MLP weights must be plain tensors: FLAP runs before quantization.
    const ReferenceModel model(ck, {});
    for (const LayerSpec& l : c.layers)
        for (TensorRole r : {TensorRole::GateProj, TensorRole::UpProj, TensorRole::DownProj})
            if (model.linearWeight(r, l.index).format != WeightFormat::Dense)
                throw UsageError(src.string(), tensorName(c, r, l.index),
                                 "is not stored as a plain tensor (quantized?): FLAP prunes the original model, before quantization");

    // 1. Statistics of every layer's down_proj input on the calibration text.
    const auto windows = calibrationTextWindows(ck, f.calibration, "flap.calibration");
    rep.calibrationWindows = int(windows.size());
    for (const auto& w : windows) rep.calibrationTokens += std::int64_t(w.size());
    const std::vector<ChannelStats> stats = collectFlapStatistics(model, windows, progress, cancel);

    // 2–3. Scores and the channels each layer keeps.
    std::vector<std::vector<double>> scores;
    std::mt19937_64 rng(f.seed);
    for (const LayerSpec& l : c.layers) {
        if (f.metric == "random") {
            std::uniform_real_distribution<double> u(0.0, 1.0);
            std::vector<double> s(std::size_t(l.ffnWidth));
            for (double& v : s) v = u(rng);
            scores.push_back(std::move(s));
        } else {
            scores.push_back(wifvScores(stats[std::size_t(l.index)], model.layers()[std::size_t(l.index)].down));
        }
    }
    FlapSelection sel;
    sel.kept = f.widths.empty() ? selectChannels(scores, f.ratio, f.minKeep, f.multiple) : keepBestChannels(scores, f.widths);
    std::int64_t before = 0, after = 0;
    for (const LayerSpec& l : c.layers) {
        rep.widthsBefore.push_back(l.ffnWidth);
        rep.widthsAfter.push_back(int(sel.kept[std::size_t(l.index)].size()));
        before += l.ffnWidth;
        after += std::int64_t(sel.kept[std::size_t(l.index)].size());
    }
    rep.ratioRemoved = 1.0 - double(after) / double(before);

    // 4. Bias compensation: the removed channels' mean inputs through their down_proj columns, in double
    //    (added to a bias the model already has).
    const std::size_t H = std::size_t(c.hiddenSize);
    const bool withBias = f.biasCompensation || c.downProjBias;
    if (withBias) {
        sel.bias.resize(c.layers.size());
        for (const LayerSpec& l : c.layers) {
            const auto& L = model.layers()[std::size_t(l.index)];
            const std::size_t F = std::size_t(l.ffnWidth);
            std::vector<bool> keep(F, false);
            for (int j : sel.kept[std::size_t(l.index)]) keep[std::size_t(j)] = true;
            std::vector<float> row(F);
            auto& b = sel.bias[std::size_t(l.index)];
            b.assign(H, 0.0f);
            for (std::size_t i = 0; i < H; ++i) {
                double acc = L.downBias.empty() ? 0.0 : double(L.downBias[i]);
                if (f.biasCompensation) {
                    L.down.row(std::int64_t(i), row.data());
                    for (std::size_t j = 0; j < F; ++j)
                        if (!keep[j]) acc += double(row[j]) * stats[std::size_t(l.index)].mean(j);
                }
                b[i] = float(acc);
            }
        }
    }

    return sel;
}

namespace {
// How an output tensor of the FLAP transform is made from its upstream.
struct FlapSource {
    enum Kind { Pass, Rows, Columns, Bias } kind = Pass;
    std::size_t upstream = 0;
    int layer = -1;
    std::uint64_t upstreamRowBytes = 0;  // Rows, Columns
    std::uint64_t elem = 0;              // Columns
};
}  // namespace

TensorStream flapStream(TensorStream in, const FlapRecipe& recipe, const FlapSelection& selection, FlapReport& rep) {
    const Gemma4Config& c = in.config;
    if (selection.kept.size() != c.layers.size())
        throw UsageError(in.origin.string(), {}, "FLAP's selection has " + std::to_string(selection.kept.size()) + " layers but the model " +
                                                     std::to_string(c.layers.size()));
    const bool withBias = !selection.bias.empty();
    TensorStream out;
    out.origin = in.origin;
    out.special = in.special;
    for (const SideFile& f : in.files) {
        out.files.push_back(f);
        if (f.name != files::kConfig) continue;
        // config.json: each layer's width, and what FLAP did.
        Json j = f.json();
        Json& t = j.contains("text_config") ? j["text_config"] : j;
        std::vector<int> widths;
        for (const auto& k : selection.kept) widths.push_back(int(k.size()));
        t["intermediate_size"] = widths;
        t["use_double_wide_mlp"] = false;  // the list holds every layer's actual width
        Json block = toJson(recipe);
        block["bias_compensation"] = withBias;
        block["ratio_removed"] = rep.ratioRemoved;
        block["calibration_windows"] = rep.calibrationWindows;
        block["calibration_tokens"] = rep.calibrationTokens;
        block["whittle_only"] = withBias;
        if (withBias)
            block["note"] = "down_proj has a bias (FLAP's compensation), which stock transformers and llama.cpp's gemma4 do not load: "
                            "this checkpoint runs in Whittle";
        t["flap"] = block;
        out.files.back().text = jsonFileText(j);
        out.config = Gemma4Config::parse(j, f.from.string());
    }

    // Tensors: gate/up rows and down columns of the kept channels, a bias after each down_proj, the rest as is.
    std::map<std::string, const ExpectedTensor*> byName;
    const std::vector<ExpectedTensor> table = textTensorTable(c);
    for (const ExpectedTensor& e : table) byName[e.name] = &e;
    std::vector<FlapSource> sources;
    for (std::size_t i = 0; i < in.tensors.size(); ++i) {
        TensorSpec s = in.tensors[i];
        rep.paramsBefore += s.numel();
        FlapSource src{FlapSource::Pass, i, -1, 0, 0};
        const auto it = byName.find(s.name);
        if (it != byName.end()) {
            const ExpectedTensor& e = *it->second;
            if (e.role == TensorRole::DownProjBias) continue;  // rewritten below
            if (e.role == TensorRole::GateProj || e.role == TensorRole::UpProj || e.role == TensorRole::DownProj) {
                const std::int64_t keep = std::int64_t(selection.kept[std::size_t(e.layer)].size());
                src.layer = e.layer;
                src.upstreamRowBytes = std::uint64_t(s.shape[1]) * dtypeSize(s.dtype);
                src.elem = dtypeSize(s.dtype);
                src.kind = e.role == TensorRole::DownProj ? FlapSource::Columns : FlapSource::Rows;
                (e.role == TensorRole::DownProj ? s.shape[1] : s.shape[0]) = keep;
            }
        }
        rep.paramsAfter += s.numel();
        out.tensors.push_back(s);
        sources.push_back(src);
        if (withBias && src.kind == FlapSource::Columns) {
            TensorSpec b{tensorName(c, TensorRole::DownProjBias, src.layer), DType::F32, {std::int64_t(c.hiddenSize)}};
            rep.paramsAfter += b.numel();
            out.tensors.push_back(b);
            sources.push_back(FlapSource{FlapSource::Bias, 0, src.layer, 0, 0});
        }
    }
    auto sel = std::make_shared<const FlapSelection>(selection);
    out.read = [read = std::move(in.read), sources = std::move(sources), sel](std::size_t i, std::uint64_t offset, std::uint64_t n, char* dst) {
        const FlapSource& s = sources[i];
        switch (s.kind) {
            case FlapSource::Pass: read(s.upstream, offset, n, dst); return;
            case FlapSource::Rows: readUpstreamRows(read, s.upstream, s.upstreamRowBytes, sel->kept[std::size_t(s.layer)], offset, n, dst); return;
            case FlapSource::Bias: std::memcpy(dst, reinterpret_cast<const char*>(sel->bias[std::size_t(s.layer)].data()) + offset, n); return;
            case FlapSource::Columns: {
                // Every row of down_proj [H, F] keeps its kept columns: each row touched is read whole and gathered.
                const std::vector<int>& keep = sel->kept[std::size_t(s.layer)];
                const std::uint64_t outRow = keep.size() * s.elem;
                std::vector<char> row(s.upstreamRowBytes), gathered(outRow);
                while (n > 0) {
                    const std::uint64_t r = offset / outRow, inRow = offset % outRow;
                    read(s.upstream, r * s.upstreamRowBytes, s.upstreamRowBytes, row.data());
                    for (std::size_t k = 0; k < keep.size(); ++k)
                        std::memcpy(gathered.data() + k * s.elem, row.data() + std::size_t(keep[k]) * s.elem, std::size_t(s.elem));
                    const std::uint64_t len = std::min(n, outRow - inRow);
                    std::memcpy(dst, gathered.data() + inRow, std::size_t(len));
                    dst += len;
                    offset += len;
                    n -= len;
                }
                return;
            }
        }
    };
    return out;
}

FlapReport flapPrune(const Checkpoint& ck, const Recipe& recipe, const fs::path& dest, bool force, Progress& progress,
                     const CancelToken& cancel) {
    const auto t0 = std::chrono::steady_clock::now();
    if (!recipe.flap) throw UsageError("the recipe has no flap section");
    FlapReport rep;
    const FlapSelection sel = selectFlapChannels(ck, *recipe.flap, rep, progress, cancel);
    const TensorStream stream = flapStream(checkpointStream(ck), *recipe.flap, sel, rep);
    AtomicOutputDir out(dest, force, {ck.dir()});
    rep.bytesWritten = writeStream(stream, out.path(), progress, cancel).tensorBytes;
    rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    writeJsonFile(out.path() / files::kWhittleReport, Json{{"recipe", toJson(recipe)}, {"source", ck.dir().string()}, {"flap", toJson(rep)}});
    out.commit();
    return rep;
}

}  // namespace whittle
