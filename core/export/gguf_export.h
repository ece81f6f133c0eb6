#pragma once
// Gemma 4 checkpoint → llama.cpp GGUF (architecture "gemma4"), with the metadata keys and tensor names
// llama.cpp's converter writes and its loader reads (GEMMA4.md §7; conversion/gemma.py Gemma4Model,
// src/models/gemma4.cpp). Weights are streamed tensor by tensor; 1-D tensors and norms stay F32 as llama.cpp
// expects. The text decoder only: vision/audio towers are skipped with a note (llama.cpp reads them from a
// separate mmproj file).
//
// Quantized exports (Q8_0, Q4_0, NVFP4) follow llama.cpp's own conventions (src/llama-quant.cpp, and its
// converter for NVFP4) where Whittle has the codec:
//   - the decoder's linear weights (q/k/v/o, gate/up/down) get the requested type;
//   - token_embd, per_layer_token_embd and an untied output get Q8_0 in Q8_0 and Q4_0 exports (llama-quantize
//     gives them Q8_0 for Q8_0 and Q6_K for Q4_0; Q8_0 is the nearest type Whittle writes), F16 in NVFP4 exports
//     (NVFP4 GGUFs come from ModelOpt checkpoints, which exclude the embeddings and the head);
//   - per_layer_model_proj stays F16 (llama-quantize never quantizes it), and so do the per-layer inp_gate/proj
//     (Whittle's exclusion rule for the PLE projections; llama.cpp applies no NVFP4 scale to them);
//   - a tensor whose row length the type cannot hold (not a multiple of 32 for Q8_0/Q4_0, of 64 for NVFP4) is
//     written F16 instead, listed in the report's fallbacks and notes (llama-quantize falls back the same way);
//   - a checkpoint that is already quantized (GPTQ, the bit budget's output, NVFP4) keeps its codes: in a block
//     export each such linear goes to the GGUF type that holds it exactly — symmetric INT4 with groups of a
//     multiple of 32 → Q4_0 (d = the group's scale), symmetric INT8 → Q8_0, NVFP4 → NVFP4 (its E4M3 scales and
//     global scale as they are) — and where no type does (2/3 bits, asymmetric zeros, binary residuals) its
//     decoded weights are written Q8_0, counted in the notes; an F16/F32 export decodes them;
//   - NVFP4 weights are quantized as ModelOpt does (core/quant/nvfp4.h) with one global scale per tensor
//     (llama.cpp scales each matmul by its own), stored as the F32 [1] tensor `<name>.scale` unless it is 1.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/io/gguf_reader.h"
#include "core/io/json_file.h"
#include "core/model/checkpoint.h"
#include "core/progress.h"

namespace whittle {

struct GgufExportOptions {
    GgmlType weightType = GgmlType::F16;  // F32, F16 (every 2-D weight), or Q8_0, Q4_0, NVFP4 (the rule above)
    bool force = false;                   // replace an existing output file
    std::string name;                     // general.name; empty: the checkpoint folder's name
};

struct GgufExportReport {
    std::filesystem::path output;
    std::string weightType;       // "F32", "F16", "Q8_0", "Q4_0", "NVFP4"
    std::uint64_t fileBytes = 0;
    std::uint64_t parameters = 0;  // elements written (rope_freqs included)
    int tensors = 0;
    int vocabulary = 0;
    double seconds = 0;
    int exactTensors = 0;                // quantized input linears whose codes were repacked into GGUF blocks as they are
    std::vector<std::string> fallbacks;  // GGUF names of weights written F16 because the type cannot hold their rows
    std::vector<std::string> notes;      // what was skipped, padded or fell back, one sentence each
};

// The report as JSON: weight_type, file_bytes, tensors, fallbacks, notes, seconds (callers add where it went).
Json toJson(const GgufExportReport& r);

// The weight type of a GGUF format name: gguf-f32, gguf-f16, gguf-q8_0, gguf-q4_0, gguf-nvfp4. Throws UsageError
// naming `field` (the flag or recipe key) for any other name.
GgmlType ggufFormatType(const std::string& format, const std::string& field);
// The file a GGUF format is written to inside an output folder: model-q4_0.gguf, …
std::string ggufFileName(const std::string& format);

// Writes `dest` (a .gguf file) from the checkpoint; the checkpoint folder is never written. Errors name the
// file and the tensor: a model llama.cpp would run differently from the spec (its KV-sharing shortcut, a
// RoPE it cannot express) is refused before anything is written.
GgufExportReport exportGguf(const Checkpoint& checkpoint, const std::filesystem::path& dest, const GgufExportOptions& options,
                            Progress& progress, const CancelToken& cancel);

// The size of the file exportGguf would write, from the tensor list, config and tokenizer alone (no tensor is
// read): the same plan and the writer's own layout (layoutGguf). A stored GPTQ linear counts as symmetric when
// `symmetricCodes` (its zeros are not read), and every NVFP4 weight gets a .scale tensor (omitted only when its
// global scale is 1: an all-zero weight).
std::uint64_t ggufExportBytes(const Checkpoint& checkpoint, const GgufExportOptions& options, bool symmetricCodes = true);

// The layer whose KV cache llama.cpp's Gemma 4 graph reads for `layer` (its reuse callback in
// src/llama-model.cpp: the first shared layer index minus 2 for sliding layers, minus 1 for full ones),
// or `layer` itself when it owns its cache. Our rule is Gemma4Config::layers[i].kvSource; the exporter
// refuses a model where the two differ.
int llamaCppKvSource(const Gemma4Config& config, int layer);

}  // namespace whittle
