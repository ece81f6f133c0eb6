#pragma once
// Gemma 4 checkpoint → llama.cpp GGUF (architecture "gemma4"), with the metadata keys and tensor names
// llama.cpp's converter writes and its loader reads (GEMMA4.md §7; conversion/gemma.py Gemma4Model,
// src/models/gemma4.cpp). Weights are streamed tensor by tensor in F32 or F16; 1-D tensors and norms stay
// F32 as llama.cpp expects. The text decoder only: vision/audio towers are skipped with a note (llama.cpp
// reads them from a separate mmproj file).
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/io/gguf_reader.h"
#include "core/model/checkpoint.h"
#include "core/progress.h"

namespace whittle {

struct GgufExportOptions {
    GgmlType weightType = GgmlType::F16;  // F32 or F16: the type of every 2-D weight
    bool force = false;                   // replace an existing output file
};

struct GgufExportReport {
    std::filesystem::path output;
    std::string weightType;       // "F32" / "F16"
    std::uint64_t fileBytes = 0;
    std::uint64_t parameters = 0;  // elements written (rope_freqs included)
    int tensors = 0;
    int vocabulary = 0;
    double seconds = 0;
    std::vector<std::string> notes;  // what was skipped or padded, one sentence each
};

// Writes `dest` (a .gguf file) from the checkpoint; the checkpoint folder is never written. Errors name the
// file and the tensor: a model llama.cpp would run differently from the spec (its KV-sharing shortcut, a
// RoPE it cannot express) is refused before anything is written.
GgufExportReport exportGguf(const Checkpoint& checkpoint, const std::filesystem::path& dest, const GgufExportOptions& options,
                            Progress& progress, const CancelToken& cancel);

// The layer whose KV cache llama.cpp's Gemma 4 graph reads for `layer` (its reuse callback in
// src/llama-model.cpp: the first shared layer index minus 2 for sliding layers, minus 1 for full ones),
// or `layer` itself when it owns its cache. Our rule is Gemma4Config::layers[i].kvSource; the exporter
// refuses a model where the two differ.
int llamaCppKvSource(const Gemma4Config& config, int layer);

}  // namespace whittle
