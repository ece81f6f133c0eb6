#pragma once
// What one checkpoint folder — an original or a slimmed variant — costs and what it lost, for comparing them:
// size on disk, parameters, bits per weight of its quantized tensors, and the quality report its whittle.json
// carries (a slim run's "evaluation"). Read from headers and whittle.json only, never tensor data.
#include <filesystem>
#include <optional>
#include <string>

#include "core/engine/evaluate.h"

namespace whittle {

struct VariantSummary {
    std::filesystem::path dir;
    std::string name;                // the folder's name
    std::optional<std::filesystem::path> source;  // whittle.json's "source": the checkpoint it was made from
    std::string recipe;              // e.g. "text only + vocabulary english + FLAP 0.2 + INT4 gptq g128"; empty for an original
    std::uint64_t diskBytes = 0;     // every regular file in the folder
    std::uint64_t params = 0;        // parameters as the inventory counts them
    std::optional<double> bitsPerWeight;  // of the quantized tensors (the quantization stage's report)
    std::optional<EvalReport> quality;    // against its source (whittle.json "slim"."quality")
};

// Throws FormatError naming the file for an unreadable checkpoint or whittle.json.
VariantSummary summarizeVariant(const std::filesystem::path& dir);

}  // namespace whittle
