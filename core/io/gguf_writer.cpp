#include "core/io/gguf_writer.h"

#include <stdio.h>

#include <bit>
#include <cerrno>
#include <fcntl.h>
#include <limits>

#include "core/error.h"
#include "core/io/atomic_output.h"
#include "core/utf8.h"

namespace fs = std::filesystem;

namespace whittle {

namespace {

constexpr std::uint32_t kDefaultAlignment = 32;
constexpr std::size_t kMaxDims = 4;
constexpr std::size_t kMaxTensorName = 63;  // ggml's GGML_MAX_NAME (64) includes the terminating NUL
constexpr char kGgufMagic[4] = {'G', 'G', 'U', 'F'};
constexpr std::uint32_t kGgufVersion = 3;

// GGUF is little-endian; encode byte by byte so the file does not depend on the host.
void putLE(std::string& out, std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out.push_back(char((v >> (8 * i)) & 0xff));
}
void putString(std::string& out, std::string_view s) {
    putLE(out, s.size(), 8);
    out.append(s);
}

int scalarBytes(GgufType t) {
    switch (t) {
        case GgufType::UINT8: case GgufType::INT8: case GgufType::BOOL: return 1;
        case GgufType::UINT16: case GgufType::INT16: return 2;
        case GgufType::UINT32: case GgufType::INT32: case GgufType::FLOAT32: return 4;
        case GgufType::UINT64: case GgufType::INT64: case GgufType::FLOAT64: return 8;
        default: return 0;
    }
}

// The range of an integer element type, as int64 bounds (UINT64 is capped at INT64_MAX by the span type).
bool integerRange(GgufType t, std::int64_t* lo, std::int64_t* hi) {
    switch (t) {
        case GgufType::UINT8: *lo = 0; *hi = 0xff; return true;
        case GgufType::INT8: *lo = -128; *hi = 127; return true;
        case GgufType::UINT16: *lo = 0; *hi = 0xffff; return true;
        case GgufType::INT16: *lo = -32768; *hi = 32767; return true;
        case GgufType::UINT32: *lo = 0; *hi = 0xffffffffll; return true;
        case GgufType::INT32: *lo = std::numeric_limits<std::int32_t>::min(); *hi = std::numeric_limits<std::int32_t>::max(); return true;
        case GgufType::UINT64: *lo = 0; *hi = std::numeric_limits<std::int64_t>::max(); return true;
        case GgufType::INT64: *lo = std::numeric_limits<std::int64_t>::min(); *hi = std::numeric_limits<std::int64_t>::max(); return true;
        default: return false;
    }
}

std::uint64_t alignUp(std::uint64_t n, std::uint64_t a) { return (n + a - 1) / a * a; }

std::string dimsText(const std::vector<std::int64_t>& dims) {
    std::string s = "[";
    for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
    return s + "]";
}

}  // namespace

// ---- GgufMetadata ----------------------------------------------------------------------------------

void GgufMetadata::beginEntry(std::string_view key, GgufType type) {
    if (key.empty()) throw UsageError("a GGUF metadata key must not be empty");
    if (!utf8::isValid(key)) throw UsageError("GGUF metadata key '" + std::string(key) + "' is not valid UTF-8");
    if (!keys_.insert(std::string(key)).second)
        throw UsageError("GGUF metadata key '" + std::string(key) + "' is set twice");
    putString(bytes_, key);
    putLE(bytes_, std::uint32_t(type), 4);
    ++count_;
}

void GgufMetadata::beginArray(std::string_view key, GgufType elementType, std::uint64_t n) {
    beginEntry(key, GgufType::ARRAY);
    putLE(bytes_, std::uint32_t(elementType), 4);
    putLE(bytes_, n, 8);
}

void GgufMetadata::addUint8(std::string_view k, std::uint8_t v) { beginEntry(k, GgufType::UINT8); putLE(bytes_, v, 1); }
void GgufMetadata::addInt8(std::string_view k, std::int8_t v) { beginEntry(k, GgufType::INT8); putLE(bytes_, std::uint8_t(v), 1); }
void GgufMetadata::addUint16(std::string_view k, std::uint16_t v) { beginEntry(k, GgufType::UINT16); putLE(bytes_, v, 2); }
void GgufMetadata::addInt16(std::string_view k, std::int16_t v) { beginEntry(k, GgufType::INT16); putLE(bytes_, std::uint16_t(v), 2); }
void GgufMetadata::addUint32(std::string_view k, std::uint32_t v) { beginEntry(k, GgufType::UINT32); putLE(bytes_, v, 4); }
void GgufMetadata::addInt32(std::string_view k, std::int32_t v) { beginEntry(k, GgufType::INT32); putLE(bytes_, std::uint32_t(v), 4); }
void GgufMetadata::addUint64(std::string_view k, std::uint64_t v) { beginEntry(k, GgufType::UINT64); putLE(bytes_, v, 8); }
void GgufMetadata::addInt64(std::string_view k, std::int64_t v) { beginEntry(k, GgufType::INT64); putLE(bytes_, std::uint64_t(v), 8); }
void GgufMetadata::addFloat32(std::string_view k, float v) {
    beginEntry(k, GgufType::FLOAT32);
    putLE(bytes_, std::bit_cast<std::uint32_t>(v), 4);
}
void GgufMetadata::addFloat64(std::string_view k, double v) {
    beginEntry(k, GgufType::FLOAT64);
    putLE(bytes_, std::bit_cast<std::uint64_t>(v), 8);
}
void GgufMetadata::addBool(std::string_view k, bool v) { beginEntry(k, GgufType::BOOL); putLE(bytes_, v ? 1 : 0, 1); }
void GgufMetadata::addString(std::string_view k, std::string_view v) {
    beginEntry(k, GgufType::STRING);
    putString(bytes_, v);
}

void GgufMetadata::addIntArray(std::string_view key, GgufType elementType, std::span<const std::int64_t> values) {
    std::int64_t lo = 0, hi = 0;
    if (!integerRange(elementType, &lo, &hi))
        throw UsageError("GGUF metadata key '" + std::string(key) + "': " + std::string(ggufTypeName(elementType)) +
                         " is not an integer element type");
    for (std::size_t i = 0; i < values.size(); ++i)
        if (values[i] < lo || values[i] > hi)
            throw UsageError("GGUF metadata key '" + std::string(key) + "': element " + std::to_string(i) + " (" +
                             std::to_string(values[i]) + ") does not fit " + std::string(ggufTypeName(elementType)));
    beginArray(key, elementType, values.size());
    const int n = scalarBytes(elementType);
    for (const std::int64_t v : values) putLE(bytes_, std::uint64_t(v), n);
}

void GgufMetadata::addFloat32Array(std::string_view key, std::span<const float> values) {
    beginArray(key, GgufType::FLOAT32, values.size());
    for (const float v : values) putLE(bytes_, std::bit_cast<std::uint32_t>(v), 4);
}

void GgufMetadata::addFloat64Array(std::string_view key, std::span<const double> values) {
    beginArray(key, GgufType::FLOAT64, values.size());
    for (const double v : values) putLE(bytes_, std::bit_cast<std::uint64_t>(v), 8);
}

void GgufMetadata::addBoolArray(std::string_view key, const std::vector<bool>& values) {
    beginArray(key, GgufType::BOOL, values.size());
    for (const bool v : values) putLE(bytes_, v ? 1 : 0, 1);
}

void GgufMetadata::addStringArray(std::string_view key, std::span<const std::string> values) {
    beginArray(key, GgufType::STRING, values.size());
    for (const auto& v : values) putString(bytes_, v);
}

// ---- GgufTensorSpec --------------------------------------------------------------------------------

std::uint64_t GgufTensorSpec::numel() const {
    std::uint64_t n = 1;
    for (const auto d : dims) n *= std::uint64_t(d);
    return n;
}

std::uint64_t GgufTensorSpec::nbytes() const {
    const GgmlTypeTraits& t = ggmlTypeTraits(type);
    return numel() / t.blockSize * t.typeSize;
}

// ---- GgufWriter ------------------------------------------------------------------------------------

GgufLayout layoutGguf(const std::string& file, const GgufMetadata& metadata, const std::vector<GgufTensorSpec>& tensors,
                      std::uint32_t align) {
    if (align == 0 || (align & (align - 1)) != 0)
        throw UsageError(file, {}, "GGUF alignment " + std::to_string(align) + " is not a power of two");
    if (metadata.has("general.alignment"))
        throw UsageError(file, {}, "general.alignment is set through GgufWriteOptions::alignment, not as metadata");

    // Validate the whole plan before anything touches the disk.
    GgufLayout l;
    l.offsets.resize(tensors.size());
    std::unordered_set<std::string> names;
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        const GgufTensorSpec& t = tensors[i];
        if (t.name.empty()) throw UsageError(file, {}, "tensor #" + std::to_string(i) + " has an empty name");
        if (t.name.size() > kMaxTensorName)
            throw UsageError(file, t.name, "name has " + std::to_string(t.name.size()) + " bytes; ggml allows at most " +
                                               std::to_string(kMaxTensorName));
        if (!utf8::isValid(t.name)) throw UsageError(file, t.name, "name is not valid UTF-8");
        if (!names.insert(t.name).second) throw UsageError(file, t.name, "tensor declared twice");
        const GgmlTypeTraits* traits = ggmlTypeTraits(std::uint32_t(t.type));
        if (!traits) throw UsageError(file, t.name, "unknown ggml type " + std::to_string(std::uint32_t(t.type)));
        if (t.dims.empty() || t.dims.size() > kMaxDims)
            throw UsageError(file, t.name, "has " + std::to_string(t.dims.size()) + " dimensions; GGUF needs 1 to " +
                                               std::to_string(kMaxDims));
        std::uint64_t numel = 1;
        for (const auto d : t.dims) {
            if (d <= 0) throw UsageError(file, t.name, "shape " + dimsText(t.dims) + " has a dimension that is not positive");
            if (numel > std::uint64_t(std::numeric_limits<std::int64_t>::max()) / std::uint64_t(d))
                throw UsageError(file, t.name, "shape " + dimsText(t.dims) + " overflows");
            numel *= std::uint64_t(d);
        }
        if (std::uint64_t(t.dims[0]) % traits->blockSize != 0)
            throw UsageError(file, t.name, "innermost dimension " + std::to_string(t.dims[0]) + " is not a multiple of the " +
                                               std::string(traits->name) + " block size " +
                                               std::to_string(traits->blockSize));
    }

    // Header, metadata (plus general.alignment when it is not the default), tensor table.
    std::string& head = l.head;
    head.assign(kGgufMagic, 4);
    putLE(head, kGgufVersion, 4);
    putLE(head, tensors.size(), 8);
    putLE(head, metadata.size() + (align != kDefaultAlignment ? 1 : 0), 8);
    head += metadata.encoded();
    if (align != kDefaultAlignment) {
        putString(head, "general.alignment");
        putLE(head, std::uint32_t(GgufType::UINT32), 4);
        putLE(head, align, 4);
    }
    std::uint64_t rel = 0;
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        const GgufTensorSpec& t = tensors[i];
        putString(head, t.name);
        putLE(head, t.dims.size(), 4);
        for (const auto d : t.dims) putLE(head, std::uint64_t(d), 8);
        putLE(head, std::uint32_t(t.type), 4);
        putLE(head, rel, 8);
        l.offsets[i] = rel;
        rel += alignUp(t.nbytes(), align);  // every tensor, the last one too, is padded (gguf-py does)
    }
    l.dataOffset = alignUp(head.size(), align);
    for (auto& o : l.offsets) o += l.dataOffset;
    l.fileSize = l.dataOffset + rel;
    return l;
}

GgufWriter::GgufWriter(const fs::path& dest, const GgufMetadata& metadata, std::vector<GgufTensorSpec> tensors,
                       const GgufWriteOptions& options)
    : dest_(dest), force_(options.force), tensors_(std::move(tensors)) {
    const GgufLayout layout = layoutGguf(dest.string(), metadata, tensors_, options.alignment);
    slots_.resize(tensors_.size());
    for (std::size_t i = 0; i < tensors_.size(); ++i) {
        byName_.emplace(tensors_[i].name, i);
        slots_[i].offset = layout.offsets[i];
        slots_[i].nbytes = tensors_[i].nbytes();
    }
    dataOffset_ = layout.dataOffset;
    fileSize_ = layout.fileSize;
    const std::string& head = layout.head;

    // The partial folder gives the input checks, the existing-output refusal and stale-partial cleanup;
    // the file inside it is renamed onto the destination by finish().
    out_ = std::make_unique<AtomicOutputDir>(dest, force_, options.inputs);
    dest_ = out_->destination();
    partialFile_ = out_->path() / dest_.filename();
    file_ = FileHandle::createWrite(partialFile_);
    file_.pwriteAll(head.data(), head.size(), 0);
}

GgufWriter::~GgufWriter() = default;  // out_ removes the partial folder (and the file in it) unless finished

void GgufWriter::write(std::string_view name, const void* data, std::size_t n) {
    if (finished_) throw UsageError(dest_.string(), std::string(name), "write after finish()");
    const auto it = byName_.find(std::string(name));
    if (it == byName_.end()) throw UsageError(dest_.string(), std::string(name), "tensor was not declared to the GGUF writer");
    Slot& s = slots_[it->second];
    if (n > s.nbytes - s.written)
        throw UsageError(dest_.string(), std::string(name),
                         std::to_string(s.written + n) + " bytes written but the tensor holds " + std::to_string(s.nbytes) +
                             " (" + std::string(ggmlTypeTraits(tensors_[it->second].type).name) + " " +
                             dimsText(tensors_[it->second].dims) + ")");
    file_.pwriteAll(data, n, s.offset + s.written);
    s.written += n;
}

void GgufWriter::finish() {
    if (finished_) return;
    for (std::size_t i = 0; i < tensors_.size(); ++i)
        if (slots_[i].written != slots_[i].nbytes)
            throw UsageError(dest_.string(), tensors_[i].name,
                             "only " + std::to_string(slots_[i].written) + " of " + std::to_string(slots_[i].nbytes) +
                                 " bytes were written");
    // Padding and gaps read back as zeros once the file has its final size.
    file_.truncate(fileSize_);
    file_.sync();
    file_.close();
    if (!force_) {
        if (::renameat2(AT_FDCWD, partialFile_.c_str(), AT_FDCWD, dest_.c_str(), RENAME_NOREPLACE) != 0) {
            const int err = errno;
            if (err == EEXIST) throw UsageError(dest_.string(), {}, "output appeared while writing; not replaced");
            if (err != EINVAL && err != ENOSYS)
                throw IoError(dest_.string(), {}, "cannot move output into place: " + errnoText(err));
            std::error_code ec;
            if (fs::exists(dest_, ec)) throw UsageError(dest_.string(), {}, "output appeared while writing; not replaced");
            if (::rename(partialFile_.c_str(), dest_.c_str()) != 0)
                throw IoError(dest_.string(), {}, "cannot move output into place: " + errnoText(errno));
        }
    } else if (::rename(partialFile_.c_str(), dest_.c_str()) != 0) {  // replaces a file atomically
        throw IoError(dest_.string(), {}, "cannot move output into place: " + errnoText(errno));
    }
    fsyncDirectory(dest_.parent_path());
    finished_ = true;
    out_.reset();  // removes the now empty partial folder
}

}  // namespace whittle
