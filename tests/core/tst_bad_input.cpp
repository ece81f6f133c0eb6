// The bad-input corpus: each broken checkpoint gives one clear error naming the file and the problem,
// in-process and from `whittle-cli inspect` (one stderr line, exit code 1, no crash). Runs under ASan.
#include <unistd.h>

#include <fstream>
#include <functional>
#include <limits>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fixtures/tiny_checkpoint.h"
#include "core/io/json_file.h"
#include "core/model/checkpoint.h"
#include "core/model/inventory.h"
#include "core/recipes/recipe.h"
#include "core/reference/reference_model.h"
#include "test_support.h"

using namespace whittle;
using namespace whittle::test;
namespace fs = std::filesystem;
using OJson = nlohmann::ordered_json;

namespace {

const char* kShard3 = "model-00003-of-00004.safetensors";
const char* kShard4 = "model-00004-of-00004.safetensors";
const std::string kP = "model.language_model.";


struct Shard {
    std::string header;
    std::string data;
};
Shard readShard(const fs::path& p) {
    const std::string all = readBytes(p);
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(all[std::size_t(i)]);
    return {all.substr(8, n), all.substr(8 + n)};
}
void writeShard(const fs::path& p, std::string header, const std::string& data) {
    header.append((8 - header.size() % 8) % 8, ' ');
    writeBytes(p, le64(header.size()) + header + data);
}
void editHeader(const fs::path& p, const std::function<void(OJson&)>& f) {
    Shard s = readShard(p);
    OJson h = OJson::parse(s.header);
    f(h);
    writeShard(p, h.dump(), s.data);
}
void editJson(const fs::path& p, const std::function<void(Json&)>& f) {
    Json j = Json::parse(readBytes(p));
    f(j);
    writeBytes(p, j.dump(1));
}
// The first and last tensor names of a shard in data order.
std::pair<std::string, std::string> firstLast(const OJson& h) {
    std::string first, last;
    std::uint64_t lo = ~0ull, hi = 0;
    for (auto it = h.begin(); it != h.end(); ++it) {
        if (it.key() == "__metadata__") continue;
        const auto b = it.value()["data_offsets"][0].get<std::uint64_t>();
        if (b < lo) { lo = b; first = it.key(); }
        if (b >= hi) { hi = b; last = it.key(); }
    }
    return {first, last};
}

using Mutation = std::function<void(const fs::path& dir)>;

struct Case {
    const char* name;
    const char* file;    // fragment the message must name ("" = the folder itself)
    const char* reason;  // fragment of the reason
    Mutation mutate;
};

std::vector<Case> cases() {
    std::vector<Case> v;
    v.push_back({"truncated shard", kShard3, "runs past the end of the file", [](const fs::path& d) {
                     fs::resize_file(d / kShard3, fs::file_size(d / kShard3) - 100);
                 }});
    v.push_back({"shorter than the length field", kShard3, "truncated", [](const fs::path& d) {
                     fs::resize_file(d / kShard3, 5);
                 }});
    v.push_back({"header length past EOF", kShard3, "runs past the end of the file", [](const fs::path& d) {
                     std::string b = readBytes(d / kShard3);
                     b.replace(0, 8, le64(b.size()));
                     writeBytes(d / kShard3, b);
                 }});
    v.push_back({"header length over 100 MB", kShard3, "exceeds the 100 MB limit", [](const fs::path& d) {
                     std::string b = readBytes(d / kShard3);
                     b.replace(0, 8, le64(200'000'000));
                     writeBytes(d / kShard3, b);
                 }});
    v.push_back({"header not JSON", kShard3, "invalid JSON", [](const fs::path& d) {
                     Shard s = readShard(d / kShard3);
                     writeShard(d / kShard3, "{\"a\": [1, 2", s.data);
                 }});
    v.push_back({"header not UTF-8", kShard3, "not valid UTF-8", [](const fs::path& d) {
                     Shard s = readShard(d / kShard3);
                     s.header[3] = char(0xff);
                     writeShard(d / kShard3, s.header, s.data);
                 }});
    v.push_back({"overlapping ranges", kShard3, "overlaps the previous tensor", [](const fs::path& d) {
                     editHeader(d / kShard3, [](OJson& h) {
                         const auto [first, last] = firstLast(h);
                         const auto size = h[last]["data_offsets"][1].get<std::uint64_t>() -
                                           h[last]["data_offsets"][0].get<std::uint64_t>();
                         h[last]["data_offsets"] = {0, size};
                     });
                 }});
    v.push_back({"gap between tensors", kShard3, "gap of 8 bytes", [](const fs::path& d) {
                     Shard s = readShard(d / kShard3);
                     OJson h = OJson::parse(s.header);
                     const auto [first, last] = firstLast(h);
                     auto& o = h[last]["data_offsets"];
                     o = {o[0].get<std::uint64_t>() + 8, o[1].get<std::uint64_t>() + 8};
                     writeShard(d / kShard3, h.dump(), s.data + std::string(8, '\0'));
                 }});
    v.push_back({"shape does not match byte range", kShard3, "data_offsets span", [](const fs::path& d) {
                     editHeader(d / kShard3, [](OJson& h) { h[firstLast(h).first]["shape"] = {1, 2}; });
                 }});
    v.push_back({"unknown dtype", kShard3, "unknown dtype 'F4'", [](const fs::path& d) {
                     editHeader(d / kShard3, [](OJson& h) { h[firstLast(h).first]["dtype"] = "F4"; });
                 }});
    v.push_back({"data_offsets not a pair", kShard3, "'data_offsets' must be an array of two integers",
                 [](const fs::path& d) {
                     editHeader(d / kShard3, [](OJson& h) { h[firstLast(h).first]["data_offsets"] = "0,8"; });
                 }});
    v.push_back({"negative dimension", kShard3, "non-negative integers", [](const fs::path& d) {
                     editHeader(d / kShard3, [](OJson& h) { h[firstLast(h).first]["shape"] = {-1}; });
                 }});
    v.push_back({"bytes after the last tensor", kShard3, "not described by the header", [](const fs::path& d) {
                     writeBytes(d / kShard3, readBytes(d / kShard3) + std::string(16, 'x'));
                 }});
    v.push_back({"duplicate tensor", kShard3, "duplicate JSON key", [](const fs::path& d) {
                     Shard s = readShard(d / kShard3);
                     const OJson h = OJson::parse(s.header);
                     const std::string first = firstLast(h).first;
                     std::string text = h.dump();
                     const std::string dup = "\"" + first + "\":" + h[first].dump() + ",";
                     text.insert(1, dup);
                     writeShard(d / kShard3, text, s.data);
                 }});
    v.push_back({"missing shard", kShard4, "is missing", [](const fs::path& d) { fs::remove(d / kShard4); }});
    v.push_back({"index names a missing tensor", "model.safetensors.index.json", "absent from shard",
                 [](const fs::path& d) {
                     editJson(d / "model.safetensors.index.json",
                              [](Json& j) { j["weight_map"][kP + "ghost.weight"] = kShard3; });
                 }});
    v.push_back({"index without weight_map", "model.safetensors.index.json", "missing 'weight_map'",
                 [](const fs::path& d) { editJson(d / "model.safetensors.index.json", [](Json& j) { j.erase("weight_map"); }); }});
    v.push_back({"shard path escapes the folder", "model.safetensors.index.json", "not a plain file name",
                 [](const fs::path& d) {
                     editJson(d / "model.safetensors.index.json",
                              [](Json& j) { j["weight_map"][kP + "norm.weight"] = "../../etc/passwd"; });
                 }});
    v.push_back({"config without text_config", "config.json", "needs a 'text_config'", [](const fs::path& d) {
                     editJson(d / "config.json", [](Json& j) { j.erase("text_config"); });
                 }});
    v.push_back({"wrong model_type", "config.json", "unsupported model_type 'llama'", [](const fs::path& d) {
                     editJson(d / "config.json", [](Json& j) { j["model_type"] = "llama"; });
                 }});
    v.push_back({"config not JSON", "config.json", "invalid JSON", [](const fs::path& d) {
                     writeBytes(d / "config.json", "{\"model_type\": \"gemma4\",");
                 }});
    v.push_back({"config nested 100000 deep", "config.json", "nested deeper", [](const fs::path& d) {
                     writeBytes(d / "config.json", std::string(100000, '[') + std::string(100000, ']'));
                 }});
    v.push_back({"config duplicate key", "config.json", "duplicate JSON key 'model_type'", [](const fs::path& d) {
                     std::string c = readBytes(d / "config.json");
                     c.insert(c.find('{') + 1, "\"model_type\": \"gemma4\",");
                     writeBytes(d / "config.json", c);
                 }});
    v.push_back({"config value out of range", "config.json", "out of range", [](const fs::path& d) {
                     editJson(d / "config.json", [](Json& j) { j["text_config"]["hidden_size"] = 4294967296LL; });
                 }});
    v.push_back({"tensor shape disagrees with config", kShard3, "but config.json implies", [](const fs::path& d) {
                     editJson(d / "config.json", [](Json& j) { j["text_config"]["num_attention_heads"] = 1; });
                 }});
    v.push_back({"required tensor missing", "", "missing from the checkpoint", [](const fs::path& d) {
                     const std::string name = kP + "layers.6.mlp.up_proj.weight";
                     const std::string shard = readJsonFile(d / "model.safetensors.index.json")["weight_map"][name];
                     editHeader(d / shard, [&](OJson& h) {
                         OJson renamed;
                         for (auto it = h.begin(); it != h.end(); ++it) renamed[it.key() == name ? name + ".orig" : it.key()] = it.value();
                         h = renamed;
                     });
                     editJson(d / "model.safetensors.index.json", [&](Json& j) {
                         j["weight_map"].erase(name);
                         j["weight_map"][name + ".orig"] = shard;
                     });
                 }});
    v.push_back({"integer dtype for a weight", "", "is not a supported weight type", [](const fs::path& d) {
                     const std::string name = kP + "norm.weight";
                     const std::string shard = readJsonFile(d / "model.safetensors.index.json")["weight_map"][name];
                     editHeader(d / shard, [&](OJson& h) { h[name]["dtype"] = "U16"; });
                 }});
    v.push_back({"eos id outside the vocabulary", "", "eos id 999999 is outside the vocabulary", [](const fs::path& d) {
                     editJson(d / "generation_config.json", [](Json& j) { j["eos_token_id"] = {1, 999999}; });
                 }});
    v.push_back({"empty folder", "", "needs config.json", [](const fs::path& d) {
                     for (const auto& e : fs::directory_iterator(d)) fs::remove_all(e.path());
                 }});
    v.push_back({"folder where a shard should be", kShard3, "is a directory", [](const fs::path& d) {
                     fs::remove(d / kShard3);
                     fs::create_directory(d / kShard3);
                 }});
    v.push_back({"unreadable shard (symlink loop)", kShard3, "Too many levels of symbolic links", [](const fs::path& d) {
                     fs::remove(d / kShard3);
                     fs::create_symlink(kShard3, d / kShard3);
                 }});
    if (::geteuid() != 0)
        v.push_back({"unreadable shard (permissions)", kShard3, "Permission denied",
                     [](const fs::path& d) { fs::permissions(d / kShard3, fs::perms::none); }});
    v.push_back({"no safetensors at all", "", "no model.safetensors", [](const fs::path& d) {
                     for (const auto& e : fs::directory_iterator(d))
                         if (e.path().extension() == ".safetensors" || e.path().extension() == ".json")
                             if (e.path().filename() != "config.json") fs::remove(e.path());
                 }});
    return v;
}

}  // namespace

class TestBadInput : public QObject {
    Q_OBJECT
    QTemporaryDir root_;
    fs::path pristine_;

private slots:
    void initTestCase() {
        pristine_ = tempPath(root_, "pristine");
        TinyCheckpointOptions o;
        NullProgress p;
        CancelToken c;
        makeTinyCheckpoint(pristine_, o, p, c);
        QVERIFY(fs::exists(pristine_ / kShard4));
    }

    void corpus_data() {
        QTest::addColumn<int>("index");
        const auto all = cases();
        QVERIFY(all.size() >= 20);
        for (std::size_t i = 0; i < all.size(); ++i) QTest::newRow(all[i].name) << int(i);
    }

    void corpus() {
        QFETCH(int, index);
        const Case c = cases()[std::size_t(index)];
        const fs::path d = tempPath(root_) / ("case" + std::to_string(index));
        fs::remove_all(d);
        fs::copy(pristine_, d);
        c.mutate(d);
        const std::string fileFrag = *c.file ? std::string(c.file) : d.filename().string();
        WHITTLE_EXPECT_ERROR(Checkpoint::open(d), Error, fileFrag.c_str(), c.reason);

        const CliResult r = runCli({"inspect", QString::fromStdString(d.string())});
        QCOMPARE(r.status, QProcess::NormalExit);
        QCOMPARE(r.exitCode, 1);
        QVERIFY(r.out.isEmpty());
        QVERIFY2(r.err.count('\n') == 1 && r.err.endsWith('\n'), qPrintable(r.err));
        QVERIFY2(r.err.contains(QString::fromStdString(fileFrag)) && r.err.contains(QString::fromUtf8(c.reason)),
                 qPrintable(r.err));
    }

    // Quantized checkpoints: a broken NVFP4 set is refused naming the file or tensor and the problem.
    void quantizedInputs() {
        const fs::path nv = tempPath(root_, "nvfp4");
        fs::remove_all(nv);
        Recipe r;
        r.quantization = parseQuantizeRecipe(Json{{"method", "nvfp4"}}, "test");
        NullProgress p;
        quantizeCheckpoint(Checkpoint::open(pristine_), r, nv, false, p, CancelToken{});
        QVERIFY(Checkpoint::open(nv).hasQuantizedWeights());
        // Which shard holds layer 0's q_proj, and its NVFP4 names.
        const Checkpoint ck = Checkpoint::open(nv);
        const ExpectedTensor* q = ck.expected(TensorRole::QProj, 0);
        QVERIFY(q);
        const Nvfp4Names n = nvfp4Names(*q, Nvfp4Layout::ModelOpt);
        const fs::path shard = ck.nvfp4(TensorRole::QProj, 0)->scale->file->path();
        auto mutated = [&](const char* name, const std::function<void(const fs::path&)>& f) {
            const fs::path d = tempPath(root_, name);
            fs::remove_all(d);
            fs::copy(nv, d);
            f(d / shard.filename());
            return d;
        };
        const fs::path wrongType = mutated("nv-type", [&](const fs::path& s) { editHeader(s, [&](OJson& h) { h[n.scale]["dtype"] = "U8"; }); });
        WHITTLE_EXPECT_ERROR(Checkpoint::open(wrongType), Error, n.scale.c_str(), "an NVFP4", "F8_E4M3");
        const fs::path noGlobal = mutated("nv-global", [&](const fs::path& s) {
            Shard sh = readShard(s);
            OJson h = OJson::parse(sh.header);
            h[n.globalScale + "_renamed"] = h[n.globalScale];
            h.erase(n.globalScale);
            writeShard(s, h.dump(), sh.data);
        });
        WHITTLE_EXPECT_ERROR(Checkpoint::open(noGlobal), Error, n.globalScale.c_str(), "missing", "NVFP4 set needs it");
        const fs::path nanScale = mutated("nv-nan", [&](const fs::path& s) {
            Shard sh = readShard(s);
            const OJson h = OJson::parse(sh.header);
            const std::uint64_t at = h[n.globalScale]["data_offsets"][0].get<std::uint64_t>();
            const float nan = std::numeric_limits<float>::quiet_NaN();
            sh.data.replace(std::size_t(at), 4, reinterpret_cast<const char*>(&nan), 4);
            writeShard(s, sh.header, sh.data);
        });
        const Checkpoint bad = Checkpoint::open(nanScale);
        WHITTLE_EXPECT_ERROR(ReferenceModel(bad, {}), Error, n.globalScale.c_str(), "NaN");

        // A token table stored as rows of Q8_0 blocks whose header claims a shape those rows cannot have.
        const fs::path rows = tempPath(root_, "rows");
        fs::remove_all(rows);
        r.quantization = parseQuantizeRecipe(Json{{"method", "rtn"}, {"embeddings", "q8_0"}}, "test");
        quantizeCheckpoint(Checkpoint::open(pristine_), r, rows, false, p, CancelToken{});
        const Checkpoint rc = Checkpoint::open(rows);
        const RowBlocksTable* table = rc.rowBlocks(TensorRole::Embedding);
        QVERIFY(table);
        const std::string tableName = table->entry->info->name;
        const fs::path rowsShard = table->entry->file->path();
        const fs::path shortRows = tempPath(root_, "rows-short");
        fs::remove_all(shortRows);
        fs::copy(rows, shortRows);
        editHeader(shortRows / rowsShard.filename(), [&](OJson& h) {  // the same bytes as twice the rows, half as long
            h[tableName]["shape"][0] = 2 * h[tableName]["shape"][0].get<std::int64_t>();
            h[tableName]["shape"][1] = h[tableName]["shape"][1].get<std::int64_t>() / 2;
        });
        WHITTLE_EXPECT_ERROR(Checkpoint::open(shortRows), Error, tableName.c_str(), "rows of q8_0 blocks", "need U8");
    }

    void missingAndNonFolder() {
        WHITTLE_EXPECT_ERROR(Checkpoint::open(tempPath(root_, "nope")), IoError, "nope", "does not exist");
        WHITTLE_EXPECT_ERROR(Checkpoint::open(pristine_ / "config.json"), FormatError, "config.json", "is not a folder");
        const CliResult r = runCli({"inspect"});
        QCOMPARE(r.exitCode, 2);
        QVERIFY(r.err.contains("usage"));
        const CliResult u = runCli({"inspect", QString::fromStdString(pristine_.string()), "--bogus"});
        QCOMPARE(u.exitCode, 2);
        QVERIFY(u.err.contains("unknown option --bogus"));
    }
};

QTEST_GUILESS_MAIN(TestBadInput)
#include "tst_bad_input.moc"
