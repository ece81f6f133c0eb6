// GGUF writer: a round trip through our GGUF reader of every metadata type (scalars, arrays, arrays of
// strings), several tensor types and alignments with data streamed in chunks; the exact layout llama.cpp
// writes (aligned offsets, zero padding, general.alignment only when not 32); refused plans and misuse,
// each with a clear error and no output left behind. Then the Gemma 4 export of the bundled model read
// back: GEMMA4.md §7 metadata, tensor names/types/shapes, bit-exact F32 data, the tokenizer rebuilt from the
// GGUF tokenizing like the checkpoint's, and the refusals (KV layout llama.cpp would run differently, cancel).
#include <QElapsedTimer>

#include <bit>
#include <cmath>
#include <cstring>
#include <random>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/export/gguf_export.h"
#include "core/fixtures/tiny_checkpoint.h"
#include "core/io/dtype.h"
#include "core/io/gguf_reader.h"
#include "core/io/gguf_writer.h"
#include "core/io/json_file.h"
#include "core/model/checkpoint.h"
#include "core/tokenizer/tokenizer.h"
#include "test_support.h"

using namespace whittle;
using namespace whittle::test;
namespace fs = std::filesystem;

namespace {

const fs::path kBundled = bundledModelDir();

std::string randomBytes(std::size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::string s(n, '\0');
    for (auto& c : s) c = char(rng() & 0xff);
    return s;
}

std::uint64_t alignUp(std::uint64_t n, std::uint64_t a) { return (n + a - 1) / a * a; }

// The value bytes that follow key `k` (its length-prefixed name, then the u32 type) in the file.
std::string rawValue(const std::string& file, const std::string& k, std::size_t n) {
    std::string needle(8, '\0');
    for (int i = 0; i < 8; ++i) needle[std::size_t(i)] = char((k.size() >> (8 * i)) & 0xff);
    needle += k;
    const auto p = file.find(needle);
    if (p == std::string::npos) return {};
    return file.substr(p + needle.size() + 4, n);
}

std::string le(std::uint64_t v, int n) {
    std::string s(std::size_t(n), '\0');
    for (int i = 0; i < n; ++i) s[std::size_t(i)] = char((v >> (8 * i)) & 0xff);
    return s;
}

bool noPartials(const fs::path& dir) {
    for (const auto& e : fs::directory_iterator(dir))
        if (e.path().filename().string().find(".partial-") != std::string::npos) return false;
    return true;
}

struct TestTensor {
    GgufTensorSpec spec;
    std::string data;
};

std::vector<TestTensor> testTensors() {
    std::vector<TestTensor> t;
    auto add = [&](std::string name, GgmlType type, std::vector<std::int64_t> dims, unsigned seed) {
        GgufTensorSpec s{std::move(name), type, std::move(dims)};
        const std::size_t n = std::size_t(s.nbytes());
        t.push_back({s, randomBytes(n, seed)});
    };
    add("token_embd.weight", GgmlType::F16, {64, 7}, 1);       // 896 bytes: padded to the alignment
    add("output_norm.weight", GgmlType::F32, {13}, 2);         // 52 bytes
    add("blk.0.ffn_down.weight", GgmlType::Q8_0, {64, 3}, 3);  // blocks of 32
    add("blk.0.attn_q.weight", GgmlType::BF16, {8, 2, 3, 2}, 4);
    add("ids", GgmlType::I32, {5, 1}, 5);
    add("scale", GgmlType::F32, {1}, 6);
    return t;
}

GgufMetadata everyType(const std::string& utf8) {
    GgufMetadata md;
    md.addString("general.architecture", "test");
    md.addUint8("t.u8", 255);
    md.addInt8("t.i8", -128);
    md.addUint16("t.u16", 65535);
    md.addInt16("t.i16", -32768);
    md.addUint32("t.u32", 4294967295u);
    md.addInt32("t.i32", -2147483647 - 1);
    md.addUint64("t.u64", ~0ull);
    md.addInt64("t.i64", std::numeric_limits<std::int64_t>::min());
    md.addFloat32("t.f32", 1.5f);
    md.addFloat64("t.f64", -2.25e300);
    md.addBool("t.true", true);
    md.addBool("t.false", false);
    md.addString("t.string", utf8);
    md.addString("t.empty", "");
    const std::vector<std::int64_t> small = {0, 1, 100};
    const std::vector<std::int64_t> neg = {-1, 0, 1};
    md.addIntArray("a.u8", GgufType::UINT8, std::vector<std::int64_t>{0, 1, 255});
    md.addIntArray("a.i8", GgufType::INT8, std::vector<std::int64_t>{-128, 0, 127});
    md.addIntArray("a.u16", GgufType::UINT16, std::vector<std::int64_t>{0, 65535});
    md.addIntArray("a.i16", GgufType::INT16, std::vector<std::int64_t>{-32768, 32767});
    md.addIntArray("a.u32", GgufType::UINT32, std::vector<std::int64_t>{0, 4294967295ll});
    md.addIntArray("a.i32", GgufType::INT32, neg);
    md.addIntArray("a.u64", GgufType::UINT64, std::vector<std::int64_t>{0, std::numeric_limits<std::int64_t>::max()});
    md.addIntArray("a.i64", GgufType::INT64, std::vector<std::int64_t>{std::numeric_limits<std::int64_t>::min(), 7});
    md.addIntArray("a.empty", GgufType::INT32, std::vector<std::int64_t>{});
    md.addFloat32Array("a.f32", std::vector<float>{0.5f, -1e30f, 3.0f});
    md.addFloat64Array("a.f64", std::vector<double>{1e-300, -0.125});
    md.addBoolArray("a.bool", {true, false, true, true});
    md.addStringArray("a.str", std::vector<std::string>{"a", "", utf8, std::string(300, 'z')});
    (void)small;
    return md;
}

}  // namespace

class TestGgufWriter : public QObject {
    Q_OBJECT

private slots:
    void roundTrip_data() {
        QTest::addColumn<uint>("alignment");
        QTest::addColumn<int>("chunk");
        QTest::newRow("alignment 32 (default), whole tensors") << 32u << 0;
        QTest::newRow("alignment 64, 7-byte chunks") << 64u << 7;
        QTest::newRow("alignment 8, 100-byte chunks") << 8u << 100;
    }
    void roundTrip() {
        QFETCH(uint, alignment);
        QFETCH(int, chunk);
        QTemporaryDir dir;
        const fs::path out = tempPath(dir, "m.gguf");
        const std::string utf8 = "h\xc3\xa9llo \xe2\x96\x81 w\xf0\x9f\x98\x80rld";
        const auto tensors = testTensors();
        std::vector<GgufTensorSpec> specs;
        for (const auto& t : tensors) specs.push_back(t.spec);
        GgufWriteOptions o;
        o.alignment = alignment;
        {
            GgufWriter w(out, everyType(utf8), specs, o);
            QVERIFY(!fs::exists(out));  // nothing at the destination until finish()
            // Tensors in reverse order, each in chunks: offsets are fixed up front.
            for (auto it = tensors.rbegin(); it != tensors.rend(); ++it) {
                const std::size_t step = chunk > 0 ? std::size_t(chunk) : it->data.size();
                for (std::size_t off = 0; off < it->data.size(); off += step)
                    w.write(it->spec.name, it->data.data() + off, std::min(step, it->data.size() - off));
            }
            w.finish();
            QCOMPARE(std::uint64_t(fs::file_size(out)), w.fileSize());
        }
        QVERIFY(noPartials(dir.path().toStdString()));

        const GgufFile g(out);
        QCOMPARE(g.version(), 3u);
        QCOMPARE(g.alignment(), alignment);
        QCOMPARE(g.has("general.alignment"), alignment != 32);
        QCOMPARE(g.keys().size(), std::size_t(28 + (alignment != 32 ? 1 : 0)));
        QCOMPARE(g.keys()[0].name, std::string("general.architecture"));  // insertion order kept
        QCOMPARE(g.keys()[1].name, std::string("t.u8"));
        const std::string bytes = readBytes(out);
        QCOMPARE(g.getUint("t.u8"), std::uint64_t(255));
        QCOMPARE(rawValue(bytes, "t.i8", 1), std::string("\x80", 1));
        QCOMPARE(g.getUint("t.u16"), std::uint64_t(65535));
        QCOMPARE(rawValue(bytes, "t.i16", 2), le(0x8000, 2));
        QCOMPARE(g.getUint("t.u32"), std::uint64_t(4294967295u));
        QCOMPARE(rawValue(bytes, "t.i32", 4), le(0x80000000u, 4));
        QCOMPARE(g.getUint("t.u64"), ~0ull);
        QCOMPARE(rawValue(bytes, "t.i64", 8), le(1ull << 63, 8));
        QCOMPARE(g.getFloat("t.f32"), 1.5);
        QCOMPARE(g.getFloat("t.f64"), -2.25e300);
        QCOMPARE(g.getBool("t.true"), true);
        QCOMPARE(g.getBool("t.false"), false);
        QCOMPARE(g.getString("t.string"), utf8);
        QCOMPARE(g.getString("t.empty"), std::string());
        const std::pair<const char*, GgufType> types[] = {
            {"t.u8", GgufType::UINT8}, {"t.i8", GgufType::INT8}, {"t.u16", GgufType::UINT16}, {"t.i16", GgufType::INT16},
            {"t.u32", GgufType::UINT32}, {"t.i32", GgufType::INT32}, {"t.u64", GgufType::UINT64}, {"t.i64", GgufType::INT64},
            {"t.f32", GgufType::FLOAT32}, {"t.f64", GgufType::FLOAT64}, {"t.true", GgufType::BOOL}, {"t.string", GgufType::STRING}};
        for (const auto& [k, t] : types) {
            const auto it = std::find_if(g.keys().begin(), g.keys().end(), [&](const GgufKeyInfo& x) { return x.name == k; });
            QVERIFY(it != g.keys().end());
            QCOMPARE(int(it->type), int(t));
        }
        QCOMPARE(g.getIntArray("a.u8"), (std::vector<std::int64_t>{0, 1, 255}));
        QCOMPARE(g.getIntArray("a.i8"), (std::vector<std::int64_t>{-128, 0, 127}));
        QCOMPARE(g.getIntArray("a.u16"), (std::vector<std::int64_t>{0, 65535}));
        QCOMPARE(g.getIntArray("a.i16"), (std::vector<std::int64_t>{-32768, 32767}));
        QCOMPARE(g.getIntArray("a.u32"), (std::vector<std::int64_t>{0, 4294967295ll}));
        QCOMPARE(g.getIntArray("a.i32"), (std::vector<std::int64_t>{-1, 0, 1}));
        QCOMPARE(g.getIntArray("a.u64"), (std::vector<std::int64_t>{0, std::numeric_limits<std::int64_t>::max()}));
        QCOMPARE(g.getIntArray("a.i64"), (std::vector<std::int64_t>{std::numeric_limits<std::int64_t>::min(), 7}));
        QCOMPARE(g.getIntArray("a.empty"), std::vector<std::int64_t>{});
        QCOMPARE(g.getFloatArray("a.f32"), (std::vector<double>{0.5, double(-1e30f), 3.0}));
        QCOMPARE(g.getFloatArray("a.f64"), (std::vector<double>{1e-300, -0.125}));
        QCOMPARE(g.getIntArray("a.bool"), (std::vector<std::int64_t>{1, 0, 1, 1}));
        QCOMPARE(g.getStringArray("a.str"), (std::vector<std::string>{"a", "", utf8, std::string(300, 'z')}));
        const std::pair<const char*, GgufType> arrays[] = {
            {"a.u8", GgufType::UINT8}, {"a.i8", GgufType::INT8}, {"a.u16", GgufType::UINT16}, {"a.i16", GgufType::INT16},
            {"a.u32", GgufType::UINT32}, {"a.i32", GgufType::INT32}, {"a.u64", GgufType::UINT64}, {"a.i64", GgufType::INT64},
            {"a.f32", GgufType::FLOAT32}, {"a.f64", GgufType::FLOAT64}, {"a.bool", GgufType::BOOL}, {"a.str", GgufType::STRING}};
        for (const auto& [k, t] : arrays) {
            const auto it = std::find_if(g.keys().begin(), g.keys().end(), [&](const GgufKeyInfo& x) { return x.name == k; });
            QVERIFY(it != g.keys().end());
            QCOMPARE(int(it->type), int(GgufType::ARRAY));
            QCOMPARE(int(it->arrayType), int(t));
        }

        // Tensors: table order, types, dims, aligned offsets packed as gguf-py packs them, data intact,
        // padding zero, the file ending at the last tensor's padded end.
        QCOMPARE(g.tensors().size(), tensors.size());
        QCOMPARE(g.dataOffset() % alignment, std::uint64_t(0));
        std::uint64_t expectOffset = g.dataOffset();
        for (std::size_t i = 0; i < tensors.size(); ++i) {
            const GgufTensorInfo& ti = g.tensors()[i];
            QCOMPARE(ti.name, tensors[i].spec.name);
            QCOMPARE(int(ti.ggmlType), int(tensors[i].spec.type));
            QCOMPARE(ti.dims, tensors[i].spec.dims);
            QCOMPARE(ti.nbytes, std::uint64_t(tensors[i].data.size()));
            QCOMPARE(ti.offset, expectOffset);
            std::string data(std::size_t(ti.nbytes), '\0');
            g.read(ti, data.data(), 0, ti.nbytes);
            QVERIFY2(data == tensors[i].data, ti.name.c_str());
            const std::uint64_t padEnd = ti.offset + alignUp(ti.nbytes, alignment);
            QCOMPARE(bytes.substr(std::size_t(ti.offset + ti.nbytes), std::size_t(padEnd - ti.offset - ti.nbytes)),
                     std::string(std::size_t(padEnd - ti.offset - ti.nbytes), '\0'));
            expectOffset = padEnd;
        }
        QCOMPARE(g.fileSize(), expectOffset);
    }

    // A plan that is refused never creates anything; misuse while writing names the tensor.
    void refusedPlans_data() {
        QTest::addColumn<QString>("tensor");
        QTest::addColumn<int>("type");
        QTest::addColumn<QList<qint64>>("dims");
        QTest::addColumn<QString>("phrase");
        QTest::newRow("Q8_0 row not a multiple of 32") << "w" << int(GgmlType::Q8_0) << QList<qint64>{33, 2} << "block size 32";
        QTest::newRow("zero dimension") << "w" << int(GgmlType::F32) << QList<qint64>{4, 0} << "not positive";
        QTest::newRow("five dimensions") << "w" << int(GgmlType::F32) << QList<qint64>{1, 1, 1, 1, 1} << "1 to 4";
        QTest::newRow("no dimensions") << "w" << int(GgmlType::F32) << QList<qint64>{} << "1 to 4";
        QTest::newRow("name over 63 bytes") << QString(64, 'n') << int(GgmlType::F32) << QList<qint64>{4} << "at most 63";
        QTest::newRow("empty name") << "" << int(GgmlType::F32) << QList<qint64>{4} << "empty name";
        QTest::newRow("unknown type") << "w" << 4 << QList<qint64>{4} << "unknown ggml type 4";
    }
    void refusedPlans() {
        QFETCH(QString, tensor);
        QFETCH(int, type);
        QFETCH(QList<qint64>, dims);
        QFETCH(QString, phrase);
        QTemporaryDir dir;
        const fs::path out = tempPath(dir, "x.gguf");
        GgufTensorSpec s{tensor.toStdString(), GgmlType(type), {}};
        for (auto d : dims) s.dims.push_back(d);
        GgufMetadata md;
        md.addString("general.architecture", "test");
        const std::string want = phrase.toStdString();
        WHITTLE_EXPECT_ERROR(GgufWriter(out, md, {s}), UsageError, want.c_str(), "x.gguf");
        QVERIFY(!fs::exists(out));
        QVERIFY(noPartials(dir.path().toStdString()));
    }

    void badArguments() {
        QTemporaryDir dir;
        const fs::path out = tempPath(dir, "x.gguf");
        GgufMetadata md;
        md.addUint32("k", 1);
        WHITTLE_EXPECT_ERROR(md.addString("k", "again"), UsageError, "'k' is set twice");
        WHITTLE_EXPECT_ERROR(md.addUint8("", 1), UsageError, "must not be empty");
        WHITTLE_EXPECT_ERROR(md.addBool(std::string("bad\xff", 4), true), UsageError, "not valid UTF-8");
        WHITTLE_EXPECT_ERROR(md.addIntArray("r", GgufType::UINT8, std::vector<std::int64_t>{1, 256}), UsageError,
                             "element 1 (256) does not fit UINT8");
        WHITTLE_EXPECT_ERROR(md.addIntArray("r", GgufType::INT32, std::vector<std::int64_t>{1ll << 31}), UsageError, "does not fit INT32");
        WHITTLE_EXPECT_ERROR(md.addIntArray("r", GgufType::FLOAT32, std::vector<std::int64_t>{1}), UsageError,
                             "not an integer element type");
        QVERIFY(!md.has("r"));  // a refused array leaves no key behind
        QCOMPARE(md.size(), std::size_t(1));

        const GgufTensorSpec a{"a", GgmlType::F32, {4}}, b{"b", GgmlType::F16, {8, 2}};
        WHITTLE_EXPECT_ERROR(GgufWriter(out, md, {a, b, a}), UsageError, "tensor 'a'", "declared twice");
        GgufWriteOptions odd;
        odd.alignment = 48;
        WHITTLE_EXPECT_ERROR(GgufWriter(out, md, {a}, odd), UsageError, "48 is not a power of two");
        GgufMetadata withAlign;
        withAlign.addUint32("general.alignment", 64);
        WHITTLE_EXPECT_ERROR(GgufWriter(out, withAlign, {a}), UsageError, "GgufWriteOptions::alignment");
        QVERIFY(!fs::exists(out));

        {
            GgufWriter w(out, md, {a, b});
            const std::string sixteen(16, '\1');
            WHITTLE_EXPECT_ERROR(w.write("nope", sixteen.data(), 4), UsageError, "tensor 'nope'", "not declared");
            w.write("a", sixteen.data(), 12);
            WHITTLE_EXPECT_ERROR(w.write("a", sixteen.data(), 8), UsageError, "tensor 'a'", "20 bytes written but the tensor holds 16",
                                 "F32 [4]");
            w.write("a", sixteen.data(), 4);
            w.write("b", sixteen.data(), 16);
            WHITTLE_EXPECT_ERROR(w.finish(), UsageError, "tensor 'b'", "only 16 of 32 bytes were written");
            QVERIFY(!fs::exists(out));
        }  // abandoned: the partial file and folder go away
        QVERIFY(!fs::exists(out));
        QVERIFY(noPartials(dir.path().toStdString()));
    }

    // An existing output is refused without force and replaced whole with it; the input is protected.
    void existingOutputAndInputs() {
        QTemporaryDir dir;
        const fs::path out = tempPath(dir, "x.gguf");
        writeBytes(out, "old");
        GgufMetadata md;
        md.addUint32("k", 1);
        const GgufTensorSpec a{"a", GgmlType::F32, {2}};
        const float two[2] = {1.0f, 2.0f};
        WHITTLE_EXPECT_ERROR(GgufWriter(out, md, {a}), OutputExistsError, "already exists");
        QCOMPARE(readBytes(out), std::string("old"));
        GgufWriteOptions force;
        force.force = true;
        {
            GgufWriter w(out, md, {a}, force);
            w.write("a", two, sizeof two);
            QCOMPARE(readBytes(out), std::string("old"));  // untouched until finish()
            w.finish();
        }
        QCOMPARE(GgufFile(out).getUint("k"), std::uint64_t(1));
        QVERIFY(noPartials(dir.path().toStdString()));

        const fs::path model = tempPath(dir, "model");
        fs::create_directories(model);
        GgufWriteOptions protect;
        protect.inputs = {model};
        WHITTLE_EXPECT_ERROR(GgufWriter(model / "inside.gguf", md, {a}, protect), UsageError, "inside the input");
        QVERIFY(!fs::exists(model / "inside.gguf"));
    }

    // ---- Gemma 4 export of the bundled model ----

    void gemma4Export_data() {
        QTest::addColumn<int>("type");
        QTest::newRow("F32") << int(GgmlType::F32);
        QTest::newRow("F16") << int(GgmlType::F16);
    }
    void gemma4Export() {
        QFETCH(int, type);
        const GgmlType wt = GgmlType(type);
        QVERIFY(fs::exists(kBundled / "model.safetensors"));
        const Checkpoint ck = Checkpoint::open(kBundled);
        const Gemma4Config& c = ck.config();
        QTemporaryDir dir;
        const fs::path out = tempPath(dir, "tiny.gguf");
        GgufExportOptions o;
        o.weightType = wt;
        NullProgress progress;
        CancelToken cancel;
        QElapsedTimer timer;
        timer.start();
        const GgufExportReport rep = exportGguf(ck, out, o, progress, cancel);
        qInfo("%s export: %.1f MB, %d tensors, %.2f M parameters, %lld ms", rep.weightType.c_str(), double(rep.fileBytes) / 1e6,
              rep.tensors, double(rep.parameters) / 1e6, timer.elapsed());
        for (const auto& n : rep.notes) qInfo("note: %s", n.c_str());
        QCOMPARE(std::uint64_t(fs::file_size(out)), rep.fileBytes);

        const GgufFile g(out);
        const std::string a = "gemma4.";
        QCOMPARE(g.getString("general.architecture"), std::string("gemma4"));
        QCOMPARE(g.getString("general.name"), std::string("whittle-gemma4-tiny"));
        QCOMPARE(g.getUint("general.file_type"), std::uint64_t(wt == GgmlType::F32 ? 0 : 1));
        QCOMPARE(g.getUint(a + "block_count"), std::uint64_t(c.numLayers));
        QCOMPARE(g.getUint(a + "context_length"), std::uint64_t(c.maxPositionEmbeddings));
        QCOMPARE(g.getUint(a + "embedding_length"), std::uint64_t(c.hiddenSize));
        std::vector<std::int64_t> ffn, swa;
        for (const auto& l : c.layers) {
            ffn.push_back(l.ffnWidth);
            swa.push_back(l.kind == AttentionKind::Sliding);
        }
        QCOMPARE(g.getIntArray(a + "feed_forward_length"), ffn);  // double-wide on the shared layers
        QCOMPARE(g.getIntArray(a + "feed_forward_length"),
                 (std::vector<std::int64_t>{1024, 1024, 1024, 1024, 2048, 2048}));
        QCOMPARE(g.getIntArray(a + "attention.sliding_window_pattern"), swa);
        QCOMPARE(g.getIntArray(a + "attention.sliding_window_pattern"), (std::vector<std::int64_t>{1, 1, 1, 0, 1, 0}));
        QCOMPARE(g.getUint(a + "attention.head_count"), std::uint64_t(c.numHeads));
        QCOMPARE(g.getUint(a + "attention.head_count_kv"), std::uint64_t(c.numKvHeads));
        QCOMPARE(g.getUint(a + "attention.key_length"), std::uint64_t(512));
        QCOMPARE(g.getUint(a + "attention.value_length"), std::uint64_t(512));
        QCOMPARE(g.getUint(a + "attention.key_length_swa"), std::uint64_t(256));
        QCOMPARE(g.getUint(a + "attention.value_length_swa"), std::uint64_t(256));
        QCOMPARE(g.getUint(a + "rope.dimension_count"), std::uint64_t(512));
        QCOMPARE(g.getUint(a + "rope.dimension_count_swa"), std::uint64_t(256));
        QCOMPARE(g.getFloat(a + "rope.freq_base"), 1e6);
        QCOMPARE(g.getFloat(a + "rope.freq_base_swa"), 1e4);
        QCOMPARE(float(g.getFloat(a + "attention.layer_norm_rms_epsilon")), 1e-6f);
        QCOMPARE(g.getFloat(a + "final_logit_softcapping"), 30.0);
        QCOMPARE(g.getUint(a + "attention.sliding_window"), std::uint64_t(64));
        QCOMPARE(g.getUint(a + "attention.shared_kv_layers"), std::uint64_t(2));
        QCOMPARE(g.getUint(a + "embedding_length_per_layer_input"), std::uint64_t(32));
        for (const auto& k : g.keys())  // llama.cpp reads these scalars with exact types
            if (k.name.rfind(a, 0) == 0 && k.type != GgufType::ARRAY)
                QVERIFY2(k.type == GgufType::UINT32 || k.type == GgufType::FLOAT32, k.name.c_str());

        // Tokenizer: the checkpoint's tokens, ids and merges; types by llama.cpp's converter rules.
        const Tokenizer tok = Tokenizer::fromModelOrFile(kBundled);
        const auto tokens = g.getStringArray("tokenizer.ggml.tokens");
        const auto types = g.getIntArray("tokenizer.ggml.token_type");
        QCOMPARE(g.getString("tokenizer.ggml.model"), std::string("gemma4"));
        QCOMPARE(int(tokens.size()), c.vocabSize);
        QCOMPARE(int(types.size()), c.vocabSize);
        QCOMPARE(g.getFloatArray("tokenizer.ggml.scores").size(), tokens.size());
        QCOMPARE(g.getStringArray("tokenizer.ggml.merges").size(), tok.merges().size());
        for (int id = 0; id < tok.size(); ++id) {
            QCOMPARE(tokens[std::size_t(id)], tok.tokenText(id));
            if (tok.isByteToken(id)) QCOMPARE(types[std::size_t(id)], std::int64_t(6));
            else if (tok.isSpecial(id))  // CONTROL, or USER_DEFINED for the chat-visible ones
                QVERIFY(types[std::size_t(id)] == 3 || types[std::size_t(id)] == 4);
        }
        auto typeOf = [&](const char* text) { return types[std::size_t(*tok.tokenId(text))]; };
        QCOMPARE(typeOf("<bos>"), std::int64_t(3));
        QCOMPARE(typeOf("<mask>"), std::int64_t(3));        // named in tokenizer_config.json
        QCOMPARE(typeOf("<|turn>"), std::int64_t(3));
        QCOMPARE(typeOf("<|image>"), std::int64_t(3));
        QCOMPARE(typeOf("<|video|>"), std::int64_t(3));     // extra_special_tokens
        QCOMPARE(typeOf("<|channel>"), std::int64_t(4));    // rendered as text (converter rule)
        QCOMPARE(typeOf("<|\"|>"), std::int64_t(4));
        QCOMPARE(typeOf("[multimodal]"), std::int64_t(1));
        QCOMPARE(typeOf("<unused0>"), std::int64_t(1));
        QCOMPARE(typeOf("\n\n"), std::int64_t(1));
        QCOMPARE(g.getUint("tokenizer.ggml.bos_token_id"), std::uint64_t(*tok.tokenId("<bos>")));
        QCOMPARE(g.getUint("tokenizer.ggml.eos_token_id"), std::uint64_t(*tok.tokenId("<eos>")));
        QCOMPARE(g.getUint("tokenizer.ggml.unknown_token_id"), std::uint64_t(*tok.tokenId("<unk>")));
        QCOMPARE(g.getUint("tokenizer.ggml.padding_token_id"), std::uint64_t(*tok.tokenId("<pad>")));
        QCOMPARE(g.getUint("tokenizer.ggml.mask_token_id"), std::uint64_t(*tok.tokenId("<mask>")));
        QCOMPARE(g.getBool("tokenizer.ggml.add_bos_token"), true);
        QCOMPARE(g.getBool("tokenizer.ggml.add_space_prefix"), false);
        QCOMPARE(g.getString("tokenizer.chat_template"), readBytes(kBundled / "chat_template.jinja"));
        const Tokenizer fromGguf = Tokenizer::fromGguf(g);
        for (const std::string line : {"Hello world, this is a test.", "  two  spaces\n\nand newlines\n",
                                       "<|turn>user\nHi there<turn|>\n<|turn>model\n", "caf\xc3\xa9 \xe2\x82\xac 100 \xf0\x9f\x98\x80"})
            QCOMPARE(fromGguf.encode(line), tok.encode(line));

        // Tensors: every decoder tensor of the table under its llama.cpp name, dims reversed, norms and
        // 1-D tensors F32, rope_freqs for proportional RoPE, layer_output_scale always.
        QCOMPARE(rep.tensors, int(g.tensors().size()));
        const GgufTensorInfo* rf = g.find("rope_freqs.weight");
        QVERIFY(rf);
        QCOMPARE(rf->dims, (std::vector<std::int64_t>{256}));
        std::vector<float> freqs(256);
        g.read(*rf, freqs.data(), 0, rf->nbytes);
        for (int i = 0; i < 256; ++i) QCOMPARE(freqs[std::size_t(i)], i < 64 ? 1.0f : 1e30f);
        int matched = 0;
        std::uint64_t changedByF16 = 0, elements = 0;
        std::vector<std::byte> src, dst;
        for (const auto& t : ck.tensors()) {
            const std::string name = ggufTensorName(c, t.entry->info->name).value_or("");
            if (t.unused) {
                QVERIFY2(!g.find(name), name.c_str());
                continue;
            }
            QVERIFY2(!name.empty(), t.entry->info->name.c_str());
            const GgufTensorInfo* gi = g.find(name);
            QVERIFY2(gi, name.c_str());
            ++matched;
            const auto& shape = t.entry->info->shape;
            QCOMPARE(gi->dims, std::vector<std::int64_t>(shape.rbegin(), shape.rend()));
            const bool f32 = shape.size() == 1 || name.ends_with("_norm.weight");
            QCOMPARE(int(gi->ggmlType), int(f32 ? GgmlType::F32 : wt));
            // Values: exactly the bf16 weights (bf16 → f16 is exact in the normal range, so compare as floats).
            const std::uint64_t n = t.entry->info->numel();
            src.resize(std::size_t(t.entry->info->nbytes));
            t.entry->file->read(*t.entry->info, src.data(), 0, src.size());
            dst.resize(std::size_t(gi->nbytes));
            g.read(*gi, dst.data(), 0, dst.size());
            std::uint64_t differ = 0;
            for (std::uint64_t i = 0; i < n; ++i) {
                const float want = loadAsFloat(t.entry->info->dtype, src.data(), std::size_t(i));
                const float got = loadAsFloat(gi->ggmlType == GgmlType::F32 ? DType::F32 : DType::F16, dst.data(), std::size_t(i));
                const float wantRounded = gi->ggmlType == GgmlType::F32 ? want : f16ToFloat(floatToF16(want));
                if (std::bit_cast<std::uint32_t>(got) != std::bit_cast<std::uint32_t>(wantRounded)) ++differ;
                if (wantRounded != want) ++changedByF16;
            }
            elements += n;
            QVERIFY2(differ == 0, qPrintable(QString("%1: %2 elements differ").arg(name.c_str()).arg(differ)));
        }
        QCOMPARE(matched + 1, rep.tensors);  // + rope_freqs
        if (wt == GgmlType::F16)  // bf16 → f16 is exact except below f16's normal range (|x| < 2^-14)
            qInfo("F16 rounding changed %llu of %llu weights", (unsigned long long)changedByF16, (unsigned long long)elements);
        for (int i = 0; i < c.numLayers; ++i) {
            const auto* s = g.find("blk." + std::to_string(i) + ".layer_output_scale.weight");
            QVERIFY(s);
            QCOMPARE(s->dims, (std::vector<std::int64_t>{1}));
            QCOMPARE(int(s->ggmlType), int(GgmlType::F32));
            const bool owns = c.layers[std::size_t(i)].ownsKv;
            QCOMPARE(g.find("blk." + std::to_string(i) + ".attn_k.weight") != nullptr, owns);
        }
        QVERIFY(!g.find("output.weight"));  // tied: llama.cpp falls back to token_embd
    }

    // Our KV-sharing rule (last KV-owning layer of the same type) against llama.cpp's shortcut.
    void kvSourceRules() {
        const Gemma4Config bundled = Checkpoint::open(kBundled).config();
        for (const auto& l : bundled.layers) QCOMPARE(llamaCppKvSource(bundled, l.index), l.kvSource);
        QCOMPARE(bundled.layers[4].kvSource, 2);
        QCOMPARE(bundled.layers[5].kvSource, 3);
    }

    // A layout where llama.cpp's hard-coded KV source differs from the model's is refused before writing:
    // e4b-mini (S S F S S F | S S F) with only 2 shared layers makes layer 7 (sliding) read layer 6,
    // but llama.cpp would read layer 5 (full).
    void refusesKvLayoutLlamaCppRunsDifferently() {
        QTemporaryDir dir;
        const fs::path model = tempPath(dir, "e4b");
        TinyCheckpointOptions o;
        o.preset = "e4b-mini";
        o.deadSharedKv = true;  // layer 6 then has its k/v, so it can own its cache
        NullProgress progress;
        CancelToken cancel;
        makeTinyCheckpoint(model, o, progress, cancel);
        {
            Json cfg = readJsonFile(model / "config.json");
            cfg["text_config"]["num_kv_shared_layers"] = 2;
            fs::remove(model / "config.json");
            writeJsonFile(model / "config.json", cfg);
        }
        const Checkpoint ck = Checkpoint::open(model);
        QCOMPARE(ck.config().layers[7].kvSource, 6);
        QCOMPARE(llamaCppKvSource(ck.config(), 7), 5);
        WHITTLE_EXPECT_ERROR(exportGguf(ck, tempPath(dir, "x.gguf"), {}, progress, cancel), FormatError, "config.json",
                             "layer 7 reads the KV cache of layer 6", "hard-codes layer 5");
        QVERIFY(!fs::exists(tempPath(dir, "x.gguf")));
    }

    // A sharded checkpoint with tower placeholders and dead shared k/v: towers and dead tensors are skipped
    // with notes, and the output loads.
    void shardedWithTowers() {
        QTemporaryDir dir;
        const fs::path model = tempPath(dir, "e2b");
        TinyCheckpointOptions o;
        o.deadSharedKv = true;
        NullProgress progress;
        CancelToken cancel;
        makeTinyCheckpoint(model, o, progress, cancel);
        const Checkpoint ck = Checkpoint::open(model);
        const GgufExportReport rep = exportGguf(ck, tempPath(dir, "e2b.gguf"), {}, progress, cancel);
        bool towers = false, dead = false;
        for (const auto& n : rep.notes) {
            towers = towers || n.find("towers skipped") != std::string::npos;
            dead = dead || n.find("unused k/v tensors of KV-shared layers skipped") != std::string::npos;
        }
        QVERIFY(towers);
        QVERIFY(dead);
        const GgufFile g(tempPath(dir, "e2b.gguf"));
        for (const auto& t : g.tensors()) QVERIFY2(t.name.find("vision") == std::string::npos, t.name.c_str());
        QCOMPARE(int(g.getStringArray("tokenizer.ggml.tokens").size()), ck.config().vocabSize);
    }

    // whittle-cli export: the format switch, refusals with exit status 2, the input untouched.
    void cliExport() {
        QTemporaryDir dir;
        const QString model = QString::fromStdString(kBundled.string());
        const QString out = QString::fromStdString(tempPath(dir, "m.gguf").string());
        const auto before = fs::last_write_time(kBundled / "model.safetensors");
        CliResult r = runCli({"export", model, out, "--format", "gguf-f16"});
        QVERIFY2(r.exitCode == 0, qPrintable(r.err));
        QVERIFY2(r.out.contains("wrote ") && r.out.contains("gguf-f16"), qPrintable(r.out));
        QCOMPARE(int(GgufFile(out.toStdString()).getUint("general.file_type")), 1);
        r = runCli({"export", model, out, "--format", "gguf-f32"});
        QCOMPARE(r.exitCode, 2);
        QVERIFY2(r.err.contains("already exists") && r.err.contains("pass --force"), qPrintable(r.err));  // the CLI adds its option
        r = runCli({"export", model, out, "--format", "gguf-f32", "--force"});
        QVERIFY2(r.exitCode == 0, qPrintable(r.err));
        QCOMPARE(int(GgufFile(out.toStdString()).getUint("general.file_type")), 0);
        r = runCli({"export", model, out, "--format", "int3", "--force"});
        QCOMPARE(r.exitCode, 2);
        QVERIFY2(r.err.contains("unknown --format 'int3'") && r.err.contains("gguf-f32|gguf-f16"), qPrintable(r.err));
        r = runCli({"export", model, QString::fromStdString(tempPath(dir, "m.bin").string()), "--format", "gguf-f16"});
        QCOMPARE(r.exitCode, 2);
        QVERIFY2(r.err.contains(".gguf"), qPrintable(r.err));
        r = runCli({"export", model});
        QCOMPARE(r.exitCode, 2);
        QVERIFY2(r.err.contains("usage: whittle-cli export MODEL OUT --format"), qPrintable(r.err));
        r = runCli({"export", QString::fromStdString(tempPath(dir, "nope").string()), out, "--format", "gguf-f16", "--force"});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.contains("does not exist"), qPrintable(r.err));
        QCOMPARE(fs::last_write_time(kBundled / "model.safetensors"), before);
        QVERIFY(noPartials(dir.path().toStdString()));
    }

    // Cancel stops the export and leaves nothing; an existing output needs force; the input is untouched.
    void cancelAndForce() {
        const Checkpoint ck = Checkpoint::open(kBundled);
        QTemporaryDir dir;
        const fs::path out = tempPath(dir, "t.gguf");
        NullProgress progress;
        CancelToken cancelled;
        cancelled.cancel();
        WHITTLE_EXPECT_ERROR(exportGguf(ck, out, {}, progress, cancelled), CancelledError, "cancelled");
        QVERIFY(!fs::exists(out));
        QVERIFY(noPartials(dir.path().toStdString()));
        writeBytes(out, "old");
        CancelToken cancel;
        WHITTLE_EXPECT_ERROR(exportGguf(ck, out, {}, progress, cancel), UsageError, "already exists");
        GgufExportOptions o;
        o.force = true;
        exportGguf(ck, out, o, progress, cancel);
        QCOMPARE(GgufFile(out).getString("general.architecture"), std::string("gemma4"));
        WHITTLE_EXPECT_ERROR(exportGguf(ck, kBundled / "inside.gguf", {}, progress, cancel), UsageError, "inside the input");
        QVERIFY(!fs::exists(kBundled / "inside.gguf"));
    }
};

QTEST_APPLESS_MAIN(TestGgufWriter)
#include "tst_gguf_writer.moc"
