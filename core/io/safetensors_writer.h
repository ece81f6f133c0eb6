#pragma once
// Streams tensors into safetensors shards laid out as the reference library writes them (header padded
// with spaces to 8 bytes, tensors contiguous, sorted by dtype alignment then name). The whole plan is
// known up front, so each tensor's offset is fixed and data can arrive in any tensor order, in chunks.
// All-zero 64 KiB blocks are left as holes, so zero-filled fixtures stay sparse.
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/io/dtype.h"
#include "core/io/file.h"

namespace whittle {

struct TensorSpec {
    std::string name;
    DType dtype = DType::BF16;
    std::vector<std::int64_t> shape;
    std::uint64_t numel() const;
    std::uint64_t nbytes() const { return numel() * dtypeSize(dtype); }
};

struct SafetensorsWriterOptions {
    std::uint64_t shardLimitBytes = 4ull << 30;
    std::map<std::string, std::string> metadata{{"format", "pt"}};
};

// Where every byte of a plan goes, before anything is written: the shard files (their names, header text and
// sizes), each tensor's shard and absolute offset, and the index text when sharded. The writer lays files out
// by it, and estimates size outputs by it (core/estimate), so the two never disagree.
struct SafetensorsLayout {
    struct Shard {
        std::string fileName;
        std::string header;  // the JSON header, padded with spaces to a multiple of 8
        std::uint64_t size = 0;  // the file's bytes: 8 + header + data
        std::vector<std::size_t> tensors;  // plan indices, in file order
    };
    std::vector<Shard> shards;
    std::vector<std::size_t> shardOf;        // per plan index
    std::vector<std::uint64_t> offsets;      // per plan index: absolute in its shard
    std::string index;                       // model.safetensors.index.json's text; empty for one file
    std::uint64_t totalBytes() const;        // every file, the index included
};
// Throws UsageError naming `where` and the tensor when a name is planned twice.
SafetensorsLayout layoutSafetensors(const std::vector<TensorSpec>& plan, const SafetensorsWriterOptions& options = {},
                                    const std::string& where = {});

class SafetensorsWriter {
public:
    static constexpr std::uint64_t kHoleBlock = 64 * 1024;

    // Creates the shard files (and later the index) inside dir, which must exist.
    SafetensorsWriter(const std::filesystem::path& dir, std::vector<TensorSpec> plan,
                      SafetensorsWriterOptions options = {});

    // Appends n bytes to tensor `name`; chunks of one tensor arrive in order.
    void write(std::string_view name, const void* data, std::size_t n);
    // Declares the whole tensor zero without touching the disk (it stays a hole).
    void writeZeros(std::string_view name);
    // Checks every tensor is complete, sizes and syncs the files, writes the index when sharded.
    void finish();

    std::vector<std::string> fileNames() const;
    std::uint64_t totalBytes() const;  // file sizes, headers included

private:
    struct Slot {
        std::size_t shard;
        std::uint64_t offset;  // absolute in the shard file
        std::uint64_t nbytes;
        std::uint64_t written = 0;
    };
    struct Shard {
        std::string fileName;
        FileHandle file;
        std::uint64_t size = 0;
        std::vector<std::size_t> tensors;  // plan indices
    };
    Slot& slot(std::string_view name);
    void writeSkippingZeroBlocks(const FileHandle& f, const std::byte* data, std::size_t n, std::uint64_t offset);

    std::filesystem::path dir_;
    std::vector<TensorSpec> plan_;
    std::vector<Slot> slots_;
    std::unordered_map<std::string, std::size_t> byName_;
    std::vector<Shard> shards_;
    std::string index_;
    bool finished_ = false;
};

}  // namespace whittle
