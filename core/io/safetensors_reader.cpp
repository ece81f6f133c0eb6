#include "core/io/safetensors_reader.h"

#include <nlohmann/json.hpp>

#include <fcntl.h>

#include <algorithm>
#include <limits>

#include "core/error.h"
#include "core/io/json_file.h"
#include "core/utf8.h"

namespace whittle {

std::uint64_t TensorInfo::numel() const {
    std::uint64_t n = 1;
    for (auto d : shape) n *= std::uint64_t(d);
    return n;
}

std::string shapeToString(const std::vector<std::int64_t>& shape) {
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

TensorView::TensorView(const TensorInfo& info, std::shared_ptr<const MappedRegion> region)
    : info_(&info), region_(std::move(region)) {}

namespace {

std::uint64_t parseOffset(const Json& v, const std::string& file, const std::string& name) {
    if (!v.is_number_unsigned()) throw FormatError(file, name, "data_offsets must be non-negative integers");
    return v.get<std::uint64_t>();
}

}  // namespace

SafetensorsFile::SafetensorsFile(const std::filesystem::path& path) : file_(FileHandle::openRead(path)) {
    const std::string& p = file_.path();
    // Only the header is read here: no readahead may pull tensor pages into the page cache.
    ::posix_fadvise(file_.fd(), 0, 0, POSIX_FADV_RANDOM);
    fileSize_ = file_.size();
    if (fileSize_ < 8) throw FormatError(p, {}, "file is truncated: " + std::to_string(fileSize_) +
                                                    " bytes, a safetensors file has at least an 8-byte header length");
    unsigned char lenBytes[8];
    file_.preadExact(lenBytes, 8, 0);
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | lenBytes[i];
    if (n > kMaxHeaderBytes)
        throw FormatError(p, {}, "header length " + std::to_string(n) + " exceeds the 100 MB limit");
    if (n + 8 > fileSize_)
        throw FormatError(p, {}, "header length " + std::to_string(n) + " runs past the end of the file (" +
                                     std::to_string(fileSize_) + " bytes)");
    headerLength_ = n;
    std::string header(n, '\0');
    file_.preadExact(header.data(), n, 8);
    if (!utf8::isValid(header)) throw FormatError(p, {}, "header is not valid UTF-8");
    const auto first = header.find_first_not_of(" \t\r\n");
    if (first == std::string::npos || header[first] != '{') throw FormatError(p, {}, "header is not a JSON object");
    const Json j = parseJson(header, p);

    const std::uint64_t dataStart = 8 + n;
    struct Raw {
        std::string name;
        DType dtype;
        std::vector<std::int64_t> shape;
        std::uint64_t begin, end;
    };
    std::vector<Raw> raw;
    for (auto it = j.begin(); it != j.end(); ++it) {
        const std::string& name = it.key();
        const Json& v = it.value();
        if (name == "__metadata__") {
            if (!v.is_object()) throw FormatError(p, {}, "__metadata__ must be an object of strings");
            for (auto m = v.begin(); m != v.end(); ++m) {
                if (!m.value().is_string())
                    throw FormatError(p, {}, "__metadata__ value for '" + m.key() + "' is not a string");
                metadata_[m.key()] = m.value().get<std::string>();
            }
            continue;
        }
        if (!v.is_object()) throw FormatError(p, name, "header entry is not an object");
        const auto dt = v.find("dtype");
        const auto sh = v.find("shape");
        const auto off = v.find("data_offsets");
        if (dt == v.end() || !dt->is_string()) throw FormatError(p, name, "missing or non-string 'dtype'");
        if (sh == v.end() || !sh->is_array()) throw FormatError(p, name, "missing or non-array 'shape'");
        if (off == v.end() || !off->is_array() || off->size() != 2)
            throw FormatError(p, name, "'data_offsets' must be an array of two integers");
        const auto dtype = parseDType(dt->get<std::string>());
        if (!dtype) throw FormatError(p, name, "unknown dtype '" + dt->get<std::string>() + "'");
        Raw r{name, *dtype, {}, parseOffset((*off)[0], p, name), parseOffset((*off)[1], p, name)};
        std::uint64_t numel = 1;
        for (const auto& d : *sh) {
            if (!d.is_number_unsigned()) throw FormatError(p, name, "shape dimensions must be non-negative integers");
            const auto dim = d.get<std::uint64_t>();
            if (dim > std::uint64_t(std::numeric_limits<std::int64_t>::max()) ||
                (dim != 0 && numel > std::numeric_limits<std::uint64_t>::max() / dim))
                throw FormatError(p, name, "shape overflows");
            numel *= dim;
            r.shape.push_back(std::int64_t(dim));
        }
        if (numel > std::numeric_limits<std::uint64_t>::max() / dtypeSize(*dtype))
            throw FormatError(p, name, "shape overflows");
        if (r.end < r.begin) throw FormatError(p, name, "data_offsets end before they begin");
        const std::uint64_t expect = numel * dtypeSize(*dtype);
        if (r.end - r.begin != expect)
            throw FormatError(p, name, "shape " + shapeToString(r.shape) + " of " + std::string(dtypeName(*dtype)) +
                                           " needs " + std::to_string(expect) + " bytes but data_offsets span " +
                                           std::to_string(r.end - r.begin));
        raw.push_back(std::move(r));
    }
    // The reference library requires the tensors, sorted by offset, to tile the data section exactly.
    std::sort(raw.begin(), raw.end(), [](const Raw& a, const Raw& b) {
        return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    const std::uint64_t dataBytes = fileSize_ - dataStart;
    std::uint64_t cursor = 0;
    for (const Raw& r : raw) {
        if (r.begin < cursor) throw FormatError(p, r.name, "data range overlaps the previous tensor");
        if (r.begin > cursor)
            throw FormatError(p, r.name, "gap of " + std::to_string(r.begin - cursor) +
                                             " bytes before this tensor's data (tensors must be contiguous)");
        if (r.end > dataBytes)
            throw FormatError(p, r.name, "data range [" + std::to_string(r.begin) + ", " + std::to_string(r.end) +
                                             ") runs past the end of the file (data section has " +
                                             std::to_string(dataBytes) + " bytes)");
        cursor = r.end;
    }
    if (cursor != dataBytes)
        throw FormatError(p, {}, std::to_string(dataBytes - cursor) +
                                     " bytes after the last tensor are not described by the header");
    tensors_.reserve(raw.size());
    for (Raw& r : raw) {
        index_.emplace(r.name, tensors_.size());
        tensors_.push_back(TensorInfo{std::move(r.name), r.dtype, std::move(r.shape), dataStart + r.begin,
                                      r.end - r.begin});
    }
}

const TensorInfo* SafetensorsFile::find(std::string_view name) const {
    const auto it = index_.find(std::string(name));
    return it == index_.end() ? nullptr : &tensors_[it->second];
}

TensorView SafetensorsFile::view(const TensorInfo& t) const {
    return TensorView(t, std::make_shared<const MappedRegion>(file_, t.offset, t.nbytes));
}

void SafetensorsFile::read(const TensorInfo& t, void* dst, std::uint64_t offsetInTensor, std::uint64_t n) const {
    if (offsetInTensor > t.nbytes || n > t.nbytes - offsetInTensor)
        throw Error(path(), t.name, "read past the end of the tensor");
    file_.preadExact(dst, n, t.offset + offsetInTensor);
}

}  // namespace whittle
