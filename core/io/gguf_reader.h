#pragma once
// Reads one GGUF file (versions 2 and 3, little-endian): the metadata and the tensor table are read
// with buffered pread and validated completely before use; tensor data is read on demand with pread.
// Every failure is a FormatError (or IoError) naming the file, the tensor if any, and the problem.
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/io/file.h"

namespace whittle {

// Metadata value types, numbered as in the GGUF specification.
enum class GgufType : std::uint32_t {
    UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
    STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12
};
std::string_view ggufTypeName(GgufType t);

// ggml tensor types, numbered as in ggml.h (ids 4, 5 and 31-33, 36-38 were retired by ggml; 41 and up are
// types newer than Whittle reads).
enum class GgmlType : std::uint32_t {
    F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
    Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
    IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22, IQ4_XS = 23,
    I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
    TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39,
    NVFP4 = 40  // block_nvfp4: 4 E4M3 scales + 32 bytes of E2M1 codes per 64 values (core/quant/nvfp4.h)
};

struct GgmlTypeTraits {
    GgmlType type;
    std::string_view name;    // "Q4_K"
    std::uint32_t blockSize;  // elements per block (1 for plain types)
    std::uint32_t typeSize;   // bytes per block
};
// nullptr for an id ggml does not define (or no longer supports in files).
const GgmlTypeTraits* ggmlTypeTraits(std::uint32_t id);
const GgmlTypeTraits& ggmlTypeTraits(GgmlType t);

struct GgufTensorInfo {
    std::string name;
    GgmlType ggmlType = GgmlType::F32;
    std::vector<std::int64_t> dims;  // innermost first (ggml's ne[0], ne[1], ...)
    std::uint64_t offset = 0;        // absolute byte offset of the data in the file
    std::uint64_t nbytes = 0;

    std::uint64_t numel() const;
};

struct GgufKeyInfo {
    std::string name;
    GgufType type = GgufType::UINT8;
    GgufType arrayType = GgufType::UINT8;  // element type, for ARRAY only
    std::uint64_t arrayLength = 0;         // for ARRAY only
};

class GgufFile {
public:
    explicit GgufFile(const std::filesystem::path& path);

    const std::string& path() const { return file_.path(); }
    std::uint32_t version() const { return version_; }
    std::uint32_t alignment() const { return alignment_; }
    std::uint64_t dataOffset() const { return dataOffset_; }  // aligned end of the header
    std::uint64_t fileSize() const { return fileSize_; }

    // Metadata, in file order. A missing key or a value of the wrong type is a FormatError naming the key.
    const std::vector<GgufKeyInfo>& keys() const { return keys_; }
    bool has(std::string_view key) const;
    const std::string& getString(std::string_view key) const;
    std::uint64_t getUint(std::string_view key) const;  // any integer type whose value is >= 0
    double getFloat(std::string_view key) const;        // FLOAT32 or FLOAT64
    bool getBool(std::string_view key) const;
    std::vector<std::string> getStringArray(std::string_view key) const;
    std::vector<std::int64_t> getIntArray(std::string_view key) const;  // integer or BOOL elements
    std::vector<double> getFloatArray(std::string_view key) const;      // FLOAT32 or FLOAT64 elements

    const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }  // in table order
    const GgufTensorInfo* find(std::string_view name) const;
    // Copies bytes of a tensor with pread (streaming stages use this with a reused buffer).
    void read(const GgufTensorInfo& t, void* dst, std::uint64_t offsetInTensor, std::uint64_t n) const;

private:
    class Parser;
    friend class Parser;
    struct Value {
        std::uint64_t scalar = 0;         // numeric and BOOL scalars: the value's bits, zero-extended
        std::string bytes;                // STRING: the text; numeric ARRAY: the raw little-endian elements;
                                          // STRING ARRAY: the elements concatenated
        std::vector<std::uint64_t> ends;  // STRING ARRAY: end of each element in bytes
    };
    const Value& lookup(std::string_view key, const GgufKeyInfo** info) const;

    FileHandle file_;
    std::uint64_t fileSize_ = 0;
    std::uint32_t version_ = 0;
    std::uint32_t alignment_ = 32;
    std::uint64_t dataOffset_ = 0;
    std::vector<GgufKeyInfo> keys_;
    std::vector<Value> values_;  // parallel to keys_
    std::unordered_map<std::string, std::size_t> keyIndex_;
    std::vector<GgufTensorInfo> tensors_;
    std::unordered_map<std::string, std::size_t> tensorIndex_;
};

}  // namespace whittle
