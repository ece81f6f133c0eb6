// Safetensors reader and writer: byte-exact against the reference library's own test vectors,
// round trips, sharding with an index, sparse zero runs, misaligned tensors.
#include <sys/stat.h>

#include <cstring>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/io/json_file.h"
#include "core/io/safetensors_reader.h"
#include "core/io/safetensors_writer.h"
#include "core/io/tensor_store.h"
#include "test_support.h"

using namespace whittle;
using namespace whittle::test;
namespace fs = std::filesystem;

namespace {



std::string floatsLE(std::initializer_list<float> v) {
    std::string s;
    for (float f : v) s.append(reinterpret_cast<const char*>(&f), 4);
    return s;
}
}  // namespace

class TestSafetensors : public QObject {
    Q_OBJECT
private slots:
    // The reference library's test_serialization and test_serialization_forced_alignement vectors.
    void referenceBytes_data() {
        QTest::addColumn<QString>("name");
        QTest::addColumn<QList<qint64>>("shape");
        QTest::addColumn<QString>("header");
        QTest::newRow("attn.0") << "attn.0" << QList<qint64>{1, 2, 3}
                                << R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})";
        QTest::newRow("attn0 padded") << "attn0" << QList<qint64>{1, 1, 2, 3}
                                      << R"({"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       )";
    }
    void referenceBytes() {
        QFETCH(QString, name);
        QFETCH(QList<qint64>, shape);
        QFETCH(QString, header);
        QTemporaryDir dir;
        SafetensorsWriterOptions o;
        o.metadata.clear();
        std::vector<std::int64_t> sh(shape.begin(), shape.end());
        SafetensorsWriter w(tempPath(dir), {{name.toStdString(), DType::F32, sh}}, o);
        const std::string data = floatsLE({0, 1, 2, 3, 4, 5});
        w.write(name.toStdString(), data.data(), data.size());
        w.finish();
        const std::string h = header.toStdString();
        QCOMPARE(h.size() % 8, std::size_t(0));
        QCOMPARE(readBytes(tempPath(dir, "model.safetensors")), le64(h.size()) + h + data);
    }

    void emptyFile() {
        QTemporaryDir dir;
        SafetensorsWriterOptions o;
        o.metadata.clear();
        SafetensorsWriter w(tempPath(dir), {}, o);
        w.finish();
        QCOMPARE(readBytes(tempPath(dir, "model.safetensors")), le64(8) + std::string("{}      "));
        const SafetensorsFile f(tempPath(dir, "model.safetensors"));
        QCOMPARE(f.tensors().size(), std::size_t(0));
    }

    void roundTripAndOrder() {
        QTemporaryDir dir;
        std::vector<TensorSpec> plan = {{"b.u8", DType::U8, {5}},     {"a.bf16", DType::BF16, {3, 4}},
                                        {"z.f32", DType::F32, {2}},   {"c.i64", DType::I64, {3}},
                                        {"y.bf16", DType::BF16, {1}}, {"empty", DType::F16, {0, 7}}};
        SafetensorsWriter w(tempPath(dir), plan);
        std::mt19937 rng(7);
        std::map<std::string, std::string> bytes;
        // Out of plan order, in chunks, to prove order independence.
        for (auto it = plan.rbegin(); it != plan.rend(); ++it) {
            std::string b(it->nbytes(), '\0');
            for (auto& c : b) c = char(rng() & 0xff);
            bytes[it->name] = b;
            for (std::size_t off = 0; off < b.size(); off += 3)
                w.write(it->name, b.data() + off, std::min<std::size_t>(3, b.size() - off));
            if (b.empty()) w.write(it->name, nullptr, 0);
        }
        w.finish();
        const SafetensorsFile f(tempPath(dir, "model.safetensors"));
        QCOMPARE(f.metadata().at("format"), std::string("pt"));
        QCOMPARE(f.headerBytes() % 8, std::uint64_t(0));
        // Reference order: descending dtype alignment, then name.
        std::vector<std::string> order;
        for (const auto& t : f.tensors()) order.push_back(t.name);
        const std::vector<std::string> expect = {"c.i64", "z.f32", "a.bf16", "y.bf16", "empty", "b.u8"};
        QCOMPARE(order, expect);
        for (const auto& t : f.tensors()) {
            std::string got(t.nbytes, '\0');
            f.read(t, got.data(), 0, t.nbytes);
            QCOMPARE(got, bytes[t.name]);
            const TensorView v = f.view(t);
            QCOMPARE(std::string(reinterpret_cast<const char*>(v.data()), v.size()), bytes[t.name]);
        }
        QCOMPARE(f.find("a.bf16")->shape, (std::vector<std::int64_t>{3, 4}));
        QVERIFY(f.find("missing") == nullptr);
    }

    void incompleteWriteRefused() {
        QTemporaryDir dir;
        SafetensorsWriter w(tempPath(dir), {{"t", DType::F32, {4}}});
        const std::string b = floatsLE({1, 2});
        w.write("t", b.data(), b.size());
        WHITTLE_EXPECT_ERROR(w.finish(), UsageError, "'t'", "only 8 of 16 bytes");
        WHITTLE_EXPECT_ERROR(w.write("nope", b.data(), 4), UsageError, "not in the write plan");
        std::string tooMuch(12, 'x');
        WHITTLE_EXPECT_ERROR(w.write("t", tooMuch.data(), tooMuch.size()), UsageError, "more bytes");
    }

    void shardsAndIndex() {
        QTemporaryDir dir;
        std::vector<TensorSpec> plan;
        for (int i = 0; i < 10; ++i) plan.push_back({"layer." + std::to_string(i), DType::F32, {256}});  // 1 KiB each
        SafetensorsWriterOptions o;
        o.shardLimitBytes = 3 * 1024;
        SafetensorsWriter w(tempPath(dir), plan, o);
        std::vector<float> v(256);
        for (int i = 0; i < 10; ++i) {
            std::fill(v.begin(), v.end(), float(i));
            w.write("layer." + std::to_string(i), v.data(), v.size() * 4);
        }
        w.finish();
        QCOMPARE(w.fileNames().size(), std::size_t(5));  // 4 shards + index
        QVERIFY(fs::exists(tempPath(dir, "model-00004-of-00004.safetensors")));
        const Json idx = readJsonFile(tempPath(dir, "model.safetensors.index.json"));
        QCOMPARE(idx["metadata"]["total_size"].get<std::uint64_t>(), std::uint64_t(10 * 1024));
        QCOMPARE(idx["weight_map"]["layer.0"].get<std::string>(), std::string("model-00001-of-00004.safetensors"));
        QCOMPARE(idx["weight_map"]["layer.9"].get<std::string>(), std::string("model-00004-of-00004.safetensors"));
        const TensorStore s = TensorStore::open(tempPath(dir));
        QVERIFY(s.sharded());
        QCOMPARE(s.entries().size(), std::size_t(10));
        const auto* e = s.find("layer.7");
        QVERIFY(e);
        QCOMPARE(e->file->view(*e->info).at(100), 7.0f);
    }

    void zeroRunsStaySparse() {
        QTemporaryDir dir;
        const std::uint64_t n = 8ull << 20;  // 8 MiB of zeros with a little data in the middle
        SafetensorsWriter w(tempPath(dir), {{"big", DType::U8, {std::int64_t(n)}}, {"z", DType::BF16, {1 << 22}}});
        std::vector<char> chunk(1 << 20, 0);
        for (std::uint64_t off = 0; off < n; off += chunk.size()) {
            chunk[5] = off == (4u << 20) ? 1 : 0;
            w.write("big", chunk.data(), chunk.size());
        }
        w.writeZeros("z");
        w.finish();
        const fs::path p = tempPath(dir, "model.safetensors");
        struct stat st {};
        QCOMPARE(::stat(p.c_str(), &st), 0);
        QCOMPARE(std::uint64_t(st.st_size), SafetensorsFile(p).fileSize());
        QVERIFY2(std::uint64_t(st.st_blocks) * 512 < (1u << 20),
                 qPrintable(QString("allocated %1 bytes").arg(st.st_blocks * 512)));
        const SafetensorsFile f(p);
        const TensorView big = f.view(*f.find("big"));
        QCOMPARE(big.at((4u << 20) + 5), 1.0f);
        QCOMPARE(big.at(6), 0.0f);
        QCOMPARE(f.view(*f.find("z")).at(12345), 0.0f);
    }

    // Files from other writers may start data at any offset: views must still read correctly.
    void misalignedData() {
        QTemporaryDir dir;
        std::string header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F64","shape":[1],"data_offsets":[8,16]}})";
        while ((8 + header.size()) % 4 != 1) header += ' ';  // data starts at an odd offset
        double d = -2.25;
        std::string data = floatsLE({1.5f, -7.0f}) + std::string(reinterpret_cast<const char*>(&d), 8);
        writeBytes(tempPath(dir, "x.safetensors"), le64(header.size()) + header + data);
        const SafetensorsFile f(tempPath(dir, "x.safetensors"));
        const TensorView a = f.view(*f.find("a"));
        QVERIFY(reinterpret_cast<std::uintptr_t>(a.data()) % 4 != 0);
        QCOMPARE(a.at(0), 1.5f);
        QCOMPARE(a.at(1), -7.0f);
        QCOMPARE(f.view(*f.find("b")).at(0), -2.25f);
    }

    void metadataMustBeStrings() {
        QTemporaryDir dir;
        const std::string header = R"({"__metadata__":{"format":1}})";
        writeBytes(tempPath(dir, "m.safetensors"), le64(header.size()) + header);
        WHITTLE_EXPECT_ERROR(SafetensorsFile(tempPath(dir, "m.safetensors")), FormatError, "m.safetensors",
                             "__metadata__ value for 'format' is not a string");
    }
};

QTEST_APPLESS_MAIN(TestSafetensors)
#include "tst_safetensors.moc"
