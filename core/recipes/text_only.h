#pragma once
// Text-only repack: drops the vision and audio towers and their embedders, and rewrites config.json as Gemma
// 4's text model — model_type gemma4_text with the fields of text_config (and the top-level ones a text model
// needs: tie_word_embeddings, dtype, token ids), architectures Gemma4ForCausalLM — whose tensors are named
// model.* instead of model.language_model.*. The decoder's tensors keep their bytes, so the logits are
// identical; the image/audio processor configs go with the towers. Recipe: "text_only": true.
#include <filesystem>
#include <string>
#include <vector>

#include "core/io/json_file.h"
#include "core/model/checkpoint.h"
#include "core/pipeline/tensor_stream.h"
#include "core/progress.h"

namespace whittle {

struct Recipe;

struct TextOnlyReport {
    int towerTensorsRemoved = 0;
    std::uint64_t towerParamsRemoved = 0;
    std::uint64_t paramsBefore = 0, paramsAfter = 0;
    std::vector<std::string> filesDropped;  // processor configs of the towers
    std::uint64_t bytesWritten = 0;
    double seconds = 0;
};
Json toJson(const TextOnlyReport& r);

// The text-only config.json of a multimodal (model_type gemma4) one; `file` names it in errors.
Json textOnlyConfig(const Json& multimodal, const std::string& file);
// The name a decoder tensor of a multimodal checkpoint (config c) takes in the text-only one: the text prefix of
// gemma4 (model.language_model.) becomes gemma4_text's (model.); other names stay.
std::string textOnlyTensorName(const Gemma4Config& c, const std::string& name);

// The repack as a stream transform: towers and the processor configs dropped, decoder tensors renamed with their
// bytes as they are, config.json rewritten. Fills rep's counts (not bytesWritten or seconds: the pass's).
TensorStream textOnlyStream(TensorStream in, TextOnlyReport& rep);

// The transform written by itself: source → textOnlyStream → an atomic output folder with its whittle.json.
TextOnlyReport textOnlyRepack(const Checkpoint& checkpoint, const Recipe& recipe, const std::filesystem::path& dest, bool force,
                              Progress& progress, const CancelToken& cancel);

}  // namespace whittle
