#pragma once
// All tensors of a checkpoint folder: one model.safetensors, or the shards named by
// model.safetensors.index.json (every shard present, every tensor exactly once).
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/io/safetensors_reader.h"

namespace whittle {

class TensorStore {
public:
    struct Entry {
        const TensorSource* file;
        const TensorInfo* info;
    };

    static constexpr const char* kSingleFile = "model.safetensors";
    static constexpr const char* kIndexFile = "model.safetensors.index.json";

    static TensorStore open(const std::filesystem::path& dir);
    // A store whose tensors are read from `source` (a stream of transforms): no files, the given tensors in
    // order (their offsets unused).
    static TensorStore fromSource(std::unique_ptr<TensorSource> source, std::vector<TensorInfo> tensors);

    const std::vector<Entry>& entries() const { return entries_; }  // shard order, then data order
    const Entry* find(std::string_view name) const;
    const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }
    std::uint64_t headerBytes() const;
    std::uint64_t fileBytes() const;  // a source's store: its tensors' bytes
    bool sharded() const { return sharded_; }

private:
    std::vector<std::unique_ptr<SafetensorsFile>> files_;
    std::vector<Entry> entries_;
    std::unique_ptr<TensorSource> source_;  // fromSource only
    std::vector<TensorInfo> sourceTensors_;
    std::unordered_map<std::string, std::size_t> index_;
    bool sharded_ = false;
};

}  // namespace whittle
