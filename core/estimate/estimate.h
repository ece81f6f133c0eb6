#pragma once
// What a recipe will produce, before anything runs: the output's size on disk and what Whittle's engine will
// need to run it. Computed from the same pieces the pipeline executes — the stream transforms' tensor specs
// (text-only, vocabulary; nothing but the tokenizer is read), the quantization plan (planQuantization), the
// safetensors layout the writer uses (layoutSafetensors) — and the engine-memory estimate of that output
// (engine_memory.h). So the figures are the output's, not a rule of thumb.
//
// FLAP keeps the widths its calibration picks and the bit budget the formats its measurement picks. A recipe
// that names them (flap.widths, quantization.formats: written by whittle-cli plan or the Recipe page's
// "Calibrate", core/pipeline/calibrate.h) is estimated exactly. Before that, FLAP's estimate assumes channels
// removed in proportion to each layer's width (the global ranking with the same score spread in every layer)
// with a range for the rounding to width multiples, and the budget's is its target bits per weight applied to
// the quantized weights; both are labelled. The GGUF files a recipe exports are sized by the exporter's own
// plan and the GGUF writer's layout (ggufExportBytes). A GGUF quantization.format (whittle-cli quantize's) is
// refused as slim refuses it: a recipe's GGUF files are its "export".
#include <cstdint>
#include <optional>
#include <string>

#include <map>
#include <memory>

#include "core/estimate/engine_memory.h"
#include "core/model/checkpoint.h"
#include "core/model/inventory.h"
#include "core/pipeline/tensor_stream.h"
#include "core/recipes/quantize.h"
#include "core/recipes/recipe.h"
#include "core/recipes/vocab_prune.h"

namespace whittle {

struct OutputEstimate {
    std::uint64_t tensorBytes = 0;  // the safetensors files (headers and index included)
    std::uint64_t sideBytes = 0;    // configs, tokenizer, chat template, … (whittle.json, the run's record, not counted)
    std::map<std::string, std::uint64_t> ggufBytes;  // the recipe's "export" files: model-q4_0.gguf, … (the exporter's plan)
    std::uint64_t ggufTotal() const {
        std::uint64_t n = 0;
        for (const auto& [f, b] : ggufBytes) n += b;
        return n;
    }
    std::uint64_t diskBytes() const { return tensorBytes + sideBytes + ggufTotal(); }
    std::uint64_t parameters = 0;   // model weights (CheckpointTensor::parameters: 8 a GPTQ word, 2 an NVFP4 byte)
    std::map<Part, Totals> parts;   // tensors, parameters and tensor bytes by part (headers not included)
    EngineMemory memory;            // running the output
};

struct Estimate {
    OutputEstimate input;   // the checkpoint as it is
    OutputEstimate output;  // after the recipe
    bool exact = true;      // false before FLAP's widths or the budget's formats are planned
    std::optional<OutputEstimate> low, high;  // FLAP: the output at the rounding's extremes
    std::string note;       // what is approximate and why
};

// Throws UsageError naming the recipe field for a combination the pipeline would refuse.
Estimate estimate(const Checkpoint& checkpoint, const Recipe& recipe, const RuntimeOptions& runtime);

// The same estimates of one checkpoint, for a page that recomputes them on every change: the recipe's stages are
// kept (the text-only and vocabulary stream — the vocabulary's rewritten tokenizer is the slow part, about
// 1.5 s for a 262k vocabulary — and the planned output of FLAP and quantization on it), so a change of the
// runtime, or of a section after the vocabulary, reuses them and only the engine memory is computed afresh.
// Thread-safe: a page computes a recipe's stages on a worker thread (prepare) and asks on the GUI thread
// (cached), which answers only when nothing slow is left.
class Estimator {
public:
    explicit Estimator(std::shared_ptr<const Checkpoint> checkpoint);
    ~Estimator();
    Estimator(const Estimator&) = delete;
    Estimator& operator=(const Estimator&) = delete;

    const Checkpoint& checkpoint() const;
    // Computes what is not kept yet; throws as estimate() does.
    Estimate estimate(const Recipe& recipe, const RuntimeOptions& runtime) const;
    // The estimate when the recipe's stages are kept (only the engine memory is computed), else nothing. Throws
    // what the recipe's stages threw when they were prepared.
    std::optional<Estimate> cached(const Recipe& recipe, const RuntimeOptions& runtime) const;
    // Computes and keeps the recipe's stages (for a worker thread); an error is kept and thrown by cached().
    void prepare(const Recipe& recipe) const;
    // The recipe's output as the checkpoint of its planned tensors (none can be read): what sizes by tensor are
    // computed from. Throws as estimate() does.
    std::shared_ptr<const Checkpoint> plannedOutput(const Recipe& recipe) const;
    // What the recipe's vocabulary section keeps (the kept stage's report: the tokenizer is not read again);
    // nothing without one. Throws as estimate() does.
    std::optional<VocabPruneReport> vocabularyReport(const Recipe& recipe) const;
    // The quantization's counts on the recipe's stream (after FLAP): tensors quantized and kept, weights, bits per
    // weight (the bit budget's target before its formats are planned); its tensor list is left empty. Nothing
    // without a quantization section. Throws as estimate() does.
    std::optional<QuantizePlan> quantizationPlan(const Recipe& recipe) const;
    // The recipe's text-only and vocabulary stages as a run makes them, from the kept stage (the tokens are not
    // selected, nor the tokenizer rewritten, again): slim and calibration write from it after planning. The stream
    // reads this estimator's checkpoint, which must outlive it. Throws as estimate() does.
    struct KeptStream {
        TensorStream stream;
        std::optional<VocabPruneReport> vocabulary;  // with a vocabulary section
    };
    KeptStream keptStream(const Recipe& recipe) const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

Json toJson(const Estimate& e);

}  // namespace whittle
