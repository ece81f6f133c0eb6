#pragma once
// Weight quantization: the recipe's "quantization" section and the streaming stage that writes it.
// NVFP4 (core/quant/nvfp4.h) is written in ModelOpt's layout (label W4A16_NVFP4, hf_quant_config.json) or
// compressed-tensors' NVFP4A16, with one second-level scale per fused group (q/k/v, gate/up).
// The mixed bit budget (bit_budget.h) picks one integer format per linear for a target bits per weight and
// quantizes each by GPTQ; it is written as GPTQ v1 with per-module overrides.
// INT4 by round-to-nearest (symmetric or asymmetric; group 32/64/128/… or per channel) or by
// GPTQ over calibration text (core/quant/gptq.h, driven by gptq_calibration.h; optional act-order with
// static groups), written as GPTQ v1 safetensors (core/io/gptq_layout.h) with the config keys transformers,
// GPTQModel and vLLM read.
// Which tensors: the linear weights of the tensor table, minus name rules (fnmatch globs) — by default the
// published recipe's: PLE projection and gates stay unquantized; embeddings, norms and the head are not linear
// weights and are never quantized here. Every other tensor passes through byte for byte.
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/io/json_file.h"
#include "core/io/safetensors_writer.h"
#include "core/model/checkpoint.h"
#include "core/progress.h"
#include "core/quant/gptq.h"
#include "core/quant/int_quant.h"
#include "core/recipes/bit_budget.h"
#include "core/recipes/calibration_text.h"

namespace whittle {

struct Recipe;

struct QuantizeRecipe {
    std::string method = "rtn";   // rtn | gptq | nvfp4 | budget
    int groupSize = 128;          // 0: per channel; always 16 for nvfp4
    bool symmetric = true;
    std::vector<std::string> exclude = defaultExclusions();  // globs over Hugging Face tensor names
    // The token tables (main embedding, PLE table, an untied head): "keep" them as they are, or store them as
    // rows of GGUF blocks, "q8_0" or "q4_0" (tensor_table.h rowBlocksName) — a gather format Whittle's engines
    // read row by row; most of E2B's bytes are there. Not with format hf, which writes plain tensors.
    std::string embeddings = "keep";
    // gguf-q8_0 | gguf-q4_0 | gguf-f16 (rtn, gptq, budget) and gguf-nvfp4 (nvfp4) are accepted in a recipe file
    // for whittle-cli quantize, which writes them through the GGUF exporter; quantizeCheckpoint refuses them.
    // gptq: GPTQ v1 safetensors; nvfp4-modelopt | nvfp4-ct for nvfp4; hf (any method): the quantized weights
    // dequantized into the input's own tensors and dtype — a plain checkpoint any tool loads, with the
    // quantization's rounding (for measuring it elsewhere), at the input's size.
    std::string format = "gptq";
    // budget only: the target bits per weight over the quantized tensors, as GPTQ v1 stores them (codes,
    // scales, zeros, g_idx, residuals); 0: the bits uniform INT4 g128 would take.
    double bpw = 0;
    std::vector<std::string> candidates;  // budget only: format ids (bit_budget.h) to choose from; empty: budgetCandidates()
    // budget only: each quantized linear's format id, once a measurement has chosen them (whittle-cli plan, the
    // Recipe page's "Calibrate"): the run quantizes with exactly these (no sensitivity measurement), so its
    // sizes are known before it runs. Empty: measured by the run.
    std::map<std::string, std::string> formats;
    // GPTQ and budget (which quantizes its formats by GPTQ).
    bool actOrder = false;  // visit inputs by decreasing activity (static groups: g_idx stays k / g)
    double damp = 0.01;     // fraction of the Hessian's mean diagonal added to it
    CalibrationText calibration{{}, 256, 2048};  // the published recipe: 256 windows × 2048 tokens

    static std::vector<std::string> defaultExclusions();
};
Json toJson(const QuantizeRecipe& q);
QuantizeRecipe parseQuantizeRecipe(const Json& section, const std::string& source);

// Whether a tensor of the table is quantized under the recipe (a read linear weight no rule excludes).
bool quantizes(const QuantizeRecipe& q, const ExpectedTensor& e);
// The read linear weights of `table` an exclusion rule keeps unquantized, in table order (the Recipe page
// shows them beside the rules).
std::vector<std::string> excludedLinears(const QuantizeRecipe& q, const std::vector<ExpectedTensor>& table);

// What a recipe will write, worked out from the checkpoint's tensor list alone (nothing is read): the
// output tensors in order, counts, bits per weight and bytes. The GUI shows it live; quantizeCheckpoint
// writes exactly it. Throws UsageError naming the tensor for a shape the format cannot hold. The budget
// method needs its per-tensor formats (BitBudgetPlan::formats()); without them it is refused.
struct QuantizePlan {
    std::vector<TensorSpec> tensors;
    int tensorsQuantized = 0, tensorsKept = 0;
    std::uint64_t weightsQuantized = 0;
    double bitsPerWeight = 0;  // over the quantized tensors
    std::uint64_t bytesBefore = 0, bytesAfter = 0;
    std::vector<std::string> excluded;  // linear weights a rule kept unquantized
    int tablesAsRows = 0;               // token tables stored as rows of blocks
    std::uint64_t tableBytesBefore = 0, tableBytesAfter = 0;
};
QuantizePlan planQuantization(const Checkpoint& checkpoint, const QuantizeRecipe& recipe,
                              const std::map<std::string, IntOptions>& formats = {});

// The budget's formats a recipe names (quantization.formats), checked against the linears it quantizes in
// `checkpoint`: one for each, none for another tensor (UsageError naming the field and the tensor).
std::map<std::string, IntOptions> recipeBudgetFormats(const Checkpoint& checkpoint, const QuantizeRecipe& recipe);
// The recipe's spelling of a budget plan's choice (for quantization.formats).
std::map<std::string, std::string> formatIds(const BitBudgetPlan& plan);

// The budget method's measurement and choice (bit_budget.h), before anything is written: calibration windows
// from the recipe, sensitivity, formats for the recipe's target. `scratchDir` takes calibration state that
// does not fit in RAM.
BitBudgetPlan planBitBudget(const Checkpoint& checkpoint, const QuantizeRecipe& recipe, const std::filesystem::path& scratchDir,
                            Progress& progress, const CancelToken& cancel);

struct QuantizeReport {
    bool dequantized = false;  // format hf: written in the input's dtype (bitsPerWeight is the quantization's)
    int tensorsQuantized = 0, tensorsKept = 0;
    std::uint64_t weightsQuantized = 0;  // parameters stored as INT4
    double bitsPerWeight = 0;            // over the quantized tensors: codes, scales, zeros and g_idx
    std::uint64_t bytesBefore = 0, bytesWritten = 0;
    std::vector<std::string> excluded;   // linear weights a rule kept unquantized
    int tablesAsRows = 0;                // token tables stored as rows of blocks (recipe.embeddings)
    std::uint64_t tableBytesBefore = 0, tableBytesAfter = 0;
    double seconds = 0;
    // GPTQ: calibration actually used, and per-tensor facts (damp used, dead inputs, GPTQ's loss estimate).
    int calibrationWindows = 0;
    std::int64_t calibrationTokens = 0;
    double gptqSeconds = 0;
    std::vector<GptqTensorStats> gptqTensors;
    std::optional<BitBudgetPlan> budget;  // the budget method's plan
};
Json toJson(const QuantizeReport& r);

// `budget`: the budget method's plan when already made (the CLI shows it first); otherwise it is made here.
QuantizeReport quantizeCheckpoint(const Checkpoint& ck, const Recipe& recipe, const std::filesystem::path& dest, bool force,
                                  Progress& progress, const CancelToken& cancel, const BitBudgetPlan* budget = nullptr);

}  // namespace whittle
