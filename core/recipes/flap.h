#pragma once
// FLAP structured FFN pruning (An et al., "Fluctuation-based Adaptive Structured Pruning for Large Language
// Models", AAAI 2024), as the published E4B run applies it to Gemma's MLPs:
//   1. calibration text runs through the CPU reference, and each layer's down_proj input x (the gated GELU
//      output, one value per FFN channel) gets a running mean and variance per channel;
//   2. WIFV score of channel j = Var(x_j) · ‖down_proj[:, j]‖² — how much the output fluctuates with it;
//   3. scores are standardised per layer and ranked over the whole model (adaptive per-layer ratios, FLAP's
//      "AL-AM"), with a minimum share kept in every layer and kept widths rounded to a multiple (128 by
//      default, so group-128 quantization of down_proj still divides);
//   4. the removed channels' rows of gate_proj/up_proj and columns of down_proj go; with bias compensation
//      down_proj gains the bias down_proj[:, removed] · mean(x[removed]), the removed channels' average output.
// The output's config lists each layer's width (intermediate_size as a list) and a "flap" block. A model with
// the bias is Whittle-only: stock transformers and llama.cpp's gemma4 have no down_proj bias (the GGUF export
// refuses it); without compensation it exports to GGUF, which holds per-layer widths.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/engine/weight_view.h"
#include "core/io/json_file.h"
#include "core/model/checkpoint.h"
#include "core/pipeline/tensor_stream.h"
#include "core/progress.h"
#include "core/recipes/calibration_text.h"

namespace whittle {

struct Recipe;

// The recipe's "flap" section.
struct FlapRecipe {
    double ratio = 0.2;            // share of all FFN channels to remove, in (0, 0.9]
    std::string metric = "wifv";   // wifv | random (the control: the same widths, channels drawn at random)
    bool biasCompensation = true;
    double minKeep = 0.25;         // every layer keeps at least this share of its channels
    int multiple = 128;            // kept widths are multiples of this (or the layer's whole width)
    std::uint64_t seed = 0;        // metric random
    CalibrationText calibration;  // 32 windows × 512 tokens by default
    // The kept width of each layer, once a calibration has chosen them (whittle-cli plan, the Recipe page's
    // "Calibrate"): the run then keeps each layer's best-scoring channels at exactly these widths (ratio and
    // min_keep are only the label), so its sizes are known before it runs. Empty: the global ranking chooses.
    std::vector<int> widths;
};
Json toJson(const FlapRecipe& f);
FlapRecipe parseFlapRecipe(const Json& section, const std::string& source);

// Per-channel sums of one layer's down_proj input over the calibration tokens (in double).
struct ChannelStats {
    std::vector<double> sum, sumSq;
    std::int64_t count = 0;
    explicit ChannelStats(int width = 0) : sum(std::size_t(width)), sumSq(std::size_t(width)) {}
    void add(const float* x, int tokens, int width);  // x: [tokens, width]
    double mean(std::size_t j) const { return count ? sum[j] / double(count) : 0.0; }
    double variance(std::size_t j) const;             // population variance, ≥ 0
};

// WIFV scores of one layer: Var(x_j) · Σ_i down[i, j]² for every channel j (down: [H, F], any format).
std::vector<double> wifvScores(const ChannelStats& stats, const WeightView& down);

// The channels each layer keeps, ascending. Scores are standardised per layer ((s − mean) / std) and the
// lowest ratio · ΣF removed over the whole model, at most F − ⌈minKeep · F⌉ per layer; each layer's kept count
// is then rounded to the nearest allowed width (a multiple of `multiple` not below the minimum, or F) and the
// layer keeps its best-scoring channels.
std::vector<std::vector<int>> selectChannels(const std::vector<std::vector<double>>& scores, double ratio, double minKeep, int multiple);

// The best-scoring `widths[l]` channels of each layer, ascending.
std::vector<std::vector<int>> keepBestChannels(const std::vector<std::vector<double>>& scores, const std::vector<int>& widths);

// Throws UsageError naming flap.widths (and `source`) unless the recipe's widths fit `config`: one per layer,
// each the layer's whole width or a multiple of `multiple` not below min_keep's share.
void checkFlapWidths(const Gemma4Config& config, const FlapRecipe& recipe, const std::string& source);

class ReferenceModel;
// Runs the windows through the CPU reference and returns every layer's statistics.
std::vector<ChannelStats> collectFlapStatistics(const ReferenceModel& model, const std::vector<std::vector<int>>& windows,
                                                Progress& progress, const CancelToken& cancel);

struct FlapReport {
    double ratioRequested = 0, ratioRemoved = 0;  // of all FFN channels
    std::vector<int> widthsBefore, widthsAfter;
    std::uint64_t paramsBefore = 0, paramsAfter = 0;  // the whole checkpoint
    bool biasCompensation = false;
    std::string metric;
    int calibrationWindows = 0;
    std::int64_t calibrationTokens = 0;
    std::uint64_t bytesWritten = 0;
    double seconds = 0;
};
Json toJson(const FlapReport& r);

// What FLAP decides for a checkpoint (steps 1–4, its calibration run on this checkpoint): the channels each
// layer keeps, ascending, and — with compensation, or a bias the model already has — each layer's down_proj
// bias. Fills the report's ratios, widths and calibration.
struct FlapSelection {
    std::vector<std::vector<int>> kept;
    std::vector<std::vector<float>> bias;  // per layer, hidden_size values; empty without a bias
};
FlapSelection selectFlapChannels(const Checkpoint& checkpoint, const FlapRecipe& recipe, FlapReport& report, Progress& progress,
                                 const CancelToken& cancel);

// The selection applied as a stream transform of that checkpoint's stream: gate/up rows and down_proj columns
// of the kept channels, a bias after each down_proj, config.json with the widths and a "flap" block (the recipe
// and the report's ratio and calibration); every other tensor and file passed through. Fills the report's
// parameter counts.
TensorStream flapStream(TensorStream in, const FlapRecipe& recipe, const FlapSelection& selection, FlapReport& report);

// Prunes a dense (bf16/f16/f32) checkpoint's FFNs into an atomic output folder, streaming tensor by tensor;
// every tensor other than gate/up/down passes through byte for byte.
FlapReport flapPrune(const Checkpoint& checkpoint, const Recipe& recipe, const std::filesystem::path& dest, bool force, Progress& progress,
                     const CancelToken& cancel);

}  // namespace whittle
