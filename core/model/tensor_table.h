#pragma once
// The one table of Gemma 4 text tensors as a function of the config (spec §2). Loading, inventory,
// pruning, quantization and size estimates all iterate this table, so they agree on names and shapes.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/model/gemma4_config.h"

namespace whittle {

enum class Part { MainEmbedding, PleTable, PleProjection, Attention, Mlp, Norms, VisionTower, AudioTower, Other };
inline constexpr Part kAllParts[] = {Part::MainEmbedding, Part::PleTable, Part::PleProjection, Part::Attention,
                                     Part::Mlp, Part::Norms, Part::VisionTower, Part::AudioTower, Part::Other};
const char* partName(Part p);  // "main embedding", "PLE table", …
const char* partKey(Part p);   // JSON key: "main_embedding", "ple_table", …

struct ExpectedTensor {
    std::string name;  // full name, prefix included
    std::vector<std::int64_t> shape;
    Part part = Part::Other;
    int layer = -1;         // -1: not per-layer
    bool optional = false;  // dead k/v of KV-shared layers, an untied lm_head duplicate
};

std::vector<ExpectedTensor> textTensorTable(const Gemma4Config& c);

// Vision/audio tower tensors are opaque: classified by prefix only.
bool isTowerTensor(std::string_view name, Part* part = nullptr);

}  // namespace whittle
