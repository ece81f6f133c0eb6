#pragma once
// The one table of Gemma 4 text tensors (GEMMA4.md §2). It is the only place that spells a tensor name:
// the checkpoint reader, the inventory, the reference engine, the GGUF exporter, the vocabulary pruner,
// the fixtures and the GUI all look tensors up here by role, so they agree on names, shapes, which
// tensors have one row per token id and which are present but never read. tests/core/tst_tensor_table
// greps core/ and app/ for the names and fails when another file spells one.
#include <cstdint>
#include <optional>
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

// What a tensor is to the decoder; engines bind weights by role, never by name.
enum class TensorRole {
    // model level
    Embedding,           // [vocab, H], also the head when tied
    PleTable,            // [vocab_per_layer, L·P]
    PleModelProjection,  // [L·P, H]
    PleProjectionNorm,   // [P]
    FinalNorm,           // [H]
    LmHead,              // [vocab, H]: read when untied; a saved copy of the embedding otherwise
    // per layer
    InputNorm,
    QProj,
    QNorm,
    KProj,
    VProj,
    KNorm,
    OProj,
    PostAttentionNorm,
    PreFeedforwardNorm,
    GateProj,
    UpProj,
    DownProj,
    DownProjBias,  // [H], only in FLAP outputs with bias compensation (Gemma4Config::downProjBias)
    PostFeedforwardNorm,
    PleInputGate,
    PleProjection,
    PostPleNorm,
    LayerScalar,
};
const char* roleName(TensorRole r);  // "q_proj", "ple_table", … (for messages and debug dumps)

struct ExpectedTensor {
    std::string name;      // Hugging Face name, prefix included
    std::string ggufName;  // llama.cpp's name ("blk.3.attn_q.weight")
    std::vector<std::int64_t> shape;
    TensorRole role = TensorRole::Embedding;
    Part part = Part::Other;
    int layer = -1;            // -1: model level
    bool mayBeAbsent = false;  // a checkpoint without it is still complete
    bool read = true;          // read by the decoder (false: dead k/v of KV-shared layers, a tied head's copy)
    bool rowPerToken = false;  // one row per token id: sliced by vocabulary pruning
    bool vector = false;       // 1-D (norms, the layer scalar): kept in f32 by exporters
    bool linear = false;       // a matmul weight [out, in]: may be stored quantized (INT4 groups, GPTQ v1)
};

// Every text tensor the config implies, model-level first, then layer by layer, then the head.
std::vector<ExpectedTensor> textTensorTable(const Gemma4Config& c);

// The Hugging Face name of a role (layer: the layer index for per-layer roles, -1 otherwise).
std::string tensorName(const Gemma4Config& c, TensorRole role, int layer = -1);

// llama.cpp's name for a Hugging Face tensor name; nullopt when the table has no such tensor.
std::optional<std::string> ggufTensorName(const Gemma4Config& c, std::string_view hfName);

// The tie rule: the role whose rows the output head multiplies (the embedding unless untied).
TensorRole headRole(const Gemma4Config& c);

// The token-id keys: names of the tensors with one row per token id (embedding, PLE table, lm_head).
std::vector<std::string> tokenRowTensorNames(const Gemma4Config& c);

// GGUF only: the per-pair RoPE frequency divisors llama.cpp applies on full layers (the exporter generates it).
inline constexpr std::string_view kGgufRopeFreqsName = "rope_freqs.weight";

// GGUF only: the F32 [1] per-tensor scale llama.cpp multiplies into an NVFP4 weight's matmul output
// ("blk.3.attn_q.weight" -> "blk.3.attn_q.scale", as its converter names it; shared/formats.md §3a).
std::string ggufScaleName(std::string_view ggufWeightName);

// The GPTQ v1 tensors that replace a linear weight "<module>.weight" (shared/formats.md §2).
struct GptqNames {
    std::string qweight, qzeros, scales, gIdx;
    std::string qresidual, residualScales;  // Whittle's binary residual (gptq_layout.h), when present
};
GptqNames gptqNames(const ExpectedTensor& linear);

// A token table (main embedding, PLE table, untied head) stored as GGUF blocks, row by row, for a gather
// format engines read without a dense copy: "<module>.weight_q8_0" or "<module>.weight_q4_0", U8 [rows,
// bytes per row] (Whittle's own; core/quant/ggml_blocks.h has the block layout).
enum class RowBlockType { Q8_0, Q4_0 };
std::string rowBlocksName(const ExpectedTensor& table, RowBlockType type);
const char* rowBlockTypeName(RowBlockType type);  // "q8_0", "q4_0"
bool isTokenTable(TensorRole role);               // Embedding, PleTable, LmHead

// The NVFP4 tensors that replace a linear weight (shared/formats.md §1): ModelOpt keeps "<module>.weight"
// (now U8 codes) with "weight_scale" (E4M3) and "weight_scale_2" (F32, a multiplier); compressed-tensors
// writes "weight_packed" and "weight_global_scale" (its reciprocal).
enum class Nvfp4Layout { ModelOpt, CompressedTensors };
struct Nvfp4Names {
    std::string packed, scale, globalScale;
};
Nvfp4Names nvfp4Names(const ExpectedTensor& linear, Nvfp4Layout layout);
// The module a weight belongs to ("….q_proj", "lm_head"), as quantization configs list them.
std::string moduleName(const ExpectedTensor& linear);

// Where linear weights read their input: the linears of one site multiply the same activations, and they
// are the ones other tools fuse into one matrix (qkv_proj, gate_up_proj).
enum class LinearSite {
    PleModel,         // layer -1: the per-layer-input projection of the scaled embeddings
    Attention,        // q, k, v
    AttentionOutput,  // o
    Mlp,              // gate, up
    MlpDown,          // down
    PleGate,          // the per-layer input gate
    PleProjection,    // the per-layer projection
};
// The site of a linear role; throws Error for a role that is not a linear weight.
LinearSite linearSite(TensorRole role);

// Glob patterns (fnmatch) matching a role's tensors in every layer: "*" + its relative name.
std::string roleGlob(TensorRole role);

// A list of tensors as a person reads it (the Recipe page's "kept unquantized" box): model-level tensors
// by name, then each per-layer role once, as its glob with the layers it covers as ranges
// ("*mlp.down_proj.weight in layers 0–3, 8, 10–34 (36)"), both in table order. Names not in the table
// follow as they are.
std::vector<std::string> summarizeTensorNames(const std::vector<ExpectedTensor>& table, const std::vector<std::string>& names);
// Sorted layer indices as ranges: {0,1,2,3,8,10,11} → "0–3, 8, 10–11".
std::string layerRanges(const std::vector<int>& sortedLayers);

// Vision/audio tower tensors are opaque: classified by prefix only.
bool isTowerTensor(std::string_view name, Part* part = nullptr);

}  // namespace whittle
