#pragma once
// A Recipe says what to do to a checkpoint: plain data with a versioned JSON form ("whittle_recipe": 1),
// so every GUI action has a CLI equivalent and a file you can diff. Unknown keys are refused by name.
// Each recipe owns its options struct and its JSON section in its own file (vocab_prune.h: "vocabulary",
// flap.h: "flap", quantize.h: "quantization", evaluation.h: "evaluation"; text_only.h reads the "text_only" flag);
// this aggregate only lists the sections.
#include <filesystem>
#include <optional>
#include <string>

#include "core/io/json_file.h"
#include "core/recipes/evaluation.h"
#include "core/recipes/export_formats.h"
#include "core/recipes/flap.h"
#include "core/recipes/quantize.h"
#include "core/recipes/vocab_prune.h"

namespace whittle {

struct Recipe {
    static constexpr int kVersion = 1;
    std::optional<VocabularyRecipe> vocabulary;
    std::optional<FlapRecipe> flap;
    bool textOnly = false;  // "text_only": drop the vision and audio towers (text_only.h)
    std::optional<QuantizeRecipe> quantization;
    std::optional<ExportRecipe> exports;         // "export": GGUF files written by the same run (export_formats.h)
    std::optional<EvaluationRecipe> evaluation;  // "evaluation": the output's quality report (evaluation.h)
};

Json toJson(const Recipe& r);
Recipe parseRecipe(const Json& j, const std::string& source);
Recipe loadRecipe(const std::filesystem::path& file);

}  // namespace whittle
