// make-tiny fixtures opened as checkpoints: structure, inventory figures (GEMMA4.md §1), sparseness at
// full size, determinism, atomic output, and a text-only checkpoint streamed through the writer.
#include <sys/stat.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fixtures/tiny_checkpoint.h"
#include "core/io/atomic_output.h"
#include "core/io/json_file.h"
#include "core/io/safetensors_writer.h"
#include "core/model/checkpoint.h"
#include "core/model/inventory.h"
#include "test_support.h"

using namespace whittle;
using namespace whittle::test;
namespace fs = std::filesystem;

namespace {
void make(const fs::path& dest, const std::string& preset, bool zeros = false, std::uint64_t seed = 0) {
    TinyCheckpointOptions o;
    o.preset = preset;
    o.zeros = zeros;
    o.seed = seed;
    NullProgress p;
    CancelToken c;
    makeTinyCheckpoint(dest, o, p, c);
}

std::uint64_t allocatedBytes(const fs::path& dir) {
    std::uint64_t n = 0;
    for (const auto& e : fs::directory_iterator(dir)) {
        struct stat st {};
        ::stat(e.path().c_str(), &st);
        n += std::uint64_t(st.st_blocks) * 512;
    }
    return n;
}


class CancelAfter final : public Progress {
public:
    CancelAfter(CancelToken& t, double at) : token_(t), at_(at) {}
    void report(const ProgressReport& r) override {
        reports++;
        if (r.fraction >= at_) token_.cancel();
    }
    int reports = 0;

private:
    CancelToken& token_;
    double at_;
};
}  // namespace

class TestCheckpoint : public QObject {
    Q_OBJECT
private slots:
    void miniPresets_data() {
        QTest::addColumn<QString>("preset");
        QTest::addColumn<int>("vocab");
        QTest::addColumn<int>("layers");
        QTest::newRow("e2b-mini") << "e2b-mini" << 4096 << 8;
        QTest::newRow("e4b-mini") << "e4b-mini" << 6144 << 9;
    }
    void miniPresets() {
        QFETCH(QString, preset);
        QFETCH(int, vocab);
        QFETCH(int, layers);
        QTemporaryDir dir;
        const fs::path d = tempPath(dir, "ck");
        make(d, preset.toStdString());
        for (const char* f : {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                              "chat_template.jinja", "model.safetensors.index.json"})
            QVERIFY2(fs::exists(d / f), f);
        const Checkpoint ck = Checkpoint::open(d);
        const Gemma4Config& c = ck.config();
        QVERIFY(ck.store().sharded());
        QVERIFY(ck.store().files().size() >= 2);
        QCOMPARE(c.vocabSize, vocab);
        QCOMPARE(c.numLayers, layers);
        // E2B/E4B layout: the last KV-owning layer is full, the one before it sliding.
        const int fs_ = c.firstSharedLayer();
        QCOMPARE(c.layers[std::size_t(fs_ - 1)].kind, AttentionKind::Full);
        QCOMPARE(c.layers[std::size_t(fs_ - 2)].kind, AttentionKind::Sliding);
        for (const auto& l : c.layers)
            if (!l.ownsKv) QCOMPARE(l.kvSource, fs_ - (l.kind == AttentionKind::Sliding ? 2 : 1));
        // Tokenizer size equals vocab_size, <unusedN> filling when the preset is larger.
        const Json tok = readJsonFile(d / "tokenizer.json", 256u << 20);
        QCOMPARE(int(tok["model"]["vocab"].size()), vocab);
        // Special and media ids point at the right tokens; eos list includes end-of-turn.
        const Json cfg = readJsonFile(d / "config.json");
        QCOMPARE(tok["model"]["vocab"]["<|image>"].get<int>(), cfg["boi_token_id"].get<int>());
        QCOMPARE(cfg["image_token_id"].get<int>(), 4091);
        QCOMPARE(ck.specialTokens().bos, 2);
        QCOMPARE(ck.specialTokens().eos, (std::vector<int>{1, 106, 50}));
        const Inventory inv = makeInventory(ck);
        QVERIFY(inv.byPart.at(Part::VisionTower).tensors > 0);
        QVERIFY(inv.byPart.at(Part::AudioTower).tensors > 0);
        QCOMPARE(inv.byPart.at(Part::MainEmbedding).params, std::uint64_t(vocab) * std::uint64_t(c.hiddenSize));
        QCOMPARE(inv.byPart.at(Part::PleTable).params,
                 std::uint64_t(vocab) * std::uint64_t(c.numLayers) * std::uint64_t(c.pleDim));
        QCOMPARE(inv.byPart.at(Part::Other).tensors, std::uint64_t(0));
        QCOMPARE(inv.unused.tensors, std::uint64_t(0));
        std::uint64_t sum = 0;
        for (const auto& [p, t] : inv.byPart) sum += t.bytes;
        QCOMPARE(sum, inv.total.bytes);
        QVERIFY(inv.fileBytes > inv.total.bytes);
        QVERIFY(inv.fileBytes < 8u << 20);  // "a few MB"
        const Json j = toJson(inv);
        QCOMPARE(j["parts"]["ple_table"]["params"].get<std::uint64_t>(), inv.byPart.at(Part::PleTable).params);
        QCOMPARE(int(j["layers"].size()), layers);
    }

    // Spec §1: E2B 0.40 B main embedding, 2.35 B PLE, ≈1.88 B rest, towers ≈0.47 B, 5.10 B in all;
    // E4B 0.67 B, 2.82 B, ≈3.97 B. Zero weights keep the 10–16 GB shards sparse.
    void fullSizeZeros_data() {
        QTest::addColumn<QString>("preset");
        QTest::addColumn<double>("main");
        QTest::addColumn<double>("ple");
        QTest::addColumn<double>("rest");
        QTest::newRow("e2b-full") << "e2b-full" << 0.40 << 2.35 << 1.88;
        QTest::newRow("e4b-full") << "e4b-full" << 0.67 << 2.82 << 3.97;
    }
    void fullSizeZeros() {
        QFETCH(QString, preset);
        QFETCH(double, main);
        QFETCH(double, ple);
        QFETCH(double, rest);
        QTemporaryDir dir;
        const fs::path d = tempPath(dir, "full");
        make(d, preset.toStdString(), true);
        const Inventory inv = makeInventory(Checkpoint::open(d));
        auto billions = [&](Part p) { return double(inv.byPart.at(p).params) / 1e9; };
        QCOMPARE(std::round(billions(Part::MainEmbedding) * 100) / 100, main);
        QCOMPARE(std::round(billions(Part::PleTable) * 100) / 100, ple);
        const double towers = billions(Part::VisionTower) + billions(Part::AudioTower);
        const double r = double(inv.total.params) / 1e9 - billions(Part::MainEmbedding) - billions(Part::PleTable) - towers;
        QVERIFY2(std::abs(r - rest) < 0.01, qPrintable(QString("rest %1").arg(r)));
        QVERIFY2(std::abs(towers - 0.47) < 0.01, qPrintable(QString("towers %1").arg(towers)));
        if (preset == "e2b-full") {
            QCOMPARE(inv.byPart.at(Part::MainEmbedding).params, std::uint64_t(262144) * 1536);
            QCOMPARE(inv.byPart.at(Part::PleTable).params, std::uint64_t(262144) * 35 * 256);
            QCOMPARE(std::round(double(inv.total.params) / 1e7) / 100, 5.10);
        }
        QVERIFY(inv.files.size() >= 3);  // sharded at 4 GiB
        QVERIFY(inv.fileBytes > 9'000'000'000ull);
        QVERIFY2(allocatedBytes(d) < 128ull << 20, qPrintable(QString("allocated %1").arg(allocatedBytes(d))));
    }

    void deterministic() {
        QTemporaryDir dir;
        make(tempPath(dir, "a"), "e2b-mini", false, 5);
        make(tempPath(dir, "b"), "e2b-mini", false, 5);
        make(tempPath(dir, "c"), "e2b-mini", false, 6);
        const char* shard = "model-00002-of-00004.safetensors";
        QCOMPARE(readBytes(tempPath(dir, "a") / shard), readBytes(tempPath(dir, "b") / shard));
        QVERIFY(readBytes(tempPath(dir, "a") / shard) != readBytes(tempPath(dir, "c") / shard));
        // Weights are plausible: norms near 1, layer scalars not 1, projections small.
        const Checkpoint ck = Checkpoint::open(tempPath(dir, "a"));
        const auto* norm = ck.store().find("model.language_model.layers.0.input_layernorm.weight");
        const auto* q = ck.store().find("model.language_model.layers.0.self_attn.q_proj.weight");
        const auto* s = ck.store().find("model.language_model.layers.0.layer_scalar");
        QVERIFY(norm && q && s);
        QVERIFY(std::abs(norm->file->view(*norm->info).at(3) - 1.0f) < 0.11f);
        QVERIFY(std::abs(q->file->view(*q->info).at(3)) < 0.05f);
        QVERIFY(s->file->view(*s->info).at(0) != 1.0f);
    }

    void deadSharedKvCountedAsUnused() {
        QTemporaryDir dir;
        TinyCheckpointOptions o;
        o.deadSharedKv = true;
        NullProgress p;
        CancelToken c;
        makeTinyCheckpoint(tempPath(dir, "d"), o, p, c);
        const Inventory inv = makeInventory(Checkpoint::open(tempPath(dir, "d")));
        QCOMPARE(inv.unused.tensors, std::uint64_t(4 * 3));  // k_proj, v_proj, k_norm on 4 shared layers
    }

    void existingOutputRefused() {
        QTemporaryDir dir;
        const fs::path d = tempPath(dir, "out");
        make(d, "e2b-mini");
        WHITTLE_EXPECT_ERROR(make(d, "e2b-mini"), OutputExistsError, "already exists");  // no CLI option named in core
        TinyCheckpointOptions o;
        o.force = true;
        o.preset = "e4b-mini";
        NullProgress p;
        CancelToken c;
        makeTinyCheckpoint(d, o, p, c);
        QCOMPARE(Checkpoint::open(d).config().numLayers, 9);
        // Only the destination remains: no partial folders, no swapped-out old copy.
        int entries = 0;
        for ([[maybe_unused]] const auto& e : fs::directory_iterator(tempPath(dir))) ++entries;
        QCOMPARE(entries, 1);
    }

    void cancelLeavesNothing() {
        QTemporaryDir dir;
        TinyCheckpointOptions o;
        o.preset = "e4b-mini";
        CancelToken token;
        CancelAfter progress(token, 0.3);
        WHITTLE_EXPECT_ERROR(makeTinyCheckpoint(tempPath(dir, "x"), o, progress, token), CancelledError, "cancelled");
        QVERIFY(progress.reports >= 1);
        QVERIFY(fs::is_empty(tempPath(dir)));
    }

    void outputNeverInsideInput() {
        QTemporaryDir dir;
        const fs::path in = tempPath(dir, "in");
        fs::create_directories(in);
        WHITTLE_EXPECT_ERROR(AtomicOutputDir(in / "sub", false, {in}), UsageError, "inside the input");
        WHITTLE_EXPECT_ERROR(AtomicOutputDir(in, true, {in}), UsageError, "replace the input");
        WHITTLE_EXPECT_ERROR(AtomicOutputDir(tempPath(dir), true, {in}), UsageError, "replace the input");
    }

    void stalePartialsCleaned() {
        QTemporaryDir dir;
        const fs::path stale = tempPath(dir, "out.partial-999999999-1");  // no such process
        fs::create_directories(stale);
        const fs::path alive = tempPath(dir) / ("out.partial-" + std::to_string(::getpid()) + "-2");
        fs::create_directories(alive);
        make(tempPath(dir, "out"), "e2b-mini");
        QVERIFY(!fs::exists(stale));
        QVERIFY(fs::exists(alive));  // another live writer's folder is left alone
    }

    // A text-only (gemma4_text, "model." prefix) checkpoint, written by streaming every text tensor
    // from a multimodal one through the writer: both read back identically.
    void textOnlyCheckpoint() {
        QTemporaryDir dir;
        const fs::path src = tempPath(dir, "mm"), dst = tempPath(dir, "text");
        make(src, "e2b-mini");
        const Checkpoint ck = Checkpoint::open(src);
        std::vector<TensorSpec> plan;
        std::vector<std::pair<const TensorStore::Entry*, std::string>> moves;
        const std::string from = "model.language_model.";
        for (const auto& t : ck.tensors()) {
            const std::string& n = t.entry->info->name;
            if (n.rfind(from, 0) != 0) continue;
            const std::string renamed = "model." + n.substr(from.size());
            plan.push_back({renamed, t.entry->info->dtype, t.entry->info->shape});
            moves.emplace_back(t.entry, renamed);
        }
        AtomicOutputDir out(dst, false, {src});
        Json cfg = readJsonFile(src / "config.json")["text_config"];
        cfg["architectures"] = {"Gemma4ForCausalLM"};
        writeJsonFile(out.path() / "config.json", cfg);
        SafetensorsWriterOptions wo;
        wo.shardLimitBytes = 700 * 1024;
        SafetensorsWriter w(out.path(), plan, wo);
        std::vector<char> buf(4096);
        for (const auto& [e, name] : moves) {
            for (std::uint64_t off = 0; off < e->info->nbytes; off += buf.size()) {
                const auto n = std::min<std::uint64_t>(buf.size(), e->info->nbytes - off);
                e->file->read(*e->info, buf.data(), off, n);
                w.write(name, buf.data(), n);
            }
        }
        w.finish();
        out.commit();
        const Checkpoint text = Checkpoint::open(dst);
        QCOMPARE(text.config().modelType, std::string("gemma4_text"));
        const Inventory a = makeInventory(ck), b = makeInventory(text);
        for (Part p : {Part::MainEmbedding, Part::PleTable, Part::PleProjection, Part::Attention, Part::Mlp, Part::Norms})
            QCOMPARE(b.byPart.at(p).params, a.byPart.at(p).params);
        QCOMPARE(b.byPart.at(Part::VisionTower).tensors, std::uint64_t(0));
        const auto* x = ck.store().find("model.language_model.layers.5.mlp.down_proj.weight");
        const auto* y = text.store().find("model.layers.5.mlp.down_proj.weight");
        const TensorView vx = x->file->view(*x->info), vy = y->file->view(*y->info);
        QCOMPARE(std::string(reinterpret_cast<const char*>(vx.data()), vx.size()),
                 std::string(reinterpret_cast<const char*>(vy.data()), vy.size()));
    }
};

QTEST_APPLESS_MAIN(TestCheckpoint)
#include "tst_checkpoint.moc"
