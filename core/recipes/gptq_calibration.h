#pragma once
// GPTQ over a whole checkpoint: calibration text runs through the CPU reference engine, and the linears are
// quantized layer by layer in the order the decoder reads them (the PLE input projection, then each layer's
// q/k/v, o, gate/up, down, PLE gate, PLE projection). A layer's quantized weights are swapped into the
// engine before the next layer's inputs are collected, so every layer is fitted to the activations of the
// already-quantized layers before it — including the KV-shared layers, which attend over the K/V written by
// their (already-quantized) producer layers. Within a layer all sites are observed in one pass with the
// layer's original weights (GPTQModel's true_sequential=false).
//
// Cost (GptqOptions::Calibration::Layerwise, the default): each window's residual stream x [T, H] (and the
// K/V [T, nkv·hd] of the layers KV-shared layers read) is kept at the current layer boundary, so layer l costs
// one step of layer l per window to observe (original weights) and one to advance (quantized weights): 2L
// layer steps per window instead of ~L²/2. The per-layer inputs are recomputed per step from the tokens
// (one [T, P] slice of W_proj·x0, ~0.5 % of a layer step on E2B) rather than cached ([T, L·P] is 73 MB per
// 2048-token window on E2B). State per window on E2B at 2048 tokens: x 12.6 MB + the two source layers'
// K/V 12.6 MB = 25 MB; 256 windows = 6.4 GB, more than `calibrationMemory` (4 GiB), so such runs keep the
// states in a temporary file (in `scratchDir`) that each layer step reads and rewrites (~6.4 GB of I/O per
// layer, minutes in all against hours of compute). Every value equals the re-run path's (Rerun, kept for
// the equality test), so the output does not depend on the path or the memory limit.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/io/gptq_layout.h"
#include "core/model/checkpoint.h"
#include "core/progress.h"
#include "core/quant/gptq.h"
#include "core/tokenizer/tokenizer.h"

namespace whittle {

// Calibration windows: `samples` windows of `length` tokens, BOS first, cut from the END of the files'
// concatenated text (quality evaluation reads the beginning of held-out text, so the two do not overlap
// when they share a file). Fewer windows when the text is short; UsageError naming the files when not one fits.
std::vector<std::vector<int>> calibrationWindows(const Tokenizer& tok, const std::vector<std::filesystem::path>& files, int samples,
                                                 int length);

class ReferenceModel;

// The selected linears of one layer by site (the linears of a site share their input).
using SiteLinears = std::map<LinearSite, std::vector<const ExpectedTensor*>>;

// Called once per layer that has selected linears (layer −1: the PLE model projection), in decoder order,
// with the Hessian of each site's inputs observed through the layer's current weights. It may replace the
// layer's weights in `model` (GPTQ does); the windows then advance through the layer as replaced.
using LayerVisitor =
    std::function<void(ReferenceModel& model, int layer, const SiteLinears& sites, const std::map<LinearSite, Hessian>& hessians)>;

// The layer-by-layer calibration pass GPTQ and the bit budget's sensitivity share (options: the calibration
// path, memory limit, scratch folder and Hessian batch). Throws CancelledError when cancelled.
void calibrateLayers(const Checkpoint& checkpoint, const std::function<bool(const ExpectedTensor&)>& selected,
                     const std::vector<std::vector<int>>& windows, const GptqOptions& options, const CancelToken& cancel,
                     const LayerVisitor& visit);

struct GptqRun {
    std::map<std::string, GptqTensors> packed;  // by the Hugging Face weight name it replaces
    std::vector<GptqTensorStats> stats;         // in the order quantized
    int windows = 0;
    std::int64_t tokens = 0;
    double seconds = 0;
};

// Quantizes every linear `selected` accepts, with `options` or, for a tensor named in `formats`, that
// tensor's code width, group, symmetry and residual (the bit budget's plan). Throws CancelledError when cancelled.
GptqRun runGptq(const Checkpoint& checkpoint, const std::function<bool(const ExpectedTensor&)>& selected,
                const std::vector<std::vector<int>>& windows, const GptqOptions& options, Progress& progress, const CancelToken& cancel,
                const std::map<std::string, IntOptions>& formats = {});

}  // namespace whittle
