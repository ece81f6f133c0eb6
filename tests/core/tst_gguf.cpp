// GGUF reader: a round trip of every metadata type and a few tensor types, both alignments, the
// ggml type table, a Gemma-sized vocabulary (speed), llama.cpp's own Gemma 4 vocab file when the test
// peers are installed, and a corpus of broken files that must each give one clear error, fast.
#include <QElapsedTimer>

#include <bit>
#include <cstring>
#include <functional>
#include <limits>
#include <optional>
#include <random>

#include "core/error.h"
#include "core/io/gguf_reader.h"
#include "test_support.h"

using namespace whittle;
using namespace whittle::test;
namespace fs = std::filesystem;

namespace {

// ---- A small GGUF writer for tests: builds valid files that the cases then corrupt. ----

std::string le(std::uint64_t v, int n) {
    std::string s(std::size_t(n), '\0');
    for (int i = 0; i < n; ++i) s[std::size_t(i)] = char((v >> (8 * i)) & 0xff);
    return s;
}
std::string gstr(const std::string& s) { return le(s.size(), 8) + s; }
std::string f32b(float f) { return le(std::bit_cast<std::uint32_t>(f), 4); }
std::string f64b(double d) { return le(std::bit_cast<std::uint64_t>(d), 8); }
std::uint64_t alignUp(std::uint64_t n, std::uint64_t a) { return (n + a - 1) / a * a; }

std::string randomBytes(std::size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::string s(n, '\0');
    for (auto& c : s) c = char(rng() & 0xff);
    return s;
}

struct GgufBuilder {
    std::uint32_t version = 3;
    std::uint32_t alignment = 32;  // the layout's alignment; write general.alignment as a key when it is not 32
    std::optional<std::uint64_t> tensorCount, kvCount;  // hostile overrides
    bool padAfterTable = true;
    std::string kvs;
    std::uint64_t nKv = 0;
    struct Tensor {
        std::string name;
        std::uint32_t type;
        std::vector<std::uint64_t> dims;
        std::string data;
        std::optional<std::uint64_t> offset;  // relative to the data section; default: next aligned spot
    };
    std::vector<Tensor> tensors;
    // Filled by build():
    mutable std::size_t tableAt = 0, dataAt = 0;

    GgufBuilder& kv(const std::string& key, GgufType t, const std::string& payload) {
        kvs += gstr(key) + le(std::uint32_t(t), 4) + payload;
        ++nKv;
        return *this;
    }
    GgufBuilder& arr(const std::string& key, std::uint32_t elem, std::uint64_t n, const std::string& payload) {
        return kv(key, GgufType::ARRAY, le(elem, 4) + le(n, 8) + payload);
    }
    GgufBuilder& str(const std::string& key, const std::string& v) { return kv(key, GgufType::STRING, gstr(v)); }
    GgufBuilder& u32(const std::string& key, std::uint32_t v) { return kv(key, GgufType::UINT32, le(v, 4)); }
    GgufBuilder& strs(const std::string& key, const std::vector<std::string>& v) {
        std::string p;
        for (const auto& s : v) p += gstr(s);
        return arr(key, std::uint32_t(GgufType::STRING), v.size(), p);
    }
    GgufBuilder& tensor(const std::string& name, std::uint32_t type, std::vector<std::uint64_t> dims, std::string data,
                        std::optional<std::uint64_t> offset = std::nullopt) {
        tensors.push_back({name, type, std::move(dims), std::move(data), offset});
        return *this;
    }
    // A tensor of a known ggml type with random data of the right size.
    GgufBuilder& tensor(const std::string& name, GgmlType type, std::vector<std::uint64_t> dims, unsigned seed = 1) {
        const auto& tr = ggmlTypeTraits(type);
        std::uint64_t numel = 1;
        for (auto d : dims) numel *= d;
        return tensor(name, std::uint32_t(type), std::move(dims),
                      randomBytes(std::size_t(numel / tr.blockSize * tr.typeSize), seed));
    }

    std::string build() const {
        std::string out = "GGUF" + le(version, 4) + le(tensorCount.value_or(tensors.size()), 8) +
                          le(kvCount.value_or(nKv), 8) + kvs;
        tableAt = out.size();
        std::vector<std::uint64_t> offs;
        std::uint64_t end = 0;
        for (const auto& t : tensors) {
            const std::uint64_t off = t.offset ? *t.offset : alignUp(end, alignment);
            offs.push_back(off);
            if (!t.data.empty()) end = std::max(end, off + t.data.size());
        }
        for (std::size_t i = 0; i < tensors.size(); ++i) {
            const auto& t = tensors[i];
            out += gstr(t.name) + le(t.dims.size(), 4);
            for (auto d : t.dims) out += le(d, 8);
            out += le(t.type, 4) + le(offs[i], 8);
        }
        if (padAfterTable) out.append(alignUp(out.size(), alignment) - out.size(), '\0');
        dataAt = out.size();
        std::string data(alignUp(end, alignment), '\0');
        for (std::size_t i = 0; i < tensors.size(); ++i)
            if (!tensors[i].data.empty()) data.replace(std::size_t(offs[i]), tensors[i].data.size(), tensors[i].data);
        return out + data;
    }
};

// Position just past the first occurrence of needle (the test fails loudly if it is absent).
std::size_t after(const std::string& bytes, const std::string& needle) {
    const auto p = bytes.find(needle);
    if (p == std::string::npos) throw std::logic_error("test bug: '" + needle + "' not in the file");
    return p + needle.size();
}

// A valid file: a few keys and two tensors.
GgufBuilder base() {
    GgufBuilder b;
    b.str("general.architecture", "gemma4").str("general.name", "tiny").u32("gemma4.block_count", 2);
    b.tensor("token_embd.weight", GgmlType::Q8_0, {64, 4}).tensor("output_norm.weight", GgmlType::F32, {64}, 2);
    return b;
}

using Bytes = std::function<std::string()>;
using Use = std::function<void(const GgufFile&)>;

struct Case {
    const char* name;
    const char* phrase;  // the message must contain it (and the file name)
    Bytes bytes;
    Use use = {};        // set: the file opens, and this call must throw
};

std::vector<Case> cases() {
    std::vector<Case> v;
    // Header.
    v.push_back({"bad magic", "not a GGUF file (it starts with 'GGUX'", [] {
                     std::string b = base().build();
                     b[3] = 'X';
                     return b;
                 }});
    v.push_back({"version 1", "GGUF version 1 is not supported", [] {
                     GgufBuilder g = base();
                     g.version = 1;
                     return g.build();
                 }});
    v.push_back({"version 4", "unsupported GGUF version 4", [] {
                     GgufBuilder g = base();
                     g.version = 4;
                     return g.build();
                 }});
    v.push_back({"big-endian", "big-endian GGUF files are not supported", [] {
                     std::string b = base().build();
                     b.replace(4, 4, std::string("\0\0\0\3", 4));
                     return b;
                 }});
    v.push_back({"empty file", "truncated in the header", [] { return std::string(); }});
    v.push_back({"truncated in the header", "truncated in the header (20 bytes",
                 [] { return base().build().substr(0, 20); }});
    v.push_back({"tensor count 2^40", "tensor count 1099511627776 is impossible", [] {
                     GgufBuilder g = base();
                     g.tensorCount = 1ull << 40;
                     return g.build();
                 }});
    v.push_back({"metadata key count 2^62", "metadata key count 4611686018427387904 is impossible", [] {
                     GgufBuilder g = base();
                     g.kvCount = 1ull << 62;
                     return g.build();
                 }});
    // Metadata.
    v.push_back({"truncated in a key name", "string length 33 of the name of metadata key #1 runs past the end", [] {
                     GgufBuilder g;
                     g.str("general.architecture", "gemma4").u32("tokenizer.ggml.some_long_key_name", 1);
                     const std::string b = g.build();
                     return b.substr(0, after(b, "tokenizer.gg"));
                 }});
    v.push_back({"truncated in a scalar value", "truncated in the value of metadata key 'general.file_type'", [] {
                     GgufBuilder g;
                     g.str("general.architecture", "gemma4").kv("general.file_type", GgufType::UINT64, le(7, 8));
                     const std::string b = g.build();
                     return b.substr(0, after(b, "general.file_type") + 4 + 3);
                 }});
    v.push_back({"truncated in a string", "string length 200 of metadata key 'general.name' runs past the end", [] {
                     GgufBuilder g;
                     g.str("general.architecture", "gemma4").str("general.name", std::string(200, 'x'));
                     const std::string b = g.build();
                     return b.substr(0, after(b, "general.name") + 4 + 8 + 50);
                 }});
    v.push_back({"string length past EOF", "string length 1099511627776 of metadata key 'general.name'", [] {
                     std::string b = base().build();
                     b.replace(after(b, "general.name") + 4, 8, le(1ull << 40, 8));
                     return b;
                 }});
    v.push_back({"truncated in an array", "array length 100 of metadata key 'test.ints' runs past the end", [] {
                     GgufBuilder g;
                     g.str("general.architecture", "gemma4").arr("test.ints", 5, 100, std::string(400, '\1'));
                     const std::string b = g.build();
                     return b.substr(0, after(b, "test.ints") + 4 + 12 + 40);
                 }});
    v.push_back({"truncated in a string array", "truncated in the value of metadata key 'test.strings'", [] {
                     GgufBuilder g;
                     g.str("general.architecture", "gemma4").strs("test.strings", std::vector<std::string>(50, "0123456789"));
                     const std::string b = g.build();
                     return b.substr(0, after(b, "test.strings") + 4 + 12 + 25 * 18);  // at element 25's length
                 }});
    v.push_back({"array count 2^60", "array length 1152921504606846976 of metadata key 'test.ints' runs past the end", [] {
                     GgufBuilder g = base();
                     g.arr("test.ints", 5, 1ull << 60, std::string(16, '\0'));
                     return g.build();
                 }});
    v.push_back({"string array count 2^60", "array length 1152921504606846976 of metadata key 'tokenizer.ggml.tokens'", [] {
                     GgufBuilder g = base();
                     g.arr("tokenizer.ggml.tokens", 8, 1ull << 60, gstr("a") + gstr("b"));
                     return g.build();
                 }});
    v.push_back({"unknown value type", "metadata key 'test.odd' has unknown value type 13", [] {
                     GgufBuilder g = base();
                     g.kv("test.odd", GgufType(13), le(0, 8));
                     return g.build();
                 }});
    v.push_back({"unknown array element type", "metadata key 'test.odd' has unknown array element type 99", [] {
                     GgufBuilder g = base();
                     g.arr("test.odd", 99, 1, le(0, 8));
                     return g.build();
                 }});
    v.push_back({"nested array", "nested arrays are not supported", [] {
                     GgufBuilder g = base();
                     g.arr("test.nested", 9, 1, le(5, 4) + le(1, 8) + le(7, 4));
                     return g.build();
                 }});
    v.push_back({"bool not 0 or 1", "BOOL value of metadata key 'test.flag' is 2, expected 0 or 1", [] {
                     GgufBuilder g = base();
                     g.kv("test.flag", GgufType::BOOL, "\2");
                     return g.build();
                 }});
    v.push_back({"key not UTF-8", "the name of metadata key #3 is not valid UTF-8", [] {
                     GgufBuilder g = base();
                     g.u32("test.\xff\xfe", 1);
                     return g.build();
                 }});
    v.push_back({"duplicate key", "duplicate metadata key 'general.name'", [] {
                     GgufBuilder g = base();
                     g.str("general.name", "again");
                     return g.build();
                 }});
    v.push_back({"alignment not a power of two", "general.alignment 48 is not a power of two", [] {
                     GgufBuilder g = base();
                     g.u32("general.alignment", 48);
                     return g.build();
                 }});
    v.push_back({"alignment zero", "general.alignment 0 is not a power of two", [] {
                     GgufBuilder g = base();
                     g.u32("general.alignment", 0);
                     return g.build();
                 }});
    v.push_back({"alignment not UINT32", "general.alignment must be UINT32, not UINT64", [] {
                     GgufBuilder g = base();
                     g.kv("general.alignment", GgufType::UINT64, le(64, 8));
                     g.alignment = 64;
                     return g.build();
                 }});
    // Tensor table.
    v.push_back({"truncated in the tensor table", "truncated in the tensor table entry of 'w'", [] {
                     GgufBuilder g;
                     g.str("general.name", std::string(300, 'x')).tensor("w", GgmlType::F32, {4, 4});
                     const std::string b = g.build();
                     return b.substr(0, g.tableAt + 8 + 1 + 4 + 8);  // name, n_dims, first dim
                 }});
    v.push_back({"tensor name not UTF-8", "the name of tensor info #2 is not valid UTF-8", [] {
                     GgufBuilder g = base();
                     g.tensor("bad\xc0\xaf", GgmlType::F32, {8});
                     return g.build();
                 }});
    v.push_back({"duplicate tensor name", "tensor 'output_norm.weight': duplicate tensor name", [] {
                     GgufBuilder g = base();
                     g.tensor("output_norm.weight", GgmlType::F32, {64});
                     return g.build();
                 }});
    v.push_back({"five dimensions", "tensor 'w5': has 5 dimensions, at most 4 are allowed", [] {
                     GgufBuilder g = base();
                     g.tensor("w5", GgmlType::F32, {1, 1, 1, 1, 2});
                     return g.build();
                 }});
    v.push_back({"zero dimension", "tensor 'w': dimension 1 is 0 in [4, 0]", [] {
                     GgufBuilder g = base();
                     g.tensor("w", std::uint32_t(GgmlType::F32), {4, 0}, "");
                     return g.build();
                 }});
    v.push_back({"element count overflows", "tensor 'w': shape [4294967296, 4294967296] overflows", [] {
                     GgufBuilder g = base();
                     g.tensor("w", std::uint32_t(GgmlType::F32), {1ull << 32, 1ull << 32}, "");
                     return g.build();
                 }});
    v.push_back({"byte size overflows", "tensor 'w': shape [2147483648, 2147483648] of F64 overflows", [] {
                     GgufBuilder g = base();
                     g.tensor("w", std::uint32_t(GgmlType::F64), {1ull << 31, 1ull << 31}, "");
                     return g.build();
                 }});
    v.push_back({"unknown ggml type (retired Q4_2)", "tensor 'w': unknown ggml type 4", [] {
                     GgufBuilder g = base();
                     g.tensor("w", 4, {32}, std::string(20, '\0'));
                     return g.build();
                 }});
    v.push_back({"unknown ggml type 43", "tensor 'w': unknown ggml type 43", [] {
                     GgufBuilder g = base();
                     g.tensor("w", 43, {32}, std::string(20, '\0'));
                     return g.build();
                 }});
    v.push_back({"innermost dimension not a block multiple",
                 "innermost dimension 48 is not a multiple of the Q8_0 block size 32", [] {
                     GgufBuilder g = base();
                     g.tensor("w", std::uint32_t(GgmlType::Q8_0), {48, 2}, std::string(102, '\0'));
                     return g.build();
                 }});
    v.push_back({"misaligned tensor offset", "tensor 'w': data offset 272 is not a multiple of the alignment 32", [] {
                     GgufBuilder g = base();  // token_embd.weight holds [0, 272): 272 is its end, not aligned
                     g.tensor("w", std::uint32_t(GgmlType::F32), {4}, std::string(16, '\0'), 272);
                     return g.build();
                 }});
    v.push_back({"misaligned for alignment 64", "data offset 32 is not a multiple of the alignment 64", [] {
                     GgufBuilder g;
                     g.u32("general.alignment", 64);
                     g.alignment = 64;
                     g.tensor("a", GgmlType::F32, {4}).tensor("b", std::uint32_t(GgmlType::F32), {4}, std::string(16, '\0'), 32);
                     return g.build();
                 }});
    v.push_back({"tensor data past EOF", "tensor 'output_norm.weight': data at offset 288 (256 bytes) runs past the end", [] {
                     const std::string b = base().build();
                     return b.substr(0, b.size() - 100);
                 }});
    v.push_back({"tensor offset far past EOF", "runs past the end of the file (the data section at", [] {
                     GgufBuilder g = base();
                     g.tensors[1].offset = 1ull << 62;
                     g.tensors[1].data.clear();
                     return g.build();
                 }});
    v.push_back({"overlapping tensors", "tensor 'output_norm.weight': data range overlaps tensor 'token_embd.weight'", [] {
                     GgufBuilder g = base();
                     g.tensors[1].offset = 256;
                     return g.build();
                 }});
    // Typed getters on a valid file.
    auto withKeys = [] {
        GgufBuilder g = base();
        g.kv("test.i32", GgufType::INT32, le(std::uint32_t(-5), 4));
        g.kv("test.u8", GgufType::UINT8, "\7");
        g.arr("test.ints", 5, 2, le(1, 4) + le(2, 4));
        g.arr("test.floats", 6, 1, f32b(0.5f));
        g.arr("test.u64s", 10, 2, le(1, 8) + le(1ull << 63, 8));
        g.strs("test.strings", {"a", "b"});
        return g.build();
    };
    v.push_back({"getString on UINT32", "metadata key 'gemma4.block_count' is UINT32, expected STRING", withKeys,
                 [](const GgufFile& f) { f.getString("gemma4.block_count"); }});
    v.push_back({"getUint on STRING", "metadata key 'general.name' is STRING, expected an integer", withKeys,
                 [](const GgufFile& f) { f.getUint("general.name"); }});
    v.push_back({"getUint on a negative INT32", "metadata key 'test.i32' is negative (-5)", withKeys,
                 [](const GgufFile& f) { f.getUint("test.i32"); }});
    v.push_back({"getFloat on INT32", "metadata key 'test.i32' is INT32, expected FLOAT32 or FLOAT64", withKeys,
                 [](const GgufFile& f) { f.getFloat("test.i32"); }});
    v.push_back({"getBool on UINT8", "metadata key 'test.u8' is UINT8, expected BOOL", withKeys,
                 [](const GgufFile& f) { f.getBool("test.u8"); }});
    v.push_back({"getStringArray on an INT32 array",
                 "metadata key 'test.ints' is an ARRAY of INT32, expected an ARRAY of STRING", withKeys,
                 [](const GgufFile& f) { f.getStringArray("test.ints"); }});
    v.push_back({"getIntArray on a FLOAT32 array", "metadata key 'test.floats' is an ARRAY of FLOAT32, expected an ARRAY of integers",
                 withKeys, [](const GgufFile& f) { f.getIntArray("test.floats"); }});
    v.push_back({"getIntArray past INT64_MAX", "element 1 of metadata key 'test.u64s' (9223372036854775808) does not fit",
                 withKeys, [](const GgufFile& f) { f.getIntArray("test.u64s"); }});
    v.push_back({"getFloatArray on a STRING array", "metadata key 'test.strings' is an ARRAY of STRING, expected an ARRAY of FLOAT32",
                 withKeys, [](const GgufFile& f) { f.getFloatArray("test.strings"); }});
    v.push_back({"getFloat on an array", "metadata key 'test.floats' is an ARRAY of FLOAT32, expected FLOAT32 or FLOAT64",
                 withKeys, [](const GgufFile& f) { f.getFloat("test.floats"); }});
    v.push_back({"missing key", "metadata key 'general.license' is missing", withKeys,
                 [](const GgufFile& f) { f.getString("general.license"); }});
    return v;
}


#if defined(__SANITIZE_ADDRESS__)
constexpr qint64 kSpeedLimitMs = 10000;  // sanitizers slow everything several-fold
#else
constexpr qint64 kSpeedLimitMs = 1000;
#endif

}  // namespace

class TestGguf : public QObject {
    Q_OBJECT
    QTemporaryDir root_;

private slots:
    void ggmlTypes() {
        struct Row {
            std::uint32_t id;
            const char* name;
            std::uint32_t block, size;
        };
        // Block sizes and bytes per block from ggml's block structs (ggml-common.h).
        const Row rows[] = {{0, "F32", 1, 4},        {1, "F16", 1, 2},        {2, "Q4_0", 32, 18},
                            {3, "Q4_1", 32, 20},     {6, "Q5_0", 32, 22},     {7, "Q5_1", 32, 24},
                            {8, "Q8_0", 32, 34},     {9, "Q8_1", 32, 36},     {10, "Q2_K", 256, 84},
                            {11, "Q3_K", 256, 110},  {12, "Q4_K", 256, 144},  {13, "Q5_K", 256, 176},
                            {14, "Q6_K", 256, 210},  {15, "Q8_K", 256, 292},  {16, "IQ2_XXS", 256, 66},
                            {17, "IQ2_XS", 256, 74}, {18, "IQ3_XXS", 256, 98}, {19, "IQ1_S", 256, 50},
                            {20, "IQ4_NL", 32, 18},  {21, "IQ3_S", 256, 110}, {22, "IQ2_S", 256, 82},
                            {23, "IQ4_XS", 256, 136}, {24, "I8", 1, 1},       {25, "I16", 1, 2},
                            {26, "I32", 1, 4},       {27, "I64", 1, 8},       {28, "F64", 1, 8},
                            {29, "IQ1_M", 256, 56},  {30, "BF16", 1, 2},      {34, "TQ1_0", 256, 54},
                            {35, "TQ2_0", 256, 66},  {39, "MXFP4", 32, 17},  {40, "NVFP4", 64, 36}};
        for (const Row& r : rows) {
            const GgmlTypeTraits* t = ggmlTypeTraits(r.id);
            QVERIFY2(t, r.name);
            QCOMPARE(std::uint32_t(t->type), r.id);
            QCOMPARE(std::string(t->name), std::string(r.name));
            QCOMPARE(t->blockSize, r.block);
            QCOMPARE(t->typeSize, r.size);
        }
        for (std::uint32_t retired : {4u, 5u, 31u, 32u, 33u, 36u, 37u, 38u, 43u, 1000u, 0xffffffffu})
            QVERIFY2(ggmlTypeTraits(retired) == nullptr, qPrintable(QString::number(retired)));
        QCOMPARE(std::string(ggufTypeName(GgufType::FLOAT64)), std::string("FLOAT64"));
    }

    void roundTrip_data() {
        QTest::addColumn<uint>("version");
        QTest::addColumn<uint>("alignment");
        QTest::addColumn<bool>("writeKey");
        QTest::newRow("v3, default alignment 32") << 3u << 32u << false;
        QTest::newRow("v3, general.alignment 32") << 3u << 32u << true;
        QTest::newRow("v3, general.alignment 64") << 3u << 64u << true;
        QTest::newRow("v2, general.alignment 64") << 2u << 64u << true;
    }

    void roundTrip() {
        QFETCH(uint, version);
        QFETCH(uint, alignment);
        QFETCH(bool, writeKey);
        GgufBuilder g;
        g.version = version;
        g.alignment = alignment;
        if (writeKey) g.u32("general.alignment", alignment);
        const std::string utf8 = "h\xc3\xa9llo \xe2\x96\x81 w\xf0\x9f\x98\x80rld";
        const std::string longText(300, 'z');
        g.kv("t.u8", GgufType::UINT8, "\xff")
            .kv("t.i8", GgufType::INT8, "\x80")
            .kv("t.u16", GgufType::UINT16, le(65535, 2))
            .kv("t.i16", GgufType::INT16, le(0x8000, 2))
            .kv("t.u32", GgufType::UINT32, le(4294967295u, 4))
            .kv("t.i32", GgufType::INT32, le(0x80000000u, 4))
            .kv("t.i32pos", GgufType::INT32, le(123456, 4))
            .kv("t.f32", GgufType::FLOAT32, f32b(1.5f))
            .kv("t.true", GgufType::BOOL, "\1")
            .kv("t.false", GgufType::BOOL, std::string(1, '\0'))
            .str("t.string", utf8)
            .str("t.empty", "")
            .kv("t.u64", GgufType::UINT64, le(~0ull, 8))
            .kv("t.i64", GgufType::INT64, le(1ull << 63, 8))
            .kv("t.i64pos", GgufType::INT64, le(1ull << 40, 8))
            .kv("t.f64", GgufType::FLOAT64, f64b(-2.25e300))
            .arr("a.u8", 0, 3, "\1\2\xff")
            .arr("a.i8", 1, 2, "\xff\5")
            .arr("a.u16", 2, 2, le(1, 2) + le(65535, 2))
            .arr("a.i16", 3, 2, le(0x8000, 2) + le(7, 2))
            .arr("a.u32", 4, 1, le(4000000000u, 4))
            .arr("a.i32", 5, 3, le(std::uint32_t(-1), 4) + le(0, 4) + le(7, 4))
            .arr("a.f32", 6, 2, f32b(0.5f) + f32b(-1.0f))
            .arr("a.bool", 7, 3, std::string("\1\0\1", 3))
            .strs("a.string", {"a", "", utf8, longText})
            .arr("a.u64", 10, 2, le(0, 8) + le((1ull << 63) - 1, 8))
            .arr("a.i64", 11, 2, le(1ull << 63, 8) + le(3, 8))
            .arr("a.f64", 12, 1, f64b(1e-300))
            .arr("a.empty", 5, 0, "");
        g.tensor("a.f32", GgmlType::F32, {4, 3}, 11)
            .tensor("b.q8_0", GgmlType::Q8_0, {64, 2}, 12)
            .tensor("c.q4_0", GgmlType::Q4_0, {32, 3}, 13)
            .tensor("d.q4_k", GgmlType::Q4_K, {256, 1, 2}, 14)
            .tensor("e.i32", GgmlType::I32, {5}, 15);
        const std::string bytes = g.build();
        const fs::path p = tempPath(root_, "round.gguf");
        writeBytes(p, bytes);

        const GgufFile f(p);
        QCOMPARE(f.version(), std::uint32_t(version));
        QCOMPARE(f.alignment(), std::uint32_t(alignment));
        QCOMPARE(f.dataOffset(), std::uint64_t(g.dataAt));
        QCOMPARE(f.dataOffset() % alignment, std::uint64_t(0));
        QCOMPARE(f.fileSize(), std::uint64_t(bytes.size()));

        // Keys in file order, with their types.
        QCOMPARE(f.keys().size(), std::size_t(g.nKv));
        const std::size_t first = writeKey ? 1 : 0;
        QCOMPARE(f.keys()[first].name, std::string("t.u8"));
        QCOMPARE(f.keys()[first].type, GgufType::UINT8);
        const auto key = [&](const char* name) -> const GgufKeyInfo& {
            for (const auto& k : f.keys())
                if (k.name == name) return k;
            throw std::logic_error(name);
        };
        QCOMPARE(key("t.string").type, GgufType::STRING);
        QCOMPARE(key("a.string").type, GgufType::ARRAY);
        QCOMPARE(key("a.string").arrayType, GgufType::STRING);
        QCOMPARE(key("a.string").arrayLength, std::uint64_t(4));
        QCOMPARE(key("a.bool").arrayType, GgufType::BOOL);
        QCOMPARE(key("a.empty").arrayLength, std::uint64_t(0));
        QVERIFY(f.has("t.f64"));
        QVERIFY(!f.has("t.f6"));

        // Scalars.
        QCOMPARE(f.getUint("t.u8"), std::uint64_t(255));
        QCOMPARE(f.getUint("t.u16"), std::uint64_t(65535));
        QCOMPARE(f.getUint("t.u32"), std::uint64_t(4294967295u));
        QCOMPARE(f.getUint("t.u64"), ~std::uint64_t(0));
        QCOMPARE(f.getUint("t.i32pos"), std::uint64_t(123456));
        QCOMPARE(f.getUint("t.i64pos"), std::uint64_t(1) << 40);
        WHITTLE_EXPECT_ERROR(f.getUint("t.i8"), FormatError, "round.gguf", "'t.i8' is negative (-128)");
        WHITTLE_EXPECT_ERROR(f.getUint("t.i16"), FormatError, "'t.i16' is negative (-32768)");
        WHITTLE_EXPECT_ERROR(f.getUint("t.i32"), FormatError, "'t.i32' is negative (-2147483648)");
        WHITTLE_EXPECT_ERROR(f.getUint("t.i64"), FormatError, "'t.i64' is negative (-9223372036854775808)");
        QCOMPARE(f.getFloat("t.f32"), 1.5);
        QCOMPARE(f.getFloat("t.f64"), -2.25e300);
        QCOMPARE(f.getBool("t.true"), true);
        QCOMPARE(f.getBool("t.false"), false);
        QCOMPARE(f.getString("t.string"), utf8);
        QCOMPARE(f.getString("t.empty"), std::string());
        if (writeKey) QCOMPARE(f.getUint("general.alignment"), std::uint64_t(alignment));

        // Arrays.
        using I = std::vector<std::int64_t>;
        QCOMPARE(f.getIntArray("a.u8"), (I{1, 2, 255}));
        QCOMPARE(f.getIntArray("a.i8"), (I{-1, 5}));
        QCOMPARE(f.getIntArray("a.u16"), (I{1, 65535}));
        QCOMPARE(f.getIntArray("a.i16"), (I{-32768, 7}));
        QCOMPARE(f.getIntArray("a.u32"), (I{4000000000LL}));
        QCOMPARE(f.getIntArray("a.i32"), (I{-1, 0, 7}));
        QCOMPARE(f.getIntArray("a.bool"), (I{1, 0, 1}));
        QCOMPARE(f.getIntArray("a.u64"), (I{0, std::numeric_limits<std::int64_t>::max()}));
        QCOMPARE(f.getIntArray("a.i64"), (I{std::numeric_limits<std::int64_t>::min(), 3}));
        QCOMPARE(f.getIntArray("a.empty"), I{});
        QCOMPARE(f.getFloatArray("a.f32"), (std::vector<double>{0.5, -1.0}));
        QCOMPARE(f.getFloatArray("a.f64"), (std::vector<double>{1e-300}));
        QCOMPARE(f.getStringArray("a.string"), (std::vector<std::string>{"a", "", utf8, longText}));

        // Tensors: table order, innermost-first dims, aligned absolute offsets, exact sizes and bytes.
        QCOMPARE(f.tensors().size(), std::size_t(5));
        const std::uint64_t sizes[] = {48, 2 * 2 * 34, 3 * 18, 2 * 144, 20};
        for (std::size_t i = 0; i < f.tensors().size(); ++i) {
            const GgufTensorInfo& t = f.tensors()[i];
            QCOMPARE(t.name, g.tensors[i].name);
            QCOMPARE(std::uint32_t(t.ggmlType), g.tensors[i].type);
            QCOMPARE(std::vector<std::uint64_t>(t.dims.begin(), t.dims.end()), g.tensors[i].dims);
            QCOMPARE(t.nbytes, sizes[i]);
            QCOMPARE(t.offset % alignment, std::uint64_t(0));
            QVERIFY(t.offset >= f.dataOffset());
            std::string got(t.nbytes, '\0');
            f.read(t, got.data(), 0, t.nbytes);
            QCOMPARE(got, g.tensors[i].data);
            QCOMPARE(bytes.substr(std::size_t(t.offset), std::size_t(t.nbytes)), g.tensors[i].data);
        }
        QCOMPARE(f.tensors()[3].numel(), std::uint64_t(512));
        QCOMPARE(f.tensors()[3].dims, (std::vector<std::int64_t>{256, 1, 2}));
        const GgufTensorInfo* q8 = f.find("b.q8_0");
        QVERIFY(q8);
        QCOMPARE(q8->ggmlType, GgmlType::Q8_0);
        std::string part(20, '\0');
        f.read(*q8, part.data(), 100, 20);
        QCOMPARE(part, g.tensors[1].data.substr(100, 20));
        WHITTLE_EXPECT_ERROR(f.read(*q8, part.data(), 130, 7), Error, "round.gguf", "'b.q8_0'",
                             "read past the end of the tensor");
        QVERIFY(f.find("missing") == nullptr);
    }

    // Vocab-only files (like llama.cpp's ggml-vocab-*.gguf) may end right after the metadata.
    void metadataOnlyWithoutPadding() {
        GgufBuilder g;
        g.padAfterTable = false;
        g.str("general.architecture", "gemma4").str("tokenizer.ggml.model", "gemma4x");
        const std::string bytes = g.build();
        QVERIFY(bytes.size() % 32 != 0);
        const fs::path p = tempPath(root_, "vocab-only.gguf");
        writeBytes(p, bytes);
        const GgufFile f(p);
        QCOMPARE(f.tensors().size(), std::size_t(0));
        QCOMPARE(f.dataOffset(), alignUp(bytes.size(), 32));
        QCOMPARE(f.getString("tokenizer.ggml.model"), std::string("gemma4x"));
    }

    void corpus_data() {
        QTest::addColumn<int>("index");
        const auto all = cases();
        QVERIFY(all.size() >= 15);
        for (std::size_t i = 0; i < all.size(); ++i) QTest::newRow(all[i].name) << int(i);
    }

    void corpus() {
        QFETCH(int, index);
        const Case c = cases()[std::size_t(index)];
        const fs::path dir = tempPath(root_) / ("case" + std::to_string(index));
        fs::create_directories(dir);
        const fs::path p = dir / "bad.gguf";
        writeBytes(p, c.bytes());
        QElapsedTimer timer;
        timer.start();
        if (c.use) {
            const GgufFile f(p);
            WHITTLE_EXPECT_ERROR(c.use(f), FormatError, "bad.gguf", c.phrase);
        } else {
            WHITTLE_EXPECT_ERROR(GgufFile{p}, FormatError, "bad.gguf", c.phrase);
        }
        // Hostile counts and lengths are refused before anything is allocated or read for them.
        QVERIFY2(timer.elapsed() < 500, qPrintable(QString("took %1 ms").arg(timer.elapsed())));
    }

    void missingFile() {
        WHITTLE_EXPECT_ERROR(GgufFile(tempPath(root_, "nope.gguf")), IoError, "nope.gguf", "cannot open");
        WHITTLE_EXPECT_ERROR(GgufFile(tempPath(root_)), FormatError, "is a directory");
    }

    // A Gemma-sized vocabulary: 262,144 tokens with scores and types, and 514,906 merges.
    void largeVocabularyLoadsFast() {
        const std::size_t nTokens = 262144, nMerges = 514906;
        std::vector<std::string> tokens(nTokens), merges(nMerges);
        for (std::size_t i = 0; i < nTokens; ++i)
            tokens[i] = (i % 3 ? "\xe2\x96\x81" : "") + std::string(i % 23, 'a') + std::to_string(i);
        for (std::size_t i = 0; i < nMerges; ++i)
            merges[i] = std::to_string(i % 9973) + std::string(i % 7, 'b') + " " + std::to_string(i);
        std::string scores, types;
        for (std::size_t i = 0; i < nTokens; ++i) {
            scores += f32b(-float(i));
            types += le(i < 256 ? 6 : 1, 4);
        }
        GgufBuilder g;
        g.str("general.architecture", "gemma4")
            .str("tokenizer.ggml.model", "gemma4")
            .strs("tokenizer.ggml.tokens", tokens)
            .arr("tokenizer.ggml.scores", 6, nTokens, scores)
            .arr("tokenizer.ggml.token_type", 5, nTokens, types)
            .strs("tokenizer.ggml.merges", merges);
        const fs::path p = tempPath(root_, "big-vocab.gguf");
        writeBytes(p, g.build());

        QElapsedTimer timer;
        timer.start();
        const GgufFile f(p);
        const qint64 openMs = timer.elapsed();
        const auto gotTokens = f.getStringArray("tokenizer.ggml.tokens");
        const auto gotMerges = f.getStringArray("tokenizer.ggml.merges");
        const auto gotScores = f.getFloatArray("tokenizer.ggml.scores");
        const auto gotTypes = f.getIntArray("tokenizer.ggml.token_type");
        const qint64 totalMs = timer.elapsed();
        qInfo("%.1f MB: open %lld ms, open + all four arrays %lld ms", double(fs::file_size(p)) / 1e6, openMs, totalMs);
        QVERIFY2(totalMs < kSpeedLimitMs, qPrintable(QString("took %1 ms").arg(totalMs)));
        QCOMPARE(gotTokens, tokens);
        QCOMPARE(gotMerges, merges);
        QCOMPARE(gotScores.size(), nTokens);
        QCOMPARE(gotScores[1000], -1000.0);
        QCOMPARE(gotTypes[255], std::int64_t(6));
        QCOMPARE(gotTypes[256], std::int64_t(1));
    }

    // llama.cpp's own Gemma 4 vocab file, installed by tests/peers/install.sh.
    void llamaCppGemma4Vocab() {
        const fs::path p = peersDir() / "llama-vocab" / "ggml-vocab-gemma-4.gguf";
        WHITTLE_REQUIRE_OR_SKIP(fs::exists(p), qPrintable(QString::fromStdString(p.string()) +
                                                          " is missing (run tests/peers/install.sh)"));
        QElapsedTimer timer;
        timer.start();
        const GgufFile f(p);
        const auto tokens = f.getStringArray("tokenizer.ggml.tokens");
        const auto merges = f.getStringArray("tokenizer.ggml.merges");
        const qint64 ms = timer.elapsed();
        qInfo("%s: %zu tokens, %zu merges, %lld ms", p.filename().c_str(), tokens.size(), merges.size(), ms);
        QVERIFY2(ms < kSpeedLimitMs, qPrintable(QString("took %1 ms").arg(ms)));
        QCOMPARE(f.getString("tokenizer.ggml.model"), std::string("gemma4"));
        QCOMPARE(tokens.size(), std::size_t(262144));
        QCOMPARE(merges.size(), std::size_t(514906));
        QCOMPARE(f.getFloatArray("tokenizer.ggml.scores").size(), tokens.size());
        QCOMPARE(f.getIntArray("tokenizer.ggml.token_type").size(), tokens.size());
        QCOMPARE(f.getUint("tokenizer.ggml.bos_token_id"), std::uint64_t(2));
        QCOMPARE(f.getUint("tokenizer.ggml.eos_token_id"), std::uint64_t(1));
    }
};

QTEST_APPLESS_MAIN(TestGguf)
#include "tst_gguf.moc"
