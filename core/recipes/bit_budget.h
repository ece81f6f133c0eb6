#pragma once
// The mixed bit budget: each linear gets its own integer format, chosen so that the predicted loss is
// smallest for a target number of stored bits per weight.
//   1. Sensitivity. The calibration text runs through the CPU reference once (calibrateLayers, original
//      weights); for each linear, with H = 2/n Σ x xᵀ of its inputs, every candidate format's round-to-nearest
//      error is measured on the layer's output:
//        error(f) = tr(ΔW H ΔWᵀ) / tr(W H Wᵀ),   ΔW = W − RTN_f(W),
//      the squared output error relative to the output's own energy, so tensors of different scales compare.
//      Size(f) is the bits GPTQ v1 stores for the tensor in f (codes, scales, zeros, g_idx, residual).
//   2. Choice (chooseFormats, pure). Minimise Σ error subject to Σ size ≤ target·weights: a Lagrangian sweep
//      (each tensor takes argmin error + λ·size; the smallest λ whose total fits, found by bisection), then
//      greedy upgrades by best error saved per bit while the remaining bits allow.
//   3. The chosen formats are quantized by GPTQ (runGptq's per-tensor formats) and written as GPTQ v1 with
//      per-module overrides (GPTQModel's "dynamic"); residual tensors add Whittle's qresidual/residual_scales.
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/io/json_file.h"
#include "core/model/checkpoint.h"
#include "core/progress.h"
#include "core/quant/gptq.h"
#include "core/quant/int_quant.h"

namespace whittle {

// The candidate formats, in increasing size for a typical shape: INT2 g64 (2.3 bits per weight), INT3 g128
// (3.2), INT2 g64 + binary residual (3.5), INT4 g128 (4.2), INT4 g64 (4.3), INT8 g128 (8.2). Four and eight bits are symmetric (the uniform recipe's
// convention, which vLLM's Marlin kernels require); two and three bits are asymmetric (with so few codes a
// symmetric grid wastes one of them).
std::vector<IntOptions> budgetCandidates();
std::string formatName(const IntOptions& f);  // "INT4 g128", "INT2 g64 asym + residual", "INT3 g128 asym"…
// The recipe's spelling: "int4-g128", "int2-g64-asym-res", "int8-perchannel"…; parseFormatId throws UsageError
// naming the id for anything else (bits 2, 3, 4 or 8, as GPTQ v1 stores them).
std::string formatId(const IntOptions& f);
IntOptions parseFormatId(const std::string& id);

// Bits GPTQ v1 stores for a [N, K] linear in format f: qweight, qzeros, scales, g_idx and the residual.
std::uint64_t gptqStoredBits(const IntOptions& f, std::int64_t outFeatures, std::int64_t inFeatures);

struct TensorSensitivity {
    std::string name;
    std::uint64_t weights = 0;
    // Per candidate (budgetCandidates order): measured relative output error and stored bits; a format the
    // shape cannot take (gptqShapeProblem) is marked unavailable.
    std::vector<double> error;
    std::vector<std::uint64_t> bits;
    std::vector<bool> available;
};

// Measures every selected linear's sensitivity on the calibration windows. `options` carries the
// calibration path and limits. Throws CancelledError when cancelled.
std::vector<TensorSensitivity> measureSensitivity(const Checkpoint& checkpoint, const std::function<bool(const ExpectedTensor&)>& selected,
                                                  const std::vector<std::vector<int>>& windows, const std::vector<IntOptions>& candidates,
                                                  const GptqOptions& options, Progress& progress, const CancelToken& cancel);

// Index of the chosen candidate per tensor minimising Σ error with Σ bits ≤ budgetBits. Throws UsageError
// stating the smallest possible bits per weight when even the smallest formats exceed the budget.
std::vector<int> chooseFormats(const std::vector<TensorSensitivity>& tensors, std::uint64_t budgetBits);

struct BitBudgetPlan {
    std::vector<IntOptions> candidates;
    std::vector<TensorSensitivity> tensors;
    std::vector<int> choice;  // per tensor, into candidates
    double targetBitsPerWeight = 0;
    double bitsPerWeight = 0;   // achieved, over the quantized tensors
    double predictedError = 0;  // Σ error of the choice
    int calibrationWindows = 0;
    std::int64_t calibrationTokens = 0;
    double seconds = 0;
    // The per-tensor formats, by weight name, for runGptq and planQuantization.
    std::map<std::string, IntOptions> formats() const;
};
Json toJson(const BitBudgetPlan& p);
// The table shown before anything is written: tensor, format, bits per weight, predicted error.
std::string formatPlanTable(const BitBudgetPlan& p);

}  // namespace whittle
