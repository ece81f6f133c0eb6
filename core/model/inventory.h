#pragma once
// What is inside a checkpoint: parameters and bytes by part, by dtype and per layer. Built from
// headers alone (never touches tensor data), shown by `whittle-cli inspect` and the Model page.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/io/dtype.h"
#include "core/io/json_file.h"
#include "core/model/checkpoint.h"

namespace whittle {

struct Totals {
    std::uint64_t tensors = 0;
    std::uint64_t params = 0;
    std::uint64_t bytes = 0;
    void add(std::uint64_t p, std::uint64_t b) { ++tensors; params += p; bytes += b; }
};

struct InventoryTensor {
    std::string name;
    DType dtype = DType::BF16;
    std::vector<std::int64_t> shape;
    Part part = Part::Other;
    int layer = -1;
    std::string file;  // shard file name
    std::uint64_t params = 0;
    std::uint64_t bytes = 0;
    bool unused = false;
    bool rowPerToken = false;  // one row per token id (tensor table)
};

struct InventoryLayer {
    LayerSpec spec;
    Totals totals;
};

struct Inventory {
    std::string path;
    Gemma4Config config;
    SpecialTokenIds special;
    std::map<Part, Totals> byPart;
    std::map<DType, Totals> byDType;
    std::vector<InventoryLayer> layers;
    Totals total;
    Totals unused;  // included in total
    std::uint64_t fileBytes = 0;
    std::uint64_t headerBytes = 0;
    std::vector<std::string> files;
    std::vector<InventoryTensor> tensors;
};

Inventory makeInventory(const Checkpoint& ck);

// What one token id costs: its row in every stored tensor with one row per token id.
struct TokenRowCost {
    int rows = 0;                                  // vocab_size
    std::uint64_t mainParams = 0, mainBytes = 0;   // main embedding (and a stored lm_head)
    std::uint64_t pleParams = 0, pleBytes = 0;     // PLE table
    std::uint64_t params() const { return mainParams + pleParams; }
    std::uint64_t bytes() const { return mainBytes + pleBytes; }
};
TokenRowCost tokenRowCost(const Inventory& inv);
Json toJson(const Inventory& inv);
std::string formatInventory(const Inventory& inv);  // the text report of `whittle-cli inspect`

// "5.10 B", "402.7 M": parameter counts as people quote them.
std::string formatParams(std::uint64_t n);
// "10.2 GB", "805.3 MB" (decimal units, as file managers and Hugging Face show sizes).
std::string formatBytes(std::uint64_t n);

}  // namespace whittle
