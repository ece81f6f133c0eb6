#pragma once
// The recipe's "export" section: formats for other tools written into the same output folder by the same run,
// after the last transforming stage — today llama.cpp's GGUF ("gguf-q4_0", …; core/export/gguf_export.h),
// each as model-<type>.gguf next to the safetensors checkpoint. A Whittle-only model (FLAP's bias
// compensation) cannot go to a foreign format: the plan refuses it, naming the field.
#include <string>
#include <vector>

#include "core/io/json_file.h"

namespace whittle {

struct ExportRecipe {
    std::vector<std::string> formats;  // gguf-f32 | gguf-f16 | gguf-q8_0 | gguf-q4_0 | gguf-nvfp4, each once
};
Json toJson(const ExportRecipe& e);
// Accepts ["gguf-q4_0", …] or {"formats": [...]}; errors name the field and the file.
ExportRecipe parseExportRecipe(const Json& section, const std::string& source);

}  // namespace whittle
