#pragma once
// Writes one GGUF v3 file the way llama.cpp's own writers lay it out (gguf-py's GGUFWriter and ggml's
// gguf.cpp): header, metadata in insertion order, tensor table, zero padding to the alignment, then each
// tensor's data at an aligned offset, padded to the alignment. The metadata and the tensor table are
// known up front, so every offset is fixed before any data arrives; tensor data then streams in chunks
// (never the whole model in memory). The file is written inside an AtomicOutputDir partial folder next
// to the destination and renamed onto it by finish(): a reader never sees a half-written file.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/io/file.h"
#include "core/io/gguf_reader.h"

namespace whittle {

class AtomicOutputDir;

// Ordered GGUF key-value metadata, encoded as it is added. Adding a key twice, an empty or non-UTF-8 key,
// or an integer that does not fit the chosen element type is a UsageError naming the key.
class GgufMetadata {
public:
    void addUint8(std::string_view key, std::uint8_t v);
    void addInt8(std::string_view key, std::int8_t v);
    void addUint16(std::string_view key, std::uint16_t v);
    void addInt16(std::string_view key, std::int16_t v);
    void addUint32(std::string_view key, std::uint32_t v);
    void addInt32(std::string_view key, std::int32_t v);
    void addUint64(std::string_view key, std::uint64_t v);
    void addInt64(std::string_view key, std::int64_t v);
    void addFloat32(std::string_view key, float v);
    void addFloat64(std::string_view key, double v);
    void addBool(std::string_view key, bool v);
    void addString(std::string_view key, std::string_view v);

    // An ARRAY of one integer type (UINT8 … INT64); every value is range-checked against it.
    void addIntArray(std::string_view key, GgufType elementType, std::span<const std::int64_t> values);
    void addFloat32Array(std::string_view key, std::span<const float> values);
    void addFloat64Array(std::string_view key, std::span<const double> values);
    void addBoolArray(std::string_view key, const std::vector<bool>& values);
    void addStringArray(std::string_view key, std::span<const std::string> values);

    bool has(std::string_view key) const { return keys_.count(std::string(key)) != 0; }
    std::size_t size() const { return count_; }
    // The encoded key-value pairs, exactly as they go into the file after the header.
    const std::string& encoded() const { return bytes_; }

private:
    void beginEntry(std::string_view key, GgufType type);
    void beginArray(std::string_view key, GgufType elementType, std::uint64_t n);

    std::string bytes_;
    std::unordered_set<std::string> keys_;
    std::size_t count_ = 0;
};

struct GgufTensorSpec {
    std::string name;
    GgmlType type = GgmlType::F32;
    std::vector<std::int64_t> dims;  // innermost first (ggml's ne[0], ne[1], …): an HF shape reversed

    std::uint64_t numel() const;
    std::uint64_t nbytes() const;  // for a spec the writer accepted
};

// Where everything of a GGUF file goes: the header, metadata and tensor table as bytes, each tensor's absolute
// offset, the aligned start of the data and the file's size. A pure function of the plan: the writer lays its
// file out with it, and estimates size a file before writing it. Checks the plan as GgufWriter documents.
struct GgufLayout {
    std::string head;
    std::vector<std::uint64_t> offsets;
    std::uint64_t dataOffset = 0;
    std::uint64_t fileSize = 0;
};
GgufLayout layoutGguf(const std::string& file, const GgufMetadata& metadata, const std::vector<GgufTensorSpec>& tensors,
                      std::uint32_t alignment = 32);

struct GgufWriteOptions {
    bool force = false;                            // replace an existing destination
    std::vector<std::filesystem::path> inputs;     // folders or files the output must neither replace nor sit inside
    std::uint32_t alignment = 32;                  // a power of two; written as general.alignment when not 32
};

class GgufWriter {
public:
    // Checks the plan (tensor names unique, 1–4 positive dims, innermost dim a multiple of the type's
    // block size, name shorter than ggml's 64-byte limit), then creates the partial file and writes the
    // header, metadata and tensor table. A refused plan is a UsageError naming the tensor.
    GgufWriter(const std::filesystem::path& dest, const GgufMetadata& metadata, std::vector<GgufTensorSpec> tensors,
               const GgufWriteOptions& options = {});
    ~GgufWriter();  // without finish(): the partial file is removed, the destination untouched
    GgufWriter(const GgufWriter&) = delete;
    GgufWriter& operator=(const GgufWriter&) = delete;

    // Appends n bytes to tensor `name`; the chunks of one tensor arrive in order, tensors in any order.
    void write(std::string_view name, const void* data, std::size_t n);
    // Checks that every tensor is complete, sizes and syncs the file, renames it onto the destination.
    void finish();

    const std::filesystem::path& destination() const { return dest_; }
    std::uint64_t fileSize() const { return fileSize_; }
    std::uint64_t dataOffset() const { return dataOffset_; }  // aligned start of the tensor data

private:
    struct Slot {
        std::uint64_t offset = 0;  // absolute
        std::uint64_t nbytes = 0;
        std::uint64_t written = 0;
    };

    std::filesystem::path dest_;
    bool force_ = false;
    std::unique_ptr<AtomicOutputDir> out_;
    std::filesystem::path partialFile_;
    FileHandle file_;
    std::vector<GgufTensorSpec> tensors_;
    std::vector<Slot> slots_;
    std::unordered_map<std::string, std::size_t> byName_;
    std::uint64_t dataOffset_ = 0;
    std::uint64_t fileSize_ = 0;
    bool finished_ = false;
};

}  // namespace whittle
