#pragma once
// A Gemma 4 checkpoint folder opened for reading: config, special token ids (always read from the
// files), and every tensor checked against the tensor table — without touching tensor data.
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/io/side_files.h"
#include "core/io/tensor_store.h"
#include "core/model/gemma4_config.h"
#include "core/io/gptq_layout.h"
#include "core/model/tensor_table.h"
#include "core/quant/nvfp4.h"

namespace whittle {

struct SpecialTokenIds {
    int bos = -1;
    int pad = -1;
    std::vector<int> eos;  // generation_config.json's list (stop ids)
};

struct CheckpointTensor {
    const TensorStore::Entry* entry = nullptr;
    const ExpectedTensor* expected = nullptr;  // its row of the tensor table; null for towers and unknown tensors
    Part part = Part::Other;
    int layer = -1;
    bool unused = false;  // present but never read by the decoder (dead shared-layer k/v, lm_head duplicate)
    std::uint64_t parameters = 0;  // model weights it holds: its elements; 8 per qweight word, 2 per NVFP4 byte; 0 for scales/zeros/g_idx
};

// A linear weight stored as GPTQ v1 INT4 (shared/formats.md §2) instead of "<module>.weight".
struct GptqLinear {
    const TensorStore::Entry* qweight = nullptr;  // I32 [K·bits/32, N]
    const TensorStore::Entry* qzeros = nullptr;   // I32 [G, N·bits/32]
    const TensorStore::Entry* scales = nullptr;   // F16 [G, N]
    const TensorStore::Entry* gIdx = nullptr;     // I32 [K]
    const TensorStore::Entry* qresidual = nullptr;       // I32 [K/32, N]: Whittle's binary residual, or null
    const TensorStore::Entry* residualScales = nullptr;  // F16 [G, N], or null
    std::int64_t outFeatures = 0, inFeatures = 0, groups = 0;
    int bits = 4;  // from qweight's rows: K·bits/32
};

// A linear weight stored as NVFP4 (shared/formats.md §1), ModelOpt's or compressed-tensors' layout.
struct Nvfp4Linear {
    Nvfp4Layout layout = Nvfp4Layout::ModelOpt;
    const TensorStore::Entry* packed = nullptr;       // U8 [N, K/2]
    const TensorStore::Entry* scale = nullptr;        // F8_E4M3 [N, K/16]
    const TensorStore::Entry* globalScale = nullptr;  // F32, one value (compressed-tensors: the reciprocal)
    std::int64_t outFeatures = 0, inFeatures = 0;
};

// A token table stored as rows of GGUF blocks (tensor_table.h rowBlocksName).
struct RowBlocksTable {
    const TensorStore::Entry* entry = nullptr;  // U8 [rows, bytes per row]
    RowBlockType type = RowBlockType::Q8_0;
    std::int64_t rows = 0, cols = 0;             // the dense shape it stands for
};

// Reads rows [row0, row0 + n) of a 2-D stored tensor of `cols` values a row as floats (pread into `raw`); a
// NaN or infinity is refused naming the file, tensor and element (it would poison a quantizer's scale).
void readRowsAsFloat(const TensorStore::Entry& e, std::int64_t cols, std::int64_t row0, std::int64_t n, std::vector<std::byte>& raw,
                     std::vector<float>& out);

// A quantized linear's tensors read into memory (pread, one tensor at a time), for stages that repack them
// (GGUF export). loadGptq's g_idx is as stored; loadNvfp4 undoes compressed-tensors' reciprocal scale.
GptqTensors loadGptq(const GptqLinear& g);
Nvfp4Tensor loadNvfp4(const Nvfp4Linear& f, const std::string& name);

class Checkpoint {
public:
    static Checkpoint open(const std::filesystem::path& dir);
    // A checkpoint made of parts a stage already has (core/pipeline/tensor_stream.h streamCheckpoint): the
    // tensors are checked against the table exactly as open() checks a folder's. `origin` is what errors name.
    static Checkpoint fromParts(const std::filesystem::path& origin, const Gemma4Config& config, const SpecialTokenIds& special,
                                std::vector<SideFile> sideFiles, TensorStore store);
    // Movable, not copyable: tensors() points into the store and the table.
    Checkpoint(Checkpoint&&) = default;
    Checkpoint& operator=(Checkpoint&&) = default;
    Checkpoint(const Checkpoint&) = delete;
    Checkpoint& operator=(const Checkpoint&) = delete;

    const std::filesystem::path& dir() const { return dir_; }
    const Gemma4Config& config() const { return config_; }
    const TensorStore& store() const { return store_; }
    const std::vector<CheckpointTensor>& tensors() const { return tensors_; }
    const std::vector<ExpectedTensor>& table() const { return table_; }
    // The table's row for a role (layer -1 for model-level roles); null when the config implies none.
    const ExpectedTensor* expected(TensorRole role, int layer = -1) const;
    // The stored tensor of a role (layer -1 for model-level roles); null when absent or stored as GPTQ or NVFP4.
    const TensorStore::Entry* find(TensorRole role, int layer = -1) const;
    // The GPTQ tensors of a linear role; null when it is stored densely.
    const GptqLinear* gptq(TensorRole role, int layer = -1) const;
    // The NVFP4 tensors of a linear role; null when it is stored otherwise.
    const Nvfp4Linear* nvfp4(TensorRole role, int layer = -1) const;
    // A token table stored as rows of blocks; null when it is dense.
    const RowBlocksTable* rowBlocks(TensorRole role, int layer = -1) const;
    bool hasQuantizedWeights() const { return !gptq_.empty() || !nvfp4_.empty() || !rowBlocks_.empty(); }
    const SpecialTokenIds& specialTokens() const { return special_; }
    // Its files other than tensors and whittle.json (configs, tokenizer, chat template, …), sorted by name;
    // stages read them here, never from dir(), so a checkpoint made from a stream reads its rewritten ones.
    const std::vector<SideFile>& sideFiles() const { return sideFiles_; }
    const SideFile* sideFile(std::string_view name) const;  // null when absent
    const SideFile& sideFile(std::string_view name, const std::string& why) const;  // IoError naming the file and why
    bool hasGenerationConfig() const { return hasGenerationConfig_; }

private:
    Checkpoint() = default;
    void index();  // the table, the quantized views and tensors(), from config_ and store_
    std::filesystem::path dir_;
    Gemma4Config config_;
    TensorStore store_;
    std::vector<ExpectedTensor> table_;
    std::map<std::string, GptqLinear> gptq_;    // by the linear's weight name
    std::map<std::string, Nvfp4Linear> nvfp4_;  // by the linear's weight name
    std::map<std::string, RowBlocksTable> rowBlocks_;  // by the table's weight name
    std::vector<CheckpointTensor> tensors_;
    SpecialTokenIds special_;
    std::vector<SideFile> sideFiles_;
    bool hasGenerationConfig_ = false;
};

}  // namespace whittle
