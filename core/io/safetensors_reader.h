#pragma once
// Reads one .safetensors file: the header is read with pread and validated completely before use
// (the reference library's rules); tensor data is reached through on-demand memory mappings.
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/io/dtype.h"
#include "core/io/file.h"

namespace whittle {

struct TensorInfo {
    std::string name;
    DType dtype = DType::F32;
    std::vector<std::int64_t> shape;
    std::uint64_t offset = 0;  // absolute byte offset of the data in the file
    std::uint64_t nbytes = 0;

    std::uint64_t numel() const;
};

std::string shapeToString(const std::vector<std::int64_t>& shape);

// Bytes of one tensor, mapped on demand. The pointer may be misaligned for the dtype: read elements
// with loadAsFloat or memcpy, never by casting.
class TensorView {
public:
    TensorView(const TensorInfo& info, std::shared_ptr<const MappedRegion> region);
    const TensorInfo& info() const { return *info_; }
    const std::byte* data() const { return region_->data(); }
    std::uint64_t size() const { return region_->size(); }
    float at(std::uint64_t i) const { return loadAsFloat(info_->dtype, data(), i); }
    void dropPages() const { region_->dropPages(); }

private:
    const TensorInfo* info_;
    std::shared_ptr<const MappedRegion> region_;
};

// Where a checkpoint's tensor bytes come from: a .safetensors file, or a stream of transforms over one
// (core/pipeline/tensor_stream.h streamCheckpoint), so a stage that reads a Checkpoint reads either alike.
class TensorSource {
public:
    virtual ~TensorSource() = default;
    virtual const std::string& path() const = 0;  // what errors name
    // The tensor's bytes mapped; a stream has no mapping and throws (stages that run a model read a folder).
    virtual TensorView view(const TensorInfo& t) const = 0;
    // Copies bytes [offsetInTensor, offsetInTensor + n) of a tensor into dst.
    virtual void read(const TensorInfo& t, void* dst, std::uint64_t offsetInTensor, std::uint64_t n) const = 0;
};

class SafetensorsFile final : public TensorSource {
public:
    static constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;

    explicit SafetensorsFile(const std::filesystem::path& path);

    const std::string& path() const override { return file_.path(); }
    const std::vector<TensorInfo>& tensors() const { return tensors_; }  // in data order
    const TensorInfo* find(std::string_view name) const;
    const std::map<std::string, std::string>& metadata() const { return metadata_; }
    std::uint64_t headerBytes() const { return 8 + headerLength_; }
    std::uint64_t fileSize() const { return fileSize_; }

    TensorView view(const TensorInfo& t) const override;
    // Copies a tensor's bytes with pread (streaming stages use this with a reused buffer).
    void read(const TensorInfo& t, void* dst, std::uint64_t offsetInTensor, std::uint64_t n) const override;

private:
    FileHandle file_;
    std::uint64_t headerLength_ = 0;
    std::uint64_t fileSize_ = 0;
    std::vector<TensorInfo> tensors_;
    std::unordered_map<std::string, std::size_t> index_;
    std::map<std::string, std::string> metadata_;
};

}  // namespace whittle
