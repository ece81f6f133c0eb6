#pragma once
// A Recipe says what to do to a checkpoint: plain data with a versioned JSON form ("whittle_recipe": 1),
// so every GUI action has a CLI equivalent and a file you can diff. Unknown keys are refused by name.
// Each capability adds its own section; this version has the vocabulary section.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/io/json_file.h"

namespace whittle {

struct VocabularyRecipe {
    std::string preset;                    // english, latin, european, cjk, corpus; empty when buckets are listed
    std::vector<std::string> buckets;      // explicit buckets to keep (special and byte are always kept)
    std::vector<std::string> corpusFiles;  // for the corpus preset
    int corpusMinCount = 1;
    int padMultiple = 256;
};

struct Recipe {
    static constexpr int kVersion = 1;
    std::optional<VocabularyRecipe> vocabulary;
};

Json toJson(const Recipe& r);
Recipe parseRecipe(const Json& j, const std::string& source);
Recipe loadRecipe(const std::filesystem::path& file);

}  // namespace whittle
