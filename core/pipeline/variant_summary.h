#pragma once
// What one checkpoint folder — an original or a slimmed variant — costs and what it lost, for comparing them:
// size on disk, parameters, bits per weight of its quantized tensors, and the quality report its whittle.json
// carries (a slim run's "evaluation", or what the Compare page measured later and recorded there). Read from
// headers and whittle.json only, never tensor data.
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
    std::uint64_t diskBytes = 0;     // every regular file in the folder but whittle.json (a record, not the model; it grows as figures are recorded)
    std::uint64_t params = 0;        // parameters as the inventory counts them
    std::optional<double> bitsPerWeight;  // of the quantized tensors (the quantization stage's report)
    std::optional<EvalReport> quality;    // against its source: whittle.json "slim"."quality", else "measured"."quality"
    std::optional<double> cpuTokS, vulkanTokS;  // decode speeds recorded under "measured"
    std::string vulkanDevice;                   // the device vulkanTokS was measured on
    bool madeByWhittle = false;                 // it has a whittle.json: measurements may be recorded into it
};

// Throws FormatError naming the file for an unreadable checkpoint or whittle.json.
VariantSummary summarizeVariant(const std::filesystem::path& dir);

// Records measurements of a variant Whittle made in its whittle.json, under "measured": "quality" (an EvalReport
// against `reference`, the original it was compared with), "decode_cpu" / "decode_vulkan" ({"tok_s", "tokens",
// "device"}). The record is written to a new file beside it and renamed over it, so it is never half-written.
// A folder without whittle.json — an original, or a checkpoint Whittle did not make — is never written
// (UsageError): Whittle does not modify its inputs.
void recordQuality(const std::filesystem::path& dir, const EvalReport& quality, const std::filesystem::path& reference);
void recordDecode(const std::filesystem::path& dir, bool vulkan, double tokS, int tokens, const std::string& device);

}  // namespace whittle
