#include "core/pipeline/plan.h"

#include <cmath>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/estimate/estimate.h"
#include "core/export/gguf_export.h"
#include "core/model/checkpoint_files.h"
#include "core/model/inventory.h"
#include "core/recipes/calibration_text.h"
#include "core/recipes/recipe.h"
#include "core/recipes/text_only.h"
#include "core/recipes/vocab_prune.h"

namespace fs = std::filesystem;

namespace whittle {

Json toJson(const SlimPlan& p) {
    Json stages = Json::array();
    for (const auto& s : p.stages)
        stages.push_back({{"stage", s.name}, {"summary", s.summary}, {"bytes_read", s.bytesRead}, {"bytes_written", s.bytesWritten},
                          {"forward_tokens", s.forwardTokens}});
    return Json{{"stages", stages}, {"input_bytes", p.inputBytes}, {"output_bytes_estimate", p.outputBytes}};
}

std::string formatPlan(const SlimPlan& p) {
    std::ostringstream o;
    for (std::size_t i = 0; i < p.stages.size(); ++i) {
        const PlannedStage& s = p.stages[i];
        o << i + 1 << "/" << p.stages.size() << " " << s.name << ": " << s.summary;
        if (s.bytesRead) o << " — reads " << formatBytes(s.bytesRead) << ", writes " << formatBytes(s.bytesWritten);
        if (s.forwardTokens) o << ", " << s.forwardTokens << " tokens through the model";
        o << "\n";
    }
    o << "safetensors " << formatBytes(p.inputBytes) << " -> about " << formatBytes(p.outputBytes) << "\n";
    return o.str();
}

SlimPlan planSlim(const Checkpoint& ck, const Recipe& r) {
    // The caller's checkpoint, not owned: the estimator lives only for this call.
    const Estimator estimator(std::shared_ptr<const Checkpoint>(&ck, [](const Checkpoint*) {}));
    return planSlim(estimator, r);
}

SlimPlan planSlim(const Estimator& estimator, const Recipe& r) {
    const Checkpoint& ck = estimator.checkpoint();
    SlimPlan plan;
    if (!r.textOnly && !r.vocabulary && !r.flap && !r.quantization)
        throw UsageError("the recipe has nothing to do: give text_only, vocabulary, flap or quantization");
    if (r.quantization && r.quantization->format.rfind("gguf-", 0) == 0)
        throw UsageError("quantization.format " + r.quantization->format + ": give GGUF formats in \"export\" (slim --export " +
                         r.quantization->format + ")");
    const Inventory inv = makeInventory(ck);
    // The safetensors bytes each stage leaves: the estimator's output of the recipe up to that stage (its
    // stages are kept, so the text-only + vocabulary stream is made once). Errors name the stage.
    Recipe sofar;
    std::uint64_t last = estimator.estimate(sofar, RuntimeOptions{}).input.tensorBytes;
    plan.inputBytes = last;
    auto stageBytes = [&](PlannedStage& s, const char* stage) {
        s.bytesRead = last;
        try {
            last = estimator.estimate(sofar, RuntimeOptions{}).output.tensorBytes;
        } catch (const UsageError& e) {
            throw UsageError(e.file(), e.tensor(), std::string(stage) + ": " + e.reason());
        }
        s.bytesWritten = last;
    };

    if (r.textOnly) {
        const std::string cfg = (ck.dir() / files::kConfig).string();
        try {
            (void)textOnlyConfig(readJsonFile(cfg), cfg);
        } catch (const UsageError& e) {
            throw UsageError(e.file(), {}, "text_only: " + e.reason());
        }
        PlannedStage s{"text_only", "drop the vision and audio towers (" + formatParams(inv.byPart.at(Part::VisionTower).params +
                                                                                       inv.byPart.at(Part::AudioTower).params) +
                                        " parameters)"};
        sofar.textOnly = true;
        stageBytes(s, "text_only");
        plan.stages.push_back(s);
    }
    if (r.vocabulary) {
        PlannedStage s{"vocabulary", {}};
        sofar.vocabulary = r.vocabulary;
        stageBytes(s, "vocabulary");  // the estimator's stream stage selects the tokens (a selection that keeps none is refused there)
        const VocabPruneReport v = *estimator.vocabularyReport(sofar);
        s.summary = "keep " + std::to_string(v.tokensKept) + " of " + std::to_string(v.tokensBefore) + " token rows (" +
                    std::to_string(v.tokensAfterPadding) + " with padding)";
        plan.stages.push_back(s);
    }
    if (r.flap) {
        (void)textFilesOrHeldout(ck.dir(), r.flap->calibration.files, "flap.calibration");
        if (r.quantization && (r.quantization->method == "rtn" || r.quantization->method == "gptq") && r.quantization->groupSize > 0 &&
            r.flap->multiple % r.quantization->groupSize != 0)
            throw UsageError("quantization.group_size " + std::to_string(r.quantization->groupSize) + " does not divide flap.multiple " +
                             std::to_string(r.flap->multiple) + ": FLAP's kept widths would end in a partial group");
        if (r.quantization && r.quantization->method == "nvfp4" && r.flap->multiple % 16 != 0)
            throw UsageError("flap.multiple " + std::to_string(r.flap->multiple) + ": NVFP4 needs FFN widths in multiples of 16");
        std::ostringstream what;
        what << "remove about " << std::lround(100 * r.flap->ratio) << " % of the FFN channels ("
             << (r.flap->biasCompensation ? "with bias compensation: a Whittle-only model" : "without compensation") << ")";
        PlannedStage s{"flap", what.str()};
        s.forwardTokens = std::int64_t(r.flap->calibration.samples) * r.flap->calibration.length;
        sofar.flap = r.flap;
        stageBytes(s, "flap");  // before calibration: channels removed in proportion to each layer's width
        plan.stages.push_back(s);
    }
    if (r.quantization) {
        const QuantizeRecipe& q = *r.quantization;
        if (q.method == "gptq" || q.method == "budget") (void)textFilesOrHeldout(ck.dir(), q.calibration.files, "quantization.calibration");
        PlannedStage s{"quantization", {}};
        s.forwardTokens = q.method == "gptq" || q.method == "budget" ? std::int64_t(q.calibration.samples) * q.calibration.length : 0;
        sofar.quantization = r.quantization;
        stageBytes(s, "quantization");  // the bit budget at its target bits per weight until its formats are planned
        // The counts of the stream this stage quantizes (FLAP's widths included), from the estimator's plan.
        const QuantizePlan qp = *estimator.quantizationPlan(sofar);
        std::ostringstream what;
        what << (q.method == "nvfp4"    ? std::string("NVFP4")
                 : q.method == "budget" ? std::string(q.formats.empty() ? "mixed bit budget (at its target until measured)" : "mixed bit budget (formats planned)")
                                        : "INT4 " + q.method + " g" + std::to_string(q.groupSize))
             << ": " << qp.tensorsQuantized << " linear weights at " << std::fixed;
        what.precision(2);
        what << qp.bitsPerWeight << " bits per weight";
        s.summary = what.str();
        plan.stages.push_back(s);
    }
    if (r.exports) {
        // llama.cpp's gemma4 has no down_proj bias, and a norm follows the FFN output, so the bias cannot be folded.
        for (const std::string& f : r.exports->formats) {
            if (r.flap && r.flap->biasCompensation)
                throw UsageError("export.formats " + f + ": flap.bias_compensation makes a Whittle-only model (a down_proj bias llama.cpp's "
                                 "gemma4 does not have); set \"bias_compensation\": false to export it");
            if (ck.config().downProjBias)
                throw UsageError(ck.dir().string(), {}, "export.formats " + f + ": the input carries FLAP's down_proj bias, a Whittle-only model");
            if (r.quantization && ((f == "gguf-nvfp4") != (r.quantization->method == "nvfp4")))
                throw UsageError("export.formats " + f + " does not hold quantization.method " + r.quantization->method +
                                 "'s codes (gguf-nvfp4 goes with nvfp4; gguf-q4_0, gguf-q8_0 and the float types with the integer methods)");
        }
        std::string list;
        for (const auto& f : r.exports->formats) list += (list.empty() ? "" : ", ") + ggufFileName(f);
        PlannedStage s{"export", "write " + list + " for llama.cpp from the result (size measured when written)"};
        s.bytesRead = last;
        plan.stages.push_back(s);
    }
    if (r.evaluation) {
        (void)textFilesOrHeldout(ck.dir(), r.evaluation->files, "evaluation");
        PlannedStage s{"evaluation", "perplexity, KL divergence and top-1 against the input on " + std::to_string(r.evaluation->maxTokens) +
                                         " held-out tokens at most"};
        s.forwardTokens = 2 * std::int64_t(r.evaluation->maxTokens);  // the output and the input
        plan.stages.push_back(s);
    }
    plan.outputBytes = last;
    return plan;
}

}  // namespace whittle
