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
#include "core/io/safetensors_writer.h"
#include "core/io/side_files.h"
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
    return Json{{"ratio", f.ratio},
                {"metric", f.metric},
                {"bias_compensation", f.biasCompensation},
                {"min_keep", f.minKeep},
                {"multiple", f.multiple},
                {"seed", f.seed},
                {"calibration", toJson(f.calibration)}};
}

FlapRecipe parseFlapRecipe(const Json& j, const std::string& src) {
    if (!j.is_object()) throw FormatError(src, {}, "'flap' must be an object");
    onlyKeys(j, {"ratio", "metric", "bias_compensation", "min_keep", "multiple", "seed", "calibration"}, "flap", src);
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
    return f;
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
        floorKeep[l] = std::min(F, int(std::ceil(minKeep * F - 1e-9)));
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
    std::vector<std::vector<int>> kept(scores.size());
    for (std::size_t l = 0; l < scores.size(); ++l) {
        const int F = int(scores[l].size());
        const int want = F - removed[l];
        // The allowed width nearest the ranking's (the larger on a tie): a multiple not below the floor, or F.
        int keep = F;
        for (int k = multiple; k < F; k += multiple)
            if (k >= floorKeep[l] && std::abs(k - want) < std::abs(keep - want)) keep = k;
        std::vector<int> order(static_cast<std::size_t>(F));
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return scores[l][std::size_t(a)] > scores[l][std::size_t(b)]; });
        kept[l].assign(order.begin(), order.begin() + keep);
        std::sort(kept[l].begin(), kept[l].end());
    }
    return kept;
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

namespace {

// Reads rows [first, first + n) of a 2-D tensor's bytes.
void readRows(const CheckpointTensor& t, std::uint64_t rowBytes, std::int64_t first, std::int64_t n, std::vector<char>& buf) {
    const std::uint64_t bytes = std::uint64_t(n) * rowBytes;
    if (buf.size() < bytes) buf.resize(bytes);
    t.entry->file->read(*t.entry->info, buf.data(), std::uint64_t(first) * rowBytes, bytes);
}

}  // namespace

FlapReport flapPrune(const Checkpoint& ck, const Recipe& recipe, const fs::path& dest, bool force, Progress& progress,
                     const CancelToken& cancel) {
    const auto t0 = std::chrono::steady_clock::now();
    if (!recipe.flap) throw UsageError("the recipe has no flap section");
    const FlapRecipe& f = *recipe.flap;
    const Gemma4Config& c = ck.config();
    const fs::path src = ck.dir();
    const std::string cfgFile = (src / files::kConfig).string();
    FlapReport rep;
    rep.ratioRequested = f.ratio;
    rep.metric = f.metric;
    rep.biasCompensation = f.biasCompensation;

    // The MLP weights must be plain tensors: FLAP runs before quantization.
    const ReferenceModel model(ck, {});
    for (const LayerSpec& l : c.layers)
        for (TensorRole r : {TensorRole::GateProj, TensorRole::UpProj, TensorRole::DownProj})
            if (model.linearWeight(r, l.index).format != WeightFormat::Dense)
                throw UsageError(src.string(), tensorName(c, r, l.index),
                                 "is not stored as a plain tensor (quantized?): FLAP prunes the original model, before quantization");

    // 1. Statistics of every layer's down_proj input on the calibration text.
    const auto windows = calibrationTextWindows(ck, f.calibration, "FLAP");
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
    const std::vector<std::vector<int>> kept = selectChannels(scores, f.ratio, f.minKeep, f.multiple);
    std::int64_t before = 0, after = 0;
    for (const LayerSpec& l : c.layers) {
        rep.widthsBefore.push_back(l.ffnWidth);
        rep.widthsAfter.push_back(int(kept[std::size_t(l.index)].size()));
        before += l.ffnWidth;
        after += std::int64_t(kept[std::size_t(l.index)].size());
    }
    rep.ratioRemoved = 1.0 - double(after) / double(before);

    // 4. Bias compensation: the removed channels' mean inputs through their down_proj columns, in double
    //    (added to a bias the model already has).
    const std::size_t H = std::size_t(c.hiddenSize);
    const bool withBias = f.biasCompensation || c.downProjBias;
    std::vector<std::vector<float>> bias(c.layers.size());
    if (withBias) {
        for (const LayerSpec& l : c.layers) {
            const auto& L = model.layers()[std::size_t(l.index)];
            const std::size_t F = std::size_t(l.ffnWidth);
            std::vector<bool> keep(F, false);
            for (int j : kept[std::size_t(l.index)]) keep[std::size_t(j)] = true;
            std::vector<float> row(F);
            auto& b = bias[std::size_t(l.index)];
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

    AtomicOutputDir out(dest, force, {src});
    // config.json: each layer's width, and what FLAP did.
    copySideFiles(src, out.path(), [&](const std::string& name, const fs::path& file) {
        if (name != files::kConfig) return false;
        Json j = readJsonFile(file);
        Json& t = j.contains("text_config") ? j["text_config"] : j;
        t["intermediate_size"] = rep.widthsAfter;
        t["use_double_wide_mlp"] = false;  // the list holds every layer's actual width
        Json block = toJson(f);
        block["bias_compensation"] = withBias;
        block["ratio_removed"] = rep.ratioRemoved;
        block["calibration_windows"] = rep.calibrationWindows;
        block["calibration_tokens"] = rep.calibrationTokens;
        block["whittle_only"] = withBias;
        if (withBias)
            block["note"] = "down_proj has a bias (FLAP's compensation), which stock transformers and llama.cpp's gemma4 do not load: "
                            "this checkpoint runs in Whittle";
        t["flap"] = block;
        writeJsonFile(out.path() / name, j);
        return true;
    });

    // Tensors: gate/up rows and down columns of the kept channels, a bias after each down_proj, the rest as is.
    std::map<std::string, const ExpectedTensor*> byName;
    for (const ExpectedTensor& e : ck.table()) byName[e.name] = &e;
    std::vector<TensorSpec> plan;
    std::uint64_t total = 0;
    std::map<std::string, std::pair<TensorRole, int>> roles;
    for (const CheckpointTensor& t : ck.tensors()) {
        const std::string& name = t.entry->info->name;
        TensorSpec s{name, t.entry->info->dtype, t.entry->info->shape};
        rep.paramsBefore += s.numel();
        const auto it = byName.find(name);
        if (it != byName.end()) {
            const ExpectedTensor& e = *it->second;
            roles[name] = {e.role, e.layer};
            if (e.role == TensorRole::DownProjBias) continue;  // rewritten below
            const std::int64_t keep = std::int64_t(e.layer >= 0 ? kept[std::size_t(e.layer)].size() : 0);
            if (e.role == TensorRole::GateProj || e.role == TensorRole::UpProj) s.shape[0] = keep;
            if (e.role == TensorRole::DownProj) s.shape[1] = keep;
        }
        rep.paramsAfter += s.numel();
        total += s.nbytes();
        plan.push_back(s);
        if (withBias && it != byName.end() && it->second->role == TensorRole::DownProj) {
            TensorSpec b{tensorName(c, TensorRole::DownProjBias, it->second->layer), DType::F32, {std::int64_t(H)}};
            rep.paramsAfter += b.numel();
            total += b.nbytes();
            plan.push_back(b);
        }
    }
    SafetensorsWriter writer(out.path(), plan);
    StageMeter meter(progress, "writing tensors", total);
    std::vector<char> buf(4u << 20), row;
    for (const CheckpointTensor& t : ck.tensors()) {
        const TensorInfo& info = *t.entry->info;
        const auto r = roles.find(info.name);
        if (r == roles.end() || (r->second.first != TensorRole::GateProj && r->second.first != TensorRole::UpProj &&
                                 r->second.first != TensorRole::DownProj && r->second.first != TensorRole::DownProjBias)) {
            copyTensorBytes(*t.entry->file, info, writer, buf, meter, cancel);
            continue;
        }
        const auto [role, layer] = r->second;
        if (role == TensorRole::DownProjBias) continue;
        const std::vector<int>& keep = kept[std::size_t(layer)];
        const std::uint64_t elem = dtypeSize(info.dtype);
        const std::int64_t rows = info.shape[0], cols = info.shape[1];
        const std::uint64_t rowBytes = std::uint64_t(cols) * elem;
        if (role == TensorRole::DownProj) {
            // Every row of [H, F]: its kept columns.
            row.resize(std::size_t(keep.size() * elem));
            for (std::int64_t i = 0; i < rows; ++i) {
                cancel.throwIfCancelled();
                readRows(t, rowBytes, i, 1, buf);
                for (std::size_t k = 0; k < keep.size(); ++k)
                    std::memcpy(row.data() + k * elem, buf.data() + std::size_t(keep[k]) * elem, elem);
                writer.write(info.name, row.data(), row.size());
                meter.advance(row.size());
            }
            if (withBias) {
                const auto& b = bias[std::size_t(layer)];
                writer.write(tensorName(c, TensorRole::DownProjBias, layer), b.data(), b.size() * 4);
                meter.advance(b.size() * 4);
            }
        } else {
            // gate/up [F, H]: the kept rows, consecutive ones read together.
            for (std::size_t i = 0; i < keep.size();) {
                cancel.throwIfCancelled();
                std::size_t j = i + 1;
                while (j < keep.size() && keep[j] == keep[j - 1] + 1 && (j - i + 1) * rowBytes <= (4u << 20)) ++j;
                readRows(t, rowBytes, keep[i], std::int64_t(j - i), buf);
                writer.write(info.name, buf.data(), (j - i) * rowBytes);
                meter.advance((j - i) * rowBytes);
                i = j;
            }
        }
    }
    writer.finish();
    meter.finish();
    rep.bytesWritten = writer.totalBytes();
    rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    writeJsonFile(out.path() / files::kWhittleReport, Json{{"recipe", toJson(recipe)}, {"source", src.string()}, {"flap", toJson(rep)}});
    out.commit();
    return rep;
}

}  // namespace whittle
