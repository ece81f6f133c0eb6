#include "core/io/gguf_reader.h"

#include <fcntl.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <memory>

#include "core/error.h"

namespace whittle {

namespace {

constexpr GgmlTypeTraits kGgmlTypes[] = {
    {GgmlType::F32, "F32", 1, 4},          {GgmlType::F16, "F16", 1, 2},
    {GgmlType::Q4_0, "Q4_0", 32, 18},      {GgmlType::Q4_1, "Q4_1", 32, 20},
    {GgmlType::Q5_0, "Q5_0", 32, 22},      {GgmlType::Q5_1, "Q5_1", 32, 24},
    {GgmlType::Q8_0, "Q8_0", 32, 34},      {GgmlType::Q8_1, "Q8_1", 32, 36},
    {GgmlType::Q2_K, "Q2_K", 256, 84},     {GgmlType::Q3_K, "Q3_K", 256, 110},
    {GgmlType::Q4_K, "Q4_K", 256, 144},    {GgmlType::Q5_K, "Q5_K", 256, 176},
    {GgmlType::Q6_K, "Q6_K", 256, 210},    {GgmlType::Q8_K, "Q8_K", 256, 292},
    {GgmlType::IQ2_XXS, "IQ2_XXS", 256, 66}, {GgmlType::IQ2_XS, "IQ2_XS", 256, 74},
    {GgmlType::IQ3_XXS, "IQ3_XXS", 256, 98}, {GgmlType::IQ1_S, "IQ1_S", 256, 50},
    {GgmlType::IQ4_NL, "IQ4_NL", 32, 18},  {GgmlType::IQ3_S, "IQ3_S", 256, 110},
    {GgmlType::IQ2_S, "IQ2_S", 256, 82},   {GgmlType::IQ4_XS, "IQ4_XS", 256, 136},
    {GgmlType::I8, "I8", 1, 1},            {GgmlType::I16, "I16", 1, 2},
    {GgmlType::I32, "I32", 1, 4},          {GgmlType::I64, "I64", 1, 8},
    {GgmlType::F64, "F64", 1, 8},          {GgmlType::IQ1_M, "IQ1_M", 256, 56},
    {GgmlType::BF16, "BF16", 1, 2},        {GgmlType::TQ1_0, "TQ1_0", 256, 54},
    {GgmlType::TQ2_0, "TQ2_0", 256, 66},   {GgmlType::MXFP4, "MXFP4", 32, 17},
    {GgmlType::NVFP4, "NVFP4", 64, 36},
};

constexpr std::uint32_t kMaxValueType = 12;
constexpr std::uint32_t kMaxDims = 4;
// The smallest encodings: a key-value pair (empty key, type, one-byte value) and a tensor info
// (empty name, n_dims 0, type, offset). Counts are checked against them before anything is allocated.
constexpr std::uint64_t kMinKvBytes = 8 + 4 + 1;
constexpr std::uint64_t kMinTensorInfoBytes = 8 + 4 + 4 + 8;
constexpr std::size_t kChunkBytes = 1 << 20;
constexpr std::size_t kMaxReserve = 1 << 22;  // elements reserved up front for an array, at most

// Byte size of a scalar of value type t (STRING: its length field).
std::uint64_t scalarSize(GgufType t) {
    switch (t) {
        case GgufType::UINT8: case GgufType::INT8: case GgufType::BOOL: return 1;
        case GgufType::UINT16: case GgufType::INT16: return 2;
        case GgufType::UINT32: case GgufType::INT32: case GgufType::FLOAT32: return 4;
        case GgufType::STRING: case GgufType::UINT64: case GgufType::INT64: case GgufType::FLOAT64: return 8;
        case GgufType::ARRAY: return 12;
    }
    return 1;
}

bool isInteger(GgufType t) {
    switch (t) {
        case GgufType::UINT8: case GgufType::INT8: case GgufType::UINT16: case GgufType::INT16:
        case GgufType::UINT32: case GgufType::INT32: case GgufType::UINT64: case GgufType::INT64: return true;
        default: return false;
    }
}

bool isSigned(GgufType t) {
    return t == GgufType::INT8 || t == GgufType::INT16 || t == GgufType::INT32 || t == GgufType::INT64;
}

std::uint64_t loadLE(const unsigned char* p, std::size_t n) {
    std::uint64_t v = 0;
    for (std::size_t i = n; i-- > 0;) v = (v << 8) | p[i];
    return v;
}

// Interprets the zero-extended bits of an integer of type t as a signed 64-bit value where t is signed.
std::int64_t signExtend(std::uint64_t bits, GgufType t) {
    const unsigned width = unsigned(scalarSize(t)) * 8;
    if (!isSigned(t) || width == 64) return std::int64_t(bits);
    const std::uint64_t sign = 1ull << (width - 1);
    return std::int64_t((bits ^ sign) - sign);
}

bool validUtf8(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (len == 0 || i + std::size_t(len) > s.size()) return false;
        std::uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
        for (int k = 1; k < len; ++k) {
            const auto cc = static_cast<unsigned char>(s[i + std::size_t(k)]);
            if ((cc >> 6) != 2) return false;
            cp = (cp << 6) | (cc & 0x3f);
        }
        const std::uint32_t minCp[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < minCp[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += std::size_t(len);
    }
    return true;
}

// Bytes as text for an error message: printable ASCII kept, the rest as \xNN.
std::string escaped(std::string_view s) {
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out += ch;
        } else {
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

std::string dimsToString(const std::vector<std::uint64_t>& dims) {
    std::string s = "[";
    for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
    return s + "]";
}

std::string typeDescription(const GgufKeyInfo& k) {
    if (k.type != GgufType::ARRAY) return std::string(ggufTypeName(k.type));
    return "an ARRAY of " + std::string(ggufTypeName(k.arrayType));
}

}  // namespace

std::string_view ggufTypeName(GgufType t) {
    static constexpr std::string_view names[] = {"UINT8", "INT8",  "UINT16", "INT16",  "UINT32", "INT32", "FLOAT32",
                                                 "BOOL",  "STRING", "ARRAY", "UINT64", "INT64",  "FLOAT64"};
    const auto i = std::uint32_t(t);
    return i <= kMaxValueType ? names[i] : std::string_view("UNKNOWN");
}

const GgmlTypeTraits* ggmlTypeTraits(std::uint32_t id) {
    for (const auto& t : kGgmlTypes)
        if (std::uint32_t(t.type) == id) return &t;
    return nullptr;
}

const GgmlTypeTraits& ggmlTypeTraits(GgmlType t) {
    const GgmlTypeTraits* p = ggmlTypeTraits(std::uint32_t(t));
    if (!p) throw Error("unknown ggml type " + std::to_string(std::uint32_t(t)));
    return *p;
}

std::uint64_t GgufTensorInfo::numel() const {
    std::uint64_t n = 1;
    for (auto d : dims) n *= std::uint64_t(d);
    return n;
}

// Reads the header, the metadata and the tensor table front to back through a 1 MiB buffer: one
// pread per chunk, not per value. Every length and count is checked against the bytes left in the
// file before anything is allocated for it.
class GgufFile::Parser {
public:
    explicit Parser(GgufFile& g) : g_(g), path_(g.file_.path()), size_(g.fileSize_) {}

    void run() {
        readHeader();
        readMetadata();
        readAlignment();
        readTensorTable();
        g_.dataOffset_ = (pos_ + g_.alignment_ - 1) / g_.alignment_ * g_.alignment_;
        checkDataRanges();
    }

private:
    GgufFile& g_;
    const std::string& path_;
    const std::uint64_t size_;
    std::uint64_t pos_ = 0;
    std::unique_ptr<unsigned char[]> buf_;
    std::uint64_t bufStart_ = 0;
    std::size_t bufLen_ = 0;
    std::string where_ = "the header";  // for "truncated in ..." messages
    std::string tensor_;                // the tensor being read, once its name is known
    std::uint64_t tensorCount_ = 0, kvCount_ = 0;
    std::vector<std::uint64_t> relOffsets_;

    [[noreturn]] void fail(const std::string& reason) const { throw FormatError(path_, tensor_, reason); }

    std::uint64_t remaining() const { return size_ - pos_; }

    void need(std::uint64_t n) const {
        if (n > remaining())
            fail("file is truncated in " + where_ + " (" + std::to_string(n) + " bytes needed at offset " +
                 std::to_string(pos_) + ", the file has " + std::to_string(size_) + ")");
    }

    // Makes the buffer hold pos_ (the caller has checked that bytes remain).
    void fill() {
        if (pos_ >= bufStart_ && pos_ < bufStart_ + bufLen_) return;
        if (!buf_) buf_.reset(new unsigned char[kChunkBytes]);
        bufStart_ = pos_;
        bufLen_ = std::size_t(std::min<std::uint64_t>(kChunkBytes, remaining()));
        g_.file_.preadExact(buf_.get(), bufLen_, pos_);
    }

    // Hands the next n bytes (already checked with need) to sink(pointer, length) in buffered pieces.
    template <class Sink>
    void consume(std::uint64_t n, Sink&& sink) {
        while (n > 0) {
            fill();
            const std::size_t at = std::size_t(pos_ - bufStart_);
            const std::size_t k = std::size_t(std::min<std::uint64_t>(n, bufLen_ - at));
            sink(buf_.get() + at, k);
            pos_ += k;
            n -= k;
        }
    }

    void copy(unsigned char* out, std::size_t n) {
        consume(n, [&](const unsigned char* p, std::size_t k) {
            std::memcpy(out, p, k);
            out += k;
        });
    }

    void append(std::string& s, std::uint64_t n) {
        consume(n, [&](const unsigned char* p, std::size_t k) { s.append(reinterpret_cast<const char*>(p), k); });
    }

    std::uint64_t uint(std::size_t n) {
        need(n);
        fill();
        const std::size_t at = std::size_t(pos_ - bufStart_);
        if (bufLen_ - at >= n) {
            pos_ += n;
            return loadLE(buf_.get() + at, n);
        }
        unsigned char b[8];
        copy(b, n);
        return loadLE(b, n);
    }
    std::uint32_t u32() { return std::uint32_t(uint(4)); }
    std::uint64_t u64() { return uint(8); }

    // A GGUF string: u64 length, then the bytes. `what` names it in errors.
    void readString(std::string& out, const std::string& what) {
        const std::uint64_t n = u64();
        if (n > remaining())
            fail("string length " + std::to_string(n) + " of " + what + " runs past the end of the file (" +
                 std::to_string(remaining()) + " bytes left)");
        out.clear();
        out.reserve(std::size_t(n));
        append(out, n);
    }

    void readHeader() {
        unsigned char h[24] = {};
        const std::size_t have = std::size_t(std::min<std::uint64_t>(size_, 24));
        g_.file_.preadExact(h, have, 0);
        if (have >= 4 && std::memcmp(h, "GGUF", 4) != 0)
            fail("not a GGUF file (it starts with '" + escaped({reinterpret_cast<const char*>(h), 4}) +
                 "', expected 'GGUF')");
        if (have >= 8) {
            const auto v = std::uint32_t(loadLE(h + 4, 4));
            if (v == 1) fail("GGUF version 1 is not supported (only versions 2 and 3 are)");
            if (v != 2 && v != 3) {
                const std::uint32_t swapped = ((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >> 8) & 0xff00) | (v >> 24);
                if (swapped >= 1 && swapped <= 3)
                    fail("big-endian GGUF files are not supported (version " + std::to_string(swapped) +
                         " written big-endian)");
                fail("unsupported GGUF version " + std::to_string(v) + " (only versions 2 and 3 are supported)");
            }
            g_.version_ = v;
        }
        if (have < 24)
            fail("file is truncated in the header (" + std::to_string(size_) + " bytes, a GGUF header has 24)");
        tensorCount_ = loadLE(h + 8, 8);
        kvCount_ = loadLE(h + 16, 8);
        pos_ = 24;
        const std::uint64_t left = remaining();
        if (kvCount_ > left / kMinKvBytes)
            fail("metadata key count " + std::to_string(kvCount_) + " is impossible: the remaining " +
                 std::to_string(left) + " bytes hold at most " + std::to_string(left / kMinKvBytes));
        if (tensorCount_ > left / kMinTensorInfoBytes)
            fail("tensor count " + std::to_string(tensorCount_) + " is impossible: the remaining " +
                 std::to_string(left) + " bytes hold at most " + std::to_string(left / kMinTensorInfoBytes));
        if (kvCount_ * kMinKvBytes + tensorCount_ * kMinTensorInfoBytes > left)
            fail(std::to_string(kvCount_) + " metadata keys and " + std::to_string(tensorCount_) +
                 " tensors cannot fit in the remaining " + std::to_string(left) + " bytes");
    }

    void readMetadata() {
        g_.keys_.reserve(std::size_t(std::min<std::uint64_t>(kvCount_, 4096)));
        g_.values_.reserve(g_.keys_.capacity());
        for (std::uint64_t i = 0; i < kvCount_; ++i) {
            const std::string ordinal = "metadata key #" + std::to_string(i);
            where_ = "the name of " + ordinal;
            GgufKeyInfo k;
            readString(k.name, "the name of " + ordinal);
            if (!validUtf8(k.name)) fail("the name of " + ordinal + " is not valid UTF-8");
            if (g_.keyIndex_.count(k.name)) fail("duplicate metadata key '" + k.name + "'");
            const std::string quoted = "metadata key '" + k.name + "'";
            where_ = "the value of " + quoted;
            const std::uint32_t type = u32();
            if (type > kMaxValueType) fail(quoted + " has unknown value type " + std::to_string(type));
            k.type = GgufType(type);
            Value v;
            if (k.type == GgufType::ARRAY) {
                readArray(k, v, quoted);
            } else if (k.type == GgufType::STRING) {
                readString(v.bytes, quoted);
            } else {
                v.scalar = uint(std::size_t(scalarSize(k.type)));
                if (k.type == GgufType::BOOL && v.scalar > 1)
                    fail("BOOL value of " + quoted + " is " + std::to_string(v.scalar) + ", expected 0 or 1");
            }
            g_.keyIndex_.emplace(k.name, g_.keys_.size());
            g_.keys_.push_back(std::move(k));
            g_.values_.push_back(std::move(v));
        }
    }

    void readArray(GgufKeyInfo& k, Value& v, const std::string& quoted) {
        const std::uint32_t type = u32();
        if (type == std::uint32_t(GgufType::ARRAY))
            fail(quoted + " is an array of arrays (nested arrays are not supported)");
        if (type > kMaxValueType) fail(quoted + " has unknown array element type " + std::to_string(type));
        k.arrayType = GgufType(type);
        const std::uint64_t n = u64();
        const std::uint64_t elem = scalarSize(k.arrayType);
        if (n > remaining() / elem)
            fail("array length " + std::to_string(n) + " of " + quoted + " runs past the end of the file (" +
                 std::to_string(remaining()) + " bytes left, " + std::to_string(elem) + " or more per element)");
        k.arrayLength = n;
        if (k.arrayType != GgufType::STRING) {
            v.bytes.reserve(std::size_t(n * elem));
            append(v.bytes, n * elem);
            if (k.arrayType == GgufType::BOOL)
                for (std::size_t i = 0; i < v.bytes.size(); ++i)
                    if (static_cast<unsigned char>(v.bytes[i]) > 1)
                        fail("BOOL element " + std::to_string(i) + " of " + quoted + " is " +
                             std::to_string(static_cast<unsigned char>(v.bytes[i])) + ", expected 0 or 1");
            return;
        }
        v.ends.reserve(std::size_t(std::min<std::uint64_t>(n, kMaxReserve)));
        for (std::uint64_t i = 0; i < n; ++i) {
            const std::uint64_t len = u64();
            if (len > remaining())
                fail("string length " + std::to_string(len) + " of element " + std::to_string(i) + " of " + quoted +
                     " runs past the end of the file (" + std::to_string(remaining()) + " bytes left)");
            append(v.bytes, len);
            v.ends.push_back(v.bytes.size());
        }
    }

    void readAlignment() {
        const auto it = g_.keyIndex_.find("general.alignment");
        if (it == g_.keyIndex_.end()) return;
        const GgufKeyInfo& k = g_.keys_[it->second];
        if (k.type != GgufType::UINT32)
            fail("general.alignment must be UINT32, not " + typeDescription(k));
        const std::uint64_t a = g_.values_[it->second].scalar;
        if (a == 0 || (a & (a - 1)) != 0) fail("general.alignment " + std::to_string(a) + " is not a power of two");
        g_.alignment_ = std::uint32_t(a);
    }

    void readTensorTable() {
        g_.tensors_.reserve(std::size_t(std::min<std::uint64_t>(tensorCount_, 4096)));
        for (std::uint64_t i = 0; i < tensorCount_; ++i) {
            const std::string ordinal = "tensor info #" + std::to_string(i);
            where_ = "the name of " + ordinal;
            tensor_.clear();
            GgufTensorInfo t;
            readString(t.name, "the name of " + ordinal);
            if (!validUtf8(t.name)) fail("the name of " + ordinal + " is not valid UTF-8");
            tensor_ = t.name;
            if (g_.tensorIndex_.count(t.name)) fail("duplicate tensor name");
            where_ = "the tensor table entry of '" + t.name + "'";
            const std::uint32_t nDims = u32();
            if (nDims > kMaxDims)
                fail("has " + std::to_string(nDims) + " dimensions, at most " + std::to_string(kMaxDims) +
                     " are allowed");
            std::vector<std::uint64_t> dims(nDims);
            for (auto& d : dims) d = u64();
            std::uint64_t numel = 1;
            for (std::size_t j = 0; j < dims.size(); ++j) {
                if (dims[j] == 0) fail("dimension " + std::to_string(j) + " is 0 in " + dimsToString(dims));
                if (dims[j] > std::uint64_t(std::numeric_limits<std::int64_t>::max()) ||
                    numel > std::uint64_t(std::numeric_limits<std::int64_t>::max()) / dims[j])
                    fail("shape " + dimsToString(dims) + " overflows");
                numel *= dims[j];
            }
            const std::uint32_t type = u32();
            const GgmlTypeTraits* traits = ggmlTypeTraits(type);
            if (!traits) fail("unknown ggml type " + std::to_string(type));
            const std::uint64_t inner = dims.empty() ? 1 : dims[0];
            if (inner % traits->blockSize != 0)
                fail("innermost dimension " + std::to_string(inner) + " is not a multiple of the " +
                     std::string(traits->name) + " block size " + std::to_string(traits->blockSize));
            const std::uint64_t blocks = numel / traits->blockSize;
            if (blocks > std::numeric_limits<std::uint64_t>::max() / traits->typeSize)
                fail("shape " + dimsToString(dims) + " of " + std::string(traits->name) + " overflows");
            const std::uint64_t offset = u64();
            if (offset % g_.alignment_ != 0)
                fail("data offset " + std::to_string(offset) + " is not a multiple of the alignment " +
                     std::to_string(g_.alignment_));
            t.ggmlType = traits->type;
            t.dims.assign(dims.begin(), dims.end());
            t.nbytes = blocks * traits->typeSize;
            relOffsets_.push_back(offset);
            g_.tensorIndex_.emplace(t.name, g_.tensors_.size());
            g_.tensors_.push_back(std::move(t));
        }
        tensor_.clear();
    }

    void checkDataRanges() {
        const std::uint64_t start = g_.dataOffset_;
        const std::uint64_t dataBytes = size_ > start ? size_ - start : 0;
        std::vector<std::size_t> order(g_.tensors_.size());
        for (std::size_t i = 0; i < order.size(); ++i) {
            order[i] = i;
            const GgufTensorInfo& t = g_.tensors_[i];
            const std::uint64_t off = relOffsets_[i];
            if (off > dataBytes || t.nbytes > dataBytes - off)
                throw FormatError(path_, t.name,
                                  "data at offset " + std::to_string(off) + " (" + std::to_string(t.nbytes) +
                                      " bytes) runs past the end of the file (the data section at " +
                                      std::to_string(start) + " has " + std::to_string(dataBytes) + " bytes)");
        }
        std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
            return relOffsets_[a] != relOffsets_[b] ? relOffsets_[a] < relOffsets_[b] : a < b;
        });
        for (std::size_t k = 1; k < order.size(); ++k) {
            const std::size_t prev = order[k - 1], cur = order[k];
            if (relOffsets_[cur] < relOffsets_[prev] + g_.tensors_[prev].nbytes)
                throw FormatError(path_, g_.tensors_[cur].name,
                                  "data range overlaps tensor '" + g_.tensors_[prev].name + "'");
        }
        for (std::size_t i = 0; i < g_.tensors_.size(); ++i) g_.tensors_[i].offset = start + relOffsets_[i];
    }
};

GgufFile::GgufFile(const std::filesystem::path& path) : file_(FileHandle::openRead(path)) {
    // Only the header is read here: no readahead may pull tensor pages into the page cache.
    ::posix_fadvise(file_.fd(), 0, 0, POSIX_FADV_RANDOM);
    fileSize_ = file_.size();
    Parser(*this).run();
}

bool GgufFile::has(std::string_view key) const { return keyIndex_.count(std::string(key)) != 0; }

const GgufFile::Value& GgufFile::lookup(std::string_view key, const GgufKeyInfo** info) const {
    const auto it = keyIndex_.find(std::string(key));
    if (it == keyIndex_.end()) throw FormatError(path(), {}, "metadata key '" + std::string(key) + "' is missing");
    *info = &keys_[it->second];
    return values_[it->second];
}

namespace {
[[noreturn]] void wrongType(const std::string& path, const GgufKeyInfo& k, const char* expected) {
    throw FormatError(path, {}, "metadata key '" + k.name + "' is " + typeDescription(k) + ", expected " + expected);
}
}  // namespace

const std::string& GgufFile::getString(std::string_view key) const {
    const GgufKeyInfo* k;
    const Value& v = lookup(key, &k);
    if (k->type != GgufType::STRING) wrongType(path(), *k, "STRING");
    return v.bytes;
}

std::uint64_t GgufFile::getUint(std::string_view key) const {
    const GgufKeyInfo* k;
    const Value& v = lookup(key, &k);
    if (!isInteger(k->type)) wrongType(path(), *k, "an integer");
    if (isSigned(k->type)) {
        const std::int64_t s = signExtend(v.scalar, k->type);
        if (s < 0)
            throw FormatError(path(), {}, "metadata key '" + k->name + "' is negative (" + std::to_string(s) +
                                              "), expected an unsigned integer");
        return std::uint64_t(s);
    }
    return v.scalar;
}

double GgufFile::getFloat(std::string_view key) const {
    const GgufKeyInfo* k;
    const Value& v = lookup(key, &k);
    if (k->type == GgufType::FLOAT32) return std::bit_cast<float>(std::uint32_t(v.scalar));
    if (k->type == GgufType::FLOAT64) return std::bit_cast<double>(v.scalar);
    wrongType(path(), *k, "FLOAT32 or FLOAT64");
}

bool GgufFile::getBool(std::string_view key) const {
    const GgufKeyInfo* k;
    const Value& v = lookup(key, &k);
    if (k->type != GgufType::BOOL) wrongType(path(), *k, "BOOL");
    return v.scalar != 0;
}

std::vector<std::string> GgufFile::getStringArray(std::string_view key) const {
    const GgufKeyInfo* k;
    const Value& v = lookup(key, &k);
    if (k->type != GgufType::ARRAY || k->arrayType != GgufType::STRING) wrongType(path(), *k, "an ARRAY of STRING");
    std::vector<std::string> out;
    out.reserve(v.ends.size());
    std::uint64_t begin = 0;
    for (const std::uint64_t end : v.ends) {
        out.emplace_back(v.bytes, std::size_t(begin), std::size_t(end - begin));
        begin = end;
    }
    return out;
}

std::vector<std::int64_t> GgufFile::getIntArray(std::string_view key) const {
    const GgufKeyInfo* k;
    const Value& v = lookup(key, &k);
    if (k->type != GgufType::ARRAY || !(isInteger(k->arrayType) || k->arrayType == GgufType::BOOL))
        wrongType(path(), *k, "an ARRAY of integers");
    const std::size_t elem = std::size_t(scalarSize(k->arrayType));
    const auto* p = reinterpret_cast<const unsigned char*>(v.bytes.data());
    std::vector<std::int64_t> out(std::size_t(k->arrayLength));
    for (std::size_t i = 0; i < out.size(); ++i) {
        const std::uint64_t bits = loadLE(p + i * elem, elem);
        if (k->arrayType == GgufType::UINT64 && bits > std::uint64_t(std::numeric_limits<std::int64_t>::max()))
            throw FormatError(path(), {}, "element " + std::to_string(i) + " of metadata key '" + k->name + "' (" +
                                              std::to_string(bits) + ") does not fit in a signed 64-bit integer");
        out[i] = signExtend(bits, k->arrayType);
    }
    return out;
}

std::vector<double> GgufFile::getFloatArray(std::string_view key) const {
    const GgufKeyInfo* k;
    const Value& v = lookup(key, &k);
    if (k->type != GgufType::ARRAY || (k->arrayType != GgufType::FLOAT32 && k->arrayType != GgufType::FLOAT64))
        wrongType(path(), *k, "an ARRAY of FLOAT32 or FLOAT64");
    const auto* p = reinterpret_cast<const unsigned char*>(v.bytes.data());
    std::vector<double> out(std::size_t(k->arrayLength));
    if (k->arrayType == GgufType::FLOAT32)
        for (std::size_t i = 0; i < out.size(); ++i) out[i] = std::bit_cast<float>(std::uint32_t(loadLE(p + i * 4, 4)));
    else
        for (std::size_t i = 0; i < out.size(); ++i) out[i] = std::bit_cast<double>(loadLE(p + i * 8, 8));
    return out;
}

const GgufTensorInfo* GgufFile::find(std::string_view name) const {
    const auto it = tensorIndex_.find(std::string(name));
    return it == tensorIndex_.end() ? nullptr : &tensors_[it->second];
}

void GgufFile::read(const GgufTensorInfo& t, void* dst, std::uint64_t offsetInTensor, std::uint64_t n) const {
    if (offsetInTensor > t.nbytes || n > t.nbytes - offsetInTensor)
        throw Error(path(), t.name, "read past the end of the tensor");
    file_.preadExact(dst, std::size_t(n), t.offset + offsetInTensor);
}

}  // namespace whittle
