#include "core/export/gguf_export.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>

#include "core/error.h"
#include "core/io/dtype.h"
#include "core/io/gguf_writer.h"
#include "core/io/json_file.h"
#include "core/model/tensor_table.h"
#include "core/io/gptq_layout.h"
#include "core/quant/ggml_blocks.h"
#include "core/quant/nvfp4.h"
#include "core/tokenizer/tokenizer.h"
#include "core/model/checkpoint_files.h"

namespace fs = std::filesystem;

namespace whittle {

namespace {

// GGUF token types (llama.cpp's llama_token_type / gguf-py TokenType).
enum : std::int64_t { kNormal = 1, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };
// llama.cpp's file types (general.file_type).
enum : std::uint32_t { kFileTypeAllF32 = 0, kFileTypeMostlyF16 = 1, kFileTypeMostlyQ4_0 = 2, kFileTypeMostlyQ8_0 = 7,
                       kFileTypeMostlyNvfp4 = 39 };
// The converter's placeholder score for every token of a tokenizer.json vocabulary (LlamaHfVocab).
constexpr float kTokenScore = -1000.0f;
// ggml divides the RoPE angle of pair i by rope_freqs[i]: 1e30 makes an identity pair (GEMMA4.md §3.4).
constexpr float kNoRotation = 1e30f;
constexpr std::uint64_t kChunkElements = 1u << 20;

// Rendered as text by llama.cpp's chat parser: its converter forces these to USER_DEFINED whatever the
// tokenizer says (conversion/gemma.py Gemma4Model.set_vocab).
const std::set<std::string> kVisibleTokens = {"<|channel>", "<channel|>", "<|tool_call>", "<tool_call|>",
                                              "<|tool_response>", "<tool_response|>", "<|\"|>"};

const char* const kArch = "gemma4";
std::string key(const char* k) { return std::string(kArch) + "." + k; }

// A token named in tokenizer_config.json: "<x>" or {"content": "<x>", …}.
std::optional<std::string> tokenContent(const Json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
    return std::nullopt;
}

struct TokenizerFiles {
    Json config = Json::object();  // tokenizer_config.json (empty object when absent)
    std::string configPath;
    std::optional<std::string> chatTemplate;
};

TokenizerFiles readTokenizerFiles(const Checkpoint& ck) {
    TokenizerFiles t;
    t.configPath = (ck.dir() / files::kTokenizerConfig).string();
    if (const SideFile* cfg = ck.sideFile(files::kTokenizerConfig)) {
        t.configPath = cfg->from.string();
        t.config = cfg->json(256ull << 20);
        if (!t.config.is_object()) throw FormatError(t.configPath, {}, "not a JSON object");
    }
    // Like gguf-py's SpecialVocab: chat_template.jinja, unless tokenizer_config.json holds a template.
    if (const auto it = t.config.find("chat_template"); it != t.config.end() && it->is_string())
        t.chatTemplate = it->get<std::string>();
    else if (const SideFile* j = ck.sideFile(files::kChatTemplate))
        t.chatTemplate = j->contents();
    return t;
}

// Token types as llama.cpp's converter assigns them (LlamaHfVocab + Gemma4Model.set_vocab): byte-fallback
// tokens BYTE; the tokenizer's special tokens (special added tokens and every token tokenizer_config.json
// names, as transformers' all_special_ids) CONTROL; the chat-visible set USER_DEFINED; the rest NORMAL.
std::vector<std::int64_t> tokenTypes(const Tokenizer& tok, const Json& tokConfig, int rows) {
    std::set<int> named;
    for (auto it = tokConfig.begin(); it != tokConfig.end(); ++it) {
        const std::string& k = it.key();
        const bool oneToken = k.size() > 6 && k.compare(k.size() - 6, 6, "_token") == 0;
        const bool list = k == "extra_special_tokens" || k == "additional_special_tokens";
        std::vector<std::string> texts;
        if (oneToken) {
            if (auto c = tokenContent(*it)) texts.push_back(*c);
        } else if (list && it->is_array()) {
            for (const auto& e : *it)
                if (auto c = tokenContent(e)) texts.push_back(*c);
        }
        for (const auto& text : texts)
            if (auto id = tok.tokenId(text)) named.insert(*id);
    }
    std::vector<std::int64_t> types(std::size_t(rows), kUnused);
    for (int id = 0; id < tok.size(); ++id) {
        std::int64_t t = kNormal;
        if (tok.isByteToken(id)) t = kByte;
        else if (tok.isSpecial(id) || named.count(id)) t = kControl;
        else if (tok.isAdded(id) && id >= tok.modelVocabSize()) t = kUserDefined;  // added beyond the BPE vocabulary
        if (kVisibleTokens.count(tok.tokenText(id))) t = kUserDefined;
        types[std::size_t(id)] = t;
    }
    return types;
}

// Special ids as gguf-py's SpecialVocab finds them: tokenizer_config.json's <kind>_token first, then the
// checkpoint's config files. Never constants.
void addSpecialIds(GgufMetadata& md, const Checkpoint& ck, const Tokenizer& tok, const TokenizerFiles& tf) {
    const Gemma4Config& c = ck.config();
    const SpecialTokenIds& s = ck.specialTokens();
    struct Kind {
        const char* name;  // tokenizer_config.json's <name>_token
        int fallback;
        const char* key;   // gguf-py's Keys.Tokenizer (llama.cpp spells "seperator")
    };
    auto configId = [&](const char* k) {
        const auto it = c.tokenIds.find(k);
        return it == c.tokenIds.end() ? -1 : it->second;
    };
    const Kind kinds[] = {
        {"bos", s.bos >= 0 ? s.bos : configId("bos_token_id"), "tokenizer.ggml.bos_token_id"},
        {"eos", !s.eos.empty() ? s.eos.front() : configId("eos_token_id"), "tokenizer.ggml.eos_token_id"},
        {"unk", configId("unk_token_id"), "tokenizer.ggml.unknown_token_id"},
        {"sep", configId("sep_token_id"), "tokenizer.ggml.seperator_token_id"},
        {"pad", s.pad >= 0 ? s.pad : configId("pad_token_id"), "tokenizer.ggml.padding_token_id"},
        {"cls", configId("cls_token_id"), "tokenizer.ggml.cls_token_id"},
        {"mask", configId("mask_token_id"), "tokenizer.ggml.mask_token_id"},
    };
    for (const Kind& k : kinds) {
        int id = -1;
        const auto it = tf.config.find(std::string(k.name) + "_token");
        if (it != tf.config.end())
            if (auto text = tokenContent(*it)) {
                const auto found = tok.tokenId(*text);
                if (!found)
                    throw FormatError(tf.configPath, {}, std::string(k.name) + "_token '" + *text + "' is not in the vocabulary");
                id = *found;
            }
        if (id < 0) id = k.fallback;
        if (id < 0) continue;
        if (id >= tok.size())
            throw FormatError(ck.dir().string(), {}, std::string(k.name) + " token id " + std::to_string(id) +
                                                         " is outside the vocabulary (" + std::to_string(tok.size()) + ")");
        md.addUint32(k.key, std::uint32_t(id));
    }
}

void addTokenizer(GgufMetadata& md, const Checkpoint& ck, const Tokenizer& tok, int rows, std::vector<std::string>& notes) {
    const TokenizerFiles tf = readTokenizerFiles(ck);
    const SideFile* tokFile = ck.sideFile(files::kTokenizer);
    const std::string tokPath = tokFile ? tokFile->from.string() : (ck.dir() / files::kTokenizer).string();
    if (tok.size() > rows)
        throw FormatError(tokPath, {}, "the tokenizer has " + std::to_string(tok.size()) + " tokens but the embedding has " +
                                           std::to_string(rows) + " rows");
    std::vector<std::string> tokens(static_cast<std::size_t>(rows));
    for (int id = 0; id < rows; ++id)
        tokens[std::size_t(id)] = id < tok.size() ? tok.tokenText(id) : "[PAD" + std::to_string(id) + "]";
    if (tok.size() < rows)
        notes.push_back("the tokenizer has " + std::to_string(tok.size()) + " tokens for " + std::to_string(rows) +
                        " embedding rows; the rest are written as unused [PADn] tokens");
    std::vector<std::string> merges;
    merges.reserve(tok.merges().size());
    for (const auto& [a, b] : tok.merges()) {
        const std::string& l = tok.tokenText(a);
        const std::string& r = tok.tokenText(b);
        // llama.cpp splits a merge at its first space after the first byte: a space inside would be misread.
        if (l.find(' ', 1) != std::string::npos || r.find(' ') != std::string::npos)
            throw FormatError(tokPath, {}, "merge '" + l + "' + '" + r + "' contains a space, which GGUF merges cannot hold");
        merges.push_back(l + " " + r);
    }
    md.addString("tokenizer.ggml.model", "gemma4");
    md.addStringArray("tokenizer.ggml.tokens", tokens);
    md.addFloat32Array("tokenizer.ggml.scores", std::vector<float>(std::size_t(rows), kTokenScore));
    md.addIntArray("tokenizer.ggml.token_type", GgufType::INT32, tokenTypes(tok, tf.config, rows));
    md.addStringArray("tokenizer.ggml.merges", merges);
    addSpecialIds(md, ck, tok, tf);
    // llama.cpp's loader sets add_bos for Gemma 4 whatever the file says, and the converter writes true.
    md.addBool("tokenizer.ggml.add_bos_token", true);
    if (const auto it = tf.config.find("add_eos_token"); it != tf.config.end() && it->is_boolean())
        md.addBool("tokenizer.ggml.add_eos_token", it->get<bool>());
    md.addBool("tokenizer.ggml.add_space_prefix", false);  // the Gemma 4 normalizer adds no prefix space
    if (tf.chatTemplate) md.addString("tokenizer.chat_template", *tf.chatTemplate);
}

void checkLlamaCppCompatible(const Checkpoint& ck) {
    const Gemma4Config& c = ck.config();
    const std::string cfg = (ck.dir() / files::kConfig).string();
    if (c.downProjBias)
        throw FormatError(cfg, {}, "this model carries FLAP's down_proj bias (bias compensation), which llama.cpp's gemma4 has no "
                                   "tensor for, and it cannot be folded into the weights (a norm follows the FFN); it runs in "
                                   "Whittle only. Prune without bias compensation to export it");
    if (c.vocabSizePerLayerInput != c.vocabSize)
        throw FormatError(cfg, {}, "vocab_size_per_layer_input (" + std::to_string(c.vocabSizePerLayerInput) +
                                       ") differs from vocab_size (" + std::to_string(c.vocabSize) +
                                       "); llama.cpp needs them equal");
    if (c.numKvSharedLayers > 0 && c.firstSharedLayer() < 2)
        throw FormatError(cfg, {}, "llama.cpp needs at least 2 KV-owning layers before the shared ones");
    for (const LayerSpec& l : c.layers) {
        const int theirs = llamaCppKvSource(c, l.index);
        if (theirs != l.kvSource)
            throw FormatError(cfg, {}, "layer " + std::to_string(l.index) + " reads the KV cache of layer " +
                                           std::to_string(l.kvSource) + " (the last KV-owning " +
                                           attentionKindName(l.kind) + " layer) but llama.cpp hard-codes layer " +
                                           std::to_string(theirs) + "; its output would differ");
    }
    if (rotatedPairs(c.ropeSliding, c.headDim) != c.headDim / 2)
        throw FormatError(cfg, {}, "proportional RoPE on sliding layers cannot be expressed in GGUF (llama.cpp applies "
                                   "rope_freqs to full-attention layers only)");
}

// Converts n elements of a source dtype into the destination type (F32, or F16 with an overflow check).
void convert(DType src, const std::byte* in, std::size_t n, GgmlType dst, std::byte* out, const std::string& file,
             const std::string& tensor, std::uint64_t firstElement) {
    if (dst == GgmlType::F32) {
        for (std::size_t i = 0; i < n; ++i) {
            const float f = loadAsFloat(src, in, i);
            std::memcpy(out + 4 * i, &f, 4);
        }
        return;
    }
    for (std::size_t i = 0; i < n; ++i) {
        const float f = loadAsFloat(src, in, i);
        const std::uint16_t h = floatToF16(f);
        if ((h & 0x7c00) == 0x7c00 && std::isfinite(f))
            throw FormatError(file, tensor, "element " + std::to_string(firstElement + i) + " (" + std::to_string(f) +
                                                ") overflows F16; export F32 instead");
        std::memcpy(out + 2 * i, &h, 2);
    }
}

struct PlannedTensor {
    GgufTensorSpec spec;
    const CheckpointTensor* source = nullptr;  // null: generated (rope_freqs, an NVFP4 weight's .scale) or quantized
    std::vector<float> generated;
    float nvfp4Scale = 1.0f;                   // NVFP4: the tensor's global scale
    // A linear stored quantized in the input (GPTQ or NVFP4): repacked, exactly when spec.type holds its codes
    // (`exact`), otherwise decoded and written in spec.type.
    const GptqLinear* gptq = nullptr;
    const Nvfp4Linear* nvfp4 = nullptr;
    // A token table stored as rows of blocks: copied as they are when spec.type is their type, else decoded.
    const RowBlocksTable* rowBlocks = nullptr;
    std::string name;  // its Hugging Face weight name
    bool exact = false;
};

// Writes a token table stored as rows of blocks, in row chunks.
void writeRowBlocks(GgufWriter& writer, const PlannedTensor& p, StageMeter& meter, const CancelToken& cancel) {
    const RowBlocksTable& t = *p.rowBlocks;
    const std::size_t rb = t.type == RowBlockType::Q8_0 ? q8_0RowBytes(t.cols) : q4_0RowBytes(t.cols);
    const std::int64_t step = std::max<std::int64_t>(1, std::int64_t(kChunkElements) / t.cols);
    std::vector<std::byte> in;
    std::vector<float> row(static_cast<std::size_t>(t.cols));
    std::vector<std::byte> out;
    for (std::int64_t r0 = 0; r0 < t.rows; r0 += step) {
        cancel.throwIfCancelled();
        const std::int64_t n = std::min(step, t.rows - r0);
        in.resize(std::size_t(n) * rb);
        t.entry->file->read(*t.entry->info, in.data(), std::uint64_t(r0) * rb, in.size());
        if (p.exact) {
            writer.write(p.spec.name, in.data(), in.size());
            meter.advance(in.size());
            continue;
        }
        const std::size_t es = ggmlTypeTraits(p.spec.type).typeSize;
        out.resize(std::size_t(n * t.cols) * es);
        for (std::int64_t i = 0; i < n; ++i) {
            if (t.type == RowBlockType::Q8_0) dequantizeRowQ8_0(in.data() + std::size_t(i) * rb, t.cols, row.data());
            else dequantizeRowQ4_0(in.data() + std::size_t(i) * rb, t.cols, row.data());
            for (std::int64_t k = 0; k < t.cols; ++k)
                storeFloat(p.spec.type == GgmlType::F16 ? DType::F16 : DType::F32, out.data(), std::size_t(i * t.cols + k), row[std::size_t(k)]);
        }
        writer.write(p.spec.name, out.data(), out.size());
        meter.advance(out.size());
    }
}

// The GGUF type that holds a GPTQ tensor's codes exactly, if any: symmetric 4-bit codes are Q4_0's grid
// (d · (q − 8)) and symmetric 8-bit codes Q8_0's (d · (q − 128)) when every 32-value block lies in one group
// (the group size a multiple of 32); no ggml type holds 2/3-bit groups, asymmetric zeros or a binary residual.
std::optional<GgmlType> exactGgufType(const IntTensor& t) {
    if (t.hasResidual() || !t.symmetric || t.groupSize % kGgmlBlockValues || t.cols % kGgmlBlockValues) return std::nullopt;
    if (t.bits == 4) return GgmlType::Q4_0;
    if (t.bits == 8) return GgmlType::Q8_0;
    return std::nullopt;
}

std::string describe(const IntTensor& t) {
    std::string s = "INT" + std::to_string(t.bits) + " g" + std::to_string(t.groupSize) + (t.symmetric ? "" : " asym");
    return t.hasResidual() ? s + " + binary residual" : s;
}

// Writes a linear stored quantized in the input: its codes repacked when exact, else its decoded rows in the
// planned type (Q8_0, F16 or F32).
void writeQuantizedSource(GgufWriter& writer, const PlannedTensor& p, StageMeter& meter, const CancelToken& cancel) {
    cancel.throwIfCancelled();
    const std::int64_t K = p.spec.dims[0], N = p.spec.dims[1];
    std::vector<std::uint8_t> out;
    std::vector<float> row(static_cast<std::size_t>(K));
    std::function<void(std::int64_t, float*)> decode;
    IntTensor ints;
    Nvfp4Tensor fp4;
    if (p.gptq) {
        ints = unpackGptqV1(loadGptq(*p.gptq), p.name);
        decode = [&](std::int64_t n, float* r) { dequantizeIntRow(ints, n, r); };
    } else {
        fp4 = loadNvfp4(*p.nvfp4, p.name);
        decode = [&](std::int64_t n, float* r) { dequantizeNvfp4Row(fp4, n, r); };
    }
    if (p.exact && p.nvfp4) {
        out = packNvfp4Gguf(fp4, p.name);
    } else if (p.exact) {
        const std::int64_t G = ints.groups(), blocks = K / kGgmlBlockValues;
        const std::size_t rowBytes = std::size_t(p.spec.nbytes() / std::uint64_t(N));
        out.resize(std::size_t(N) * rowBytes);
        std::vector<std::uint16_t> d(static_cast<std::size_t>(blocks));
        std::vector<std::int8_t> q8(static_cast<std::size_t>(K));
        for (std::int64_t n = 0; n < N; ++n) {
            for (std::int64_t b = 0; b < blocks; ++b) d[std::size_t(b)] = ints.scales[std::size_t(n * G + b * kGgmlBlockValues / ints.groupSize)];
            const std::span<const std::uint8_t> codes(ints.codes.data() + n * K, std::size_t(K));
            if (p.spec.type == GgmlType::Q4_0) {
                packRowQ4_0(codes, d, out.data() + std::size_t(n) * rowBytes);
            } else {
                for (std::int64_t k = 0; k < K; ++k) q8[std::size_t(k)] = std::int8_t(int(codes[std::size_t(k)]) - 128);
                packRowQ8_0(q8, d, out.data() + std::size_t(n) * rowBytes);
            }
        }
    } else {
        const std::size_t rowBytes = std::size_t(p.spec.nbytes() / std::uint64_t(N));
        out.resize(std::size_t(N) * rowBytes);
        for (std::int64_t n = 0; n < N; ++n) {
            decode(n, row.data());
            std::uint8_t* dst = out.data() + std::size_t(n) * rowBytes;
            if (p.spec.type == GgmlType::Q8_0) quantizeRowQ8_0(row, dst, p.name);
            else if (p.spec.type == GgmlType::F16)
                for (std::int64_t k = 0; k < K; ++k) storeFloat(DType::F16, reinterpret_cast<std::byte*>(dst), std::size_t(k), row[std::size_t(k)]);
            else std::memcpy(dst, row.data(), std::size_t(K) * 4);
        }
    }
    writer.write(p.spec.name, out.data(), out.size());
    meter.advance(out.size());
}

bool isBlockType(GgmlType t) { return t == GgmlType::Q8_0 || t == GgmlType::Q4_0 || t == GgmlType::NVFP4; }

std::uint32_t fileType(GgmlType t) {
    switch (t) {
        case GgmlType::F32: return kFileTypeAllF32;
        case GgmlType::Q4_0: return kFileTypeMostlyQ4_0;
        case GgmlType::Q8_0: return kFileTypeMostlyQ8_0;
        case GgmlType::NVFP4: return kFileTypeMostlyNvfp4;
        default: return kFileTypeMostlyF16;
    }
}

// The type a 2-D tensor gets in an export of `weightType` (the rule in gguf_export.h); F16 with a note when a
// block type cannot hold its rows of `cols` values.
GgmlType tensorType(const ExpectedTensor& e, std::int64_t cols, GgmlType weightType, GgufExportReport& rep) {
    if (!isBlockType(weightType)) return weightType;
    using R = TensorRole;
    GgmlType want = GgmlType::F16;
    switch (e.role) {
        case R::QProj: case R::KProj: case R::VProj: case R::OProj: case R::GateProj: case R::UpProj: case R::DownProj:
            want = weightType;
            break;
        case R::Embedding: case R::PleTable: case R::LmHead:
            want = weightType == GgmlType::NVFP4 ? GgmlType::F16 : GgmlType::Q8_0;
            break;
        default: break;  // the PLE projections stay F16
    }
    const auto& traits = ggmlTypeTraits(want);
    if (cols % std::int64_t(traits.blockSize) == 0) return want;
    rep.fallbacks.push_back(e.ggufName);
    rep.notes.push_back(e.ggufName + " written F16: its rows of " + std::to_string(cols) + " values are not a multiple of " +
                        std::string(traits.name) + "'s " + std::to_string(traits.blockSize) + "-value block");
    return GgmlType::F16;
}


// NVFP4's per-tensor scale, ModelOpt's amax / (6 · 448), from one streaming pass over the weight.
float nvfp4TensorScale(const CheckpointTensor& src, std::int64_t rows, std::int64_t cols) {
    std::vector<std::byte> raw;
    std::vector<float> w;
    float amax = 0;
    const std::int64_t step = std::max<std::int64_t>(1, std::int64_t(kChunkElements) / cols);
    for (std::int64_t r = 0; r < rows; r += step) {
        readRowsAsFloat(*src.entry, cols, r, std::min(step, rows - r), raw, w);
        for (float v : w) amax = std::max(amax, std::fabs(v));
    }
    return nvfp4GlobalScale(std::span<const float>(&amax, 1));  // depends on the amax alone
}

// Writes one 2-D tensor in a block type, whole rows at a time.
void writeBlocks(GgufWriter& writer, const PlannedTensor& p, StageMeter& meter, const CancelToken& cancel) {
    const std::int64_t cols = p.spec.dims[0], rows = std::int64_t(p.spec.numel()) / cols;
    const std::size_t rowBytes = std::size_t(p.spec.nbytes() / std::uint64_t(rows));
    const std::string& name = p.source->entry->info->name;
    const std::int64_t step = std::max<std::int64_t>(1, std::int64_t(kChunkElements) / cols);
    std::vector<std::byte> raw;
    std::vector<float> w;
    std::vector<std::uint8_t> out;
    for (std::int64_t r = 0; r < rows; r += step) {
        cancel.throwIfCancelled();
        const std::int64_t n = std::min(step, rows - r);
        readRowsAsFloat(*p.source->entry, cols, r, n, raw, w);
        if (p.spec.type == GgmlType::NVFP4) {
            out = packNvfp4Gguf(quantizeNvfp4(w, n, cols, name, nullptr, p.nvfp4Scale), name);
        } else {
            out.resize(std::size_t(n) * rowBytes);
            for (std::int64_t i = 0; i < n; ++i) {
                const std::span<const float> row(w.data() + i * cols, std::size_t(cols));
                if (p.spec.type == GgmlType::Q8_0) quantizeRowQ8_0(row, out.data() + std::size_t(i) * rowBytes, name);
                else quantizeRowQ4_0(row, out.data() + std::size_t(i) * rowBytes, name);
            }
        }
        writer.write(p.spec.name, out.data(), out.size());
        meter.advance(out.size());
    }
}

}  // namespace

int llamaCppKvSource(const Gemma4Config& c, int layer) {
    const int firstShared = c.firstSharedLayer();
    if (layer < firstShared) return layer;
    return firstShared - (c.layers[std::size_t(layer)].kind == AttentionKind::Sliding ? 2 : 1);
}

namespace {

// What an export writes: its tensors (with where each comes from), metadata and report. `reads`: false for a
// size estimate, which reads no tensor: a stored GPTQ linear's symmetry is `symmetricCodes` (its zeros are not
// read) and every NVFP4 weight is given a .scale tensor (its global scale is 1 only for an all-zero weight).
struct ExportPlan {
    std::vector<PlannedTensor> tensors;
    GgufMetadata metadata;
    GgufExportReport report;
};

ExportPlan planExport(const Checkpoint& ck, const fs::path& dest, const GgufExportOptions& options, const CancelToken& cancel, bool reads,
                      bool symmetricCodes) {
    if (options.weightType != GgmlType::F32 && options.weightType != GgmlType::F16 && !isBlockType(options.weightType))
        throw UsageError(dest.string(), {}, "GGUF export writes F32, F16, Q8_0, Q4_0 or NVFP4 weights, not " +
                                                std::string(ggmlTypeTraits(options.weightType).name));
    const Gemma4Config& c = ck.config();
    checkLlamaCppCompatible(ck);
    ExportPlan ep;
    GgufExportReport& rep = ep.report;
    rep.weightType = std::string(ggmlTypeTraits(options.weightType).name);
    const int rows = c.vocabSize;
    rep.vocabulary = rows;

    // ---- Tensor plan: rope_freqs, then the tensor table in order. ----
    std::unordered_map<std::string, const CheckpointTensor*> byName;
    for (const auto& t : ck.tensors()) byName.emplace(t.entry->info->name, &t);
    std::vector<PlannedTensor>& plan = ep.tensors;
    {
        PlannedTensor rf;
        const int half = c.globalHeadDim / 2;
        const int rotated = rotatedPairs(c.ropeFull, c.globalHeadDim);
        rf.generated.assign(std::size_t(half), kNoRotation);
        std::fill(rf.generated.begin(), rf.generated.begin() + rotated, 1.0f);
        rf.spec = {std::string(kGgufRopeFreqsName), GgmlType::F32, {half}};
        plan.push_back(std::move(rf));
    }
    std::set<std::string> planned;
    int skippedDead = 0;
    // A planned tensor, followed for NVFP4 by its F32 [1] `.scale` (omitted when 1: llama.cpp reads a missing
    // .scale as 1, and its converter omits it then).
    auto push = [&plan](PlannedTensor pt) {
        const bool scaled = pt.spec.type == GgmlType::NVFP4 && pt.nvfp4Scale != 1.0f;
        PlannedTensor scale;
        if (scaled) {
            scale.spec = {ggufScaleName(pt.spec.name), GgmlType::F32, {1}};
            scale.generated = {pt.nvfp4Scale};
        }
        plan.push_back(std::move(pt));
        if (scaled) plan.push_back(std::move(scale));
    };
    std::map<std::string, int> requantized;  // quantized inputs without an exact GGUF type: description → tensors
    for (const ExpectedTensor& e : ck.table()) {
        const GptqLinear* gq = e.linear ? ck.gptq(e.role, e.layer) : nullptr;
        const Nvfp4Linear* fq = e.linear ? ck.nvfp4(e.role, e.layer) : nullptr;
        if ((gq || fq) && e.read) {
            // Stored quantized: its own codes in the GGUF type that holds them exactly where there is one (a
            // float export decodes them, as asked); otherwise decoded and written Q8_0, reported.
            cancel.throwIfCancelled();
            PlannedTensor pt;
            pt.gptq = gq;
            pt.nvfp4 = fq;
            pt.name = e.name;
            pt.spec.name = e.ggufName;
            pt.spec.dims = {e.shape[1], e.shape[0]};
            const std::int64_t K = e.shape[1];
            std::optional<GgmlType> exact;
            std::string what = "NVFP4";
            if (gq && reads) {
                const IntTensor t = unpackGptqV1(loadGptq(*gq), e.name);
                exact = exactGgufType(t);
                what = describe(t);
            } else if (gq) {  // an estimate: the codes' shape from the tensor list, their symmetry as told
                const std::int64_t group = gq->groups > 0 ? gq->inFeatures / gq->groups : gq->inFeatures;
                if (!gq->qresidual && symmetricCodes && group % kGgmlBlockValues == 0 && K % kGgmlBlockValues == 0 &&
                    (gq->bits == 4 || gq->bits == 8))
                    exact = gq->bits == 4 ? GgmlType::Q4_0 : GgmlType::Q8_0;
                what = "INT" + std::to_string(gq->bits) + " g" + std::to_string(group);
            } else if (K % kNvfp4GgufBlockValues == 0) {
                exact = GgmlType::NVFP4;
            }
            if (!isBlockType(options.weightType)) {
                pt.spec.type = options.weightType;
            } else if (exact) {
                pt.spec.type = *exact;
                pt.exact = true;
                ++rep.exactTensors;
            } else {
                pt.spec.type = K % kGgmlBlockValues == 0 ? GgmlType::Q8_0 : GgmlType::F16;
                if (pt.spec.type == GgmlType::F16) rep.fallbacks.push_back(e.ggufName);
                ++requantized[what + " → " + std::string(ggmlTypeTraits(pt.spec.type).name)];
            }
            if (pt.exact && fq) pt.nvfp4Scale = reads ? loadNvfp4(*fq, e.name).globalScale : 2.0f;
            push(std::move(pt));
            continue;
        }
        if (const RowBlocksTable* rb = isTokenTable(e.role) && e.read ? ck.rowBlocks(e.role, e.layer) : nullptr) {
            // Stored as rows of blocks: the same blocks in a block export (whatever type the rule would pick:
            // the recipe chose it), decoded for a float export.
            PlannedTensor pt;
            pt.rowBlocks = rb;
            pt.name = e.name;
            pt.spec.name = e.ggufName;
            pt.spec.dims = {e.shape[1], e.shape[0]};
            pt.exact = isBlockType(options.weightType);
            pt.spec.type = pt.exact ? (rb->type == RowBlockType::Q8_0 ? GgmlType::Q8_0 : GgmlType::Q4_0) : options.weightType;
            if (pt.exact) ++rep.exactTensors;
            plan.push_back(std::move(pt));
            continue;
        }
        const auto it = byName.find(e.name);
        if (it == byName.end() || gq || fq) continue;  // a tensor the table allows to be absent (or an unread quantized one)
        planned.insert(e.name);
        if (!e.read) {
            // Dead k/v of KV-shared layers, or a saved copy of the tied head: llama.cpp reads neither.
            if (e.role == TensorRole::LmHead) rep.notes.push_back(e.name + " skipped: the head is tied to " + e.ggufName);
            else ++skippedDead;
            continue;
        }
        const TensorInfo& info = *it->second->entry->info;
        PlannedTensor pt;
        pt.source = it->second;
        pt.spec.name = e.ggufName;
        pt.spec.dims.assign(info.shape.rbegin(), info.shape.rend());
        // As the converter: 1-D tensors (norms, the layer scalar) stay F32, which llama.cpp's kernels expect.
        pt.spec.type = e.vector ? GgmlType::F32 : tensorType(e, pt.spec.dims[0], options.weightType, rep);
        if (pt.spec.type == GgmlType::NVFP4) {
            cancel.throwIfCancelled();
            pt.nvfp4Scale = reads ? nvfp4TensorScale(*pt.source, pt.spec.dims[1], pt.spec.dims[0]) : 2.0f;
        }
        push(std::move(pt));
    }
    if (skippedDead > 0)
        rep.notes.push_back(std::to_string(skippedDead) + " unused k/v tensors of KV-shared layers skipped");
    if (rep.exactTensors > 0)
        rep.notes.push_back(std::to_string(rep.exactTensors) + " quantized tensors repacked into GGUF blocks exactly (the same weights)");
    for (const auto& [what, n] : requantized)
        rep.notes.push_back(std::to_string(n) + " linears stored " + what.substr(0, what.find(" → ")) + " have no exact GGUF type: written " +
                            what.substr(what.find(" → ") + 5) + " from their decoded weights");
    int towers = 0, others = 0;
    for (const auto& t : ck.tensors()) {
        if (planned.count(t.entry->info->name) || (t.expected && t.expected->linear && (ck.gptq(t.expected->role, t.expected->layer) ||
                                                                                         ck.nvfp4(t.expected->role, t.expected->layer))) ||
            (t.expected && isTokenTable(t.expected->role) && ck.rowBlocks(t.expected->role, t.expected->layer)))
            continue;
        if (t.part == Part::VisionTower || t.part == Part::AudioTower) ++towers;
        else ++others;
    }
    if (towers > 0 || c.hasVisionConfig || c.hasAudioConfig)
        rep.notes.push_back("vision/audio towers skipped (" + std::to_string(towers) +
                            " tensors): llama.cpp reads them from a separate mmproj GGUF");
    if (others > 0) rep.notes.push_back(std::to_string(others) + " tensors outside the Gemma 4 text decoder skipped");

    // ---- Metadata, as conversion/gemma.py writes it. ----
    GgufMetadata& md = ep.metadata;
    std::string name = options.name.empty() ? ck.dir().lexically_normal().filename().string() : options.name;
    if (name.empty()) name = ck.dir().lexically_normal().parent_path().filename().string();
    md.addString("general.architecture", kArch);
    md.addString("general.type", "model");
    md.addString("general.name", name);
    md.addUint32(key("block_count"), std::uint32_t(c.numLayers));
    md.addUint32(key("context_length"), std::uint32_t(c.maxPositionEmbeddings));
    md.addUint32(key("embedding_length"), std::uint32_t(c.hiddenSize));
    bool uniformFfn = true;
    for (const auto& l : c.layers) uniformFfn = uniformFfn && l.ffnWidth == c.layers.front().ffnWidth;
    if (uniformFfn) {
        md.addUint32(key("feed_forward_length"), std::uint32_t(c.layers.front().ffnWidth));
    } else {  // double-wide MLP on KV-shared layers: one width per layer
        std::vector<std::int64_t> ff;
        for (const auto& l : c.layers) ff.push_back(l.ffnWidth);
        md.addIntArray(key("feed_forward_length"), GgufType::INT32, ff);
    }
    md.addUint32(key("attention.head_count"), std::uint32_t(c.numHeads));
    md.addUint32(key("attention.head_count_kv"), std::uint32_t(c.numKvHeads));
    md.addFloat32(key("rope.freq_base"), float(c.ropeFull.theta));
    md.addFloat32(key("rope.freq_base_swa"), float(c.ropeSliding.theta));
    md.addFloat32(key("attention.layer_norm_rms_epsilon"), float(c.rmsNormEps));
    // key/value_length are the full-layer head dim; the _swa keys the sliding one (llama.cpp needs k == v).
    md.addUint32(key("attention.key_length"), std::uint32_t(c.globalHeadDim));
    md.addUint32(key("attention.value_length"), std::uint32_t(c.globalHeadDim));
    md.addUint32("general.file_type", fileType(options.weightType));
    if (c.finalLogitSoftcap) md.addFloat32(key("final_logit_softcapping"), float(*c.finalLogitSoftcap));
    md.addUint32(key("attention.sliding_window"), std::uint32_t(c.slidingWindow));
    md.addUint32(key("attention.shared_kv_layers"), std::uint32_t(c.numKvSharedLayers));
    md.addUint32(key("embedding_length_per_layer_input"), std::uint32_t(c.pleDim));
    std::vector<bool> swa;
    for (const auto& l : c.layers) swa.push_back(l.kind == AttentionKind::Sliding);
    md.addBoolArray(key("attention.sliding_window_pattern"), swa);
    md.addUint32(key("attention.key_length_swa"), std::uint32_t(c.headDim));
    md.addUint32(key("attention.value_length_swa"), std::uint32_t(c.headDim));
    // Full layers rotate over the whole head; rope_freqs turns the unrotated pairs into identities.
    md.addUint32(key("rope.dimension_count"), std::uint32_t(c.globalHeadDim));
    md.addUint32(key("rope.dimension_count_swa"), std::uint32_t(c.headDim));
    md.addUint32("general.quantization_version", 2);
    const Tokenizer tok = checkpointTokenizer(ck);
    addTokenizer(md, ck, tok, rows, rep.notes);
    cancel.throwIfCancelled();
    for (const auto& p : plan) rep.parameters += p.spec.numel();
    return ep;
}

}  // namespace

GgufExportReport exportGguf(const Checkpoint& ck, const fs::path& dest, const GgufExportOptions& options, Progress& progress,
                            const CancelToken& cancel) {
    const auto t0 = std::chrono::steady_clock::now();
    ExportPlan ep = planExport(ck, dest, options, cancel, true, true);
    const std::vector<PlannedTensor>& plan = ep.tensors;
    const GgufMetadata& md = ep.metadata;
    GgufExportReport rep = std::move(ep.report);

    // ---- Data, streamed tensor by tensor. ----
    std::vector<GgufTensorSpec> specs;
    std::uint64_t total = 0;
    for (const auto& p : plan) {
        specs.push_back(p.spec);
        total += p.spec.nbytes();
    }
    GgufWriteOptions wo;
    wo.force = options.force;
    wo.inputs = {ck.dir()};
    GgufWriter writer(dest, md, specs, wo);
    StageMeter meter(progress, "writing GGUF", total);
    std::vector<std::byte> in, out;
    for (const auto& p : plan) {
        cancel.throwIfCancelled();
        if (p.gptq || p.nvfp4) {
            writeQuantizedSource(writer, p, meter, cancel);
            continue;
        }
        if (p.rowBlocks) {
            writeRowBlocks(writer, p, meter, cancel);
            continue;
        }
        if (!p.source) {
            writer.write(p.spec.name, p.generated.data(), p.generated.size() * sizeof(float));
            meter.advance(p.generated.size() * sizeof(float));
            continue;
        }
        if (isBlockType(p.spec.type)) {
            writeBlocks(writer, p, meter, cancel);
            continue;
        }
        const TensorInfo& info = *p.source->entry->info;
        const TensorSource& file = *p.source->entry->file;
        const std::size_t inSize = dtypeSize(info.dtype);
        const std::size_t outSize = ggmlTypeTraits(p.spec.type).typeSize;
        const bool sameType = (info.dtype == DType::F32 && p.spec.type == GgmlType::F32) ||
                              (info.dtype == DType::F16 && p.spec.type == GgmlType::F16);
        const std::uint64_t n = info.numel();
        for (std::uint64_t off = 0; off < n; off += kChunkElements) {
            cancel.throwIfCancelled();
            const std::size_t k = std::size_t(std::min<std::uint64_t>(kChunkElements, n - off));
            in.resize(k * inSize);
            file.read(info, in.data(), off * inSize, k * inSize);
            if (sameType) {
                writer.write(p.spec.name, in.data(), in.size());
            } else {
                out.resize(k * outSize);
                convert(info.dtype, in.data(), k, p.spec.type, out.data(), file.path(), info.name, off);
                writer.write(p.spec.name, out.data(), out.size());
            }
            meter.advance(k * outSize);
        }
    }
    writer.finish();
    meter.finish();
    rep.output = writer.destination();
    rep.fileBytes = writer.fileSize();
    rep.tensors = int(plan.size());
    rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return rep;
}

std::uint64_t ggufExportBytes(const Checkpoint& ck, const GgufExportOptions& options, bool symmetricCodes) {
    const fs::path dest = ck.dir() / "estimate.gguf";  // named in errors only: nothing is written
    const ExportPlan ep = planExport(ck, dest, options, CancelToken{}, false, symmetricCodes);
    std::vector<GgufTensorSpec> specs;
    for (const auto& p : ep.tensors) specs.push_back(p.spec);
    return layoutGguf(dest.string(), ep.metadata, specs).fileSize;
}

Json toJson(const GgufExportReport& r) {
    return Json{{"weight_type", r.weightType}, {"file_bytes", r.fileBytes}, {"tensors", r.tensors},
                {"fallbacks", r.fallbacks}, {"notes", r.notes},          {"seconds", r.seconds}};
}

GgmlType ggufFormatType(const std::string& format, const std::string& field) {
    static const std::map<std::string, GgmlType> kTypes{{"gguf-f32", GgmlType::F32},   {"gguf-f16", GgmlType::F16},
                                                        {"gguf-q8_0", GgmlType::Q8_0}, {"gguf-q4_0", GgmlType::Q4_0},
                                                        {"gguf-nvfp4", GgmlType::NVFP4}};
    const auto it = kTypes.find(format);
    if (it == kTypes.end())
        throw UsageError(field + " '" + format + "': not a GGUF format (gguf-f32, gguf-f16, gguf-q8_0, gguf-q4_0, gguf-nvfp4)");
    return it->second;
}

std::string ggufFileName(const std::string& format) { return "model-" + format.substr(format.rfind('-') + 1) + ".gguf"; }

}  // namespace whittle
