// Text-only repack (core/recipes/text_only.h) on a make-tiny checkpoint with vision and audio towers and on the
// bundled model: the towers gone from the tensors, the inventory and the config (gemma4_text, Gemma4ForCausalLM,
// model.* names), every decoder tensor's bytes unchanged under its new name, the logits bit-identical, the
// input untouched; refusals and the CLI.
#include <cstring>
#include <map>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fixtures/tiny_checkpoint.h"
#include "core/model/inventory.h"
#include "core/recipes/recipe.h"
#include "core/recipes/text_only.h"
#include "core/reference/reference_session.h"
#include "test_support.h"

using namespace whittle;
using namespace whittle::test;
namespace fs = std::filesystem;

namespace {

std::map<std::string, std::string> tensorBytes(const Checkpoint& ck) {
    std::map<std::string, std::string> m;
    for (const auto& t : ck.tensors()) {
        std::string b(std::size_t(t.entry->info->nbytes), '\0');
        t.entry->file->read(*t.entry->info, b.data(), 0, t.entry->info->nbytes);
        m[t.entry->info->name] = std::move(b);
    }
    return m;
}

std::vector<float> logitsOf(const fs::path& model, const std::vector<int>& ids) {
    const Checkpoint ck = Checkpoint::open(model);
    const ReferenceModel m(ck, {});
    std::vector<float> out(ids.size() * std::size_t(m.vocabSize()));
    ReferenceSession(m, int(ids.size())).forward(ids, out.data());
    return out;
}

}  // namespace

class TestTextOnly : public QObject {
    Q_OBJECT
    QTemporaryDir dir_;

    fs::path repack(const fs::path& in, const char* name, TextOnlyReport* rep = nullptr) {
        const fs::path out = tempPath(dir_, name);
        Recipe r;
        r.textOnly = true;
        NullProgress np;
        const TextOnlyReport got = textOnlyRepack(Checkpoint::open(in), r, out, false, np, CancelToken{});
        if (rep) *rep = got;
        return out;
    }

private slots:
    void initTestCase() { QVERIFY(dir_.isValid()); }

    void towersRemoved() {
        const fs::path mm = tempPath(dir_, "multimodal");
        NullProgress np;
        makeTinyCheckpoint(mm, TinyCheckpointOptions{}, np, CancelToken{});
        const std::string configBefore = readBytes(mm / "config.json");
        const Checkpoint in = Checkpoint::open(mm);
        const Inventory before = makeInventory(in);
        const std::uint64_t towerParams = before.byPart.at(Part::VisionTower).params + before.byPart.at(Part::AudioTower).params;
        QVERIFY(towerParams > 0);
        TextOnlyReport rep;
        const fs::path out = repack(mm, "text", &rep);
        QCOMPARE(readBytes(mm / "config.json"), configBefore);

        const Checkpoint o = Checkpoint::open(out);
        QCOMPARE(o.config().modelType, std::string("gemma4_text"));
        QCOMPARE(o.config().architecture, std::string("Gemma4ForCausalLM"));
        const Json cfg = readJsonFile(out / "config.json");
        QVERIFY(!cfg.contains("vision_config") && !cfg.contains("audio_config") && !cfg.contains("text_config"));
        QVERIFY(!cfg.contains("image_token_id"));
        QVERIFY(cfg.contains("eos_token_id"));
        const Inventory after = makeInventory(o);
        for (Part p : {Part::VisionTower, Part::AudioTower}) QCOMPARE(after.byPart.at(p).params, std::uint64_t(0));
        QCOMPARE(rep.towerParamsRemoved, towerParams);
        QCOMPARE(rep.paramsAfter, rep.paramsBefore - towerParams);
        QCOMPARE(after.total.params, before.total.params - towerParams);
        QVERIFY(rep.towerTensorsRemoved > 0);

        // Every decoder tensor: the same bytes under its text-only name; nothing else in the output.
        const auto a = tensorBytes(in), b = tensorBytes(o);
        std::size_t decoder = 0;
        for (const auto& [name, bytes] : a) {
            if (isTowerTensor(name)) continue;
            ++decoder;
            const std::string renamed = textOnlyTensorName(in.config(), name);
            QVERIFY2(renamed.rfind("model.language_model.", 0) != 0, renamed.c_str());
            QVERIFY2(b.count(renamed) && b.at(renamed) == bytes, qPrintable(QString::fromStdString(name + " → " + renamed)));
        }
        QCOMPARE(b.size(), decoder);

        // The logits: bit for bit.
        std::vector<int> ids{2};
        for (int i = 0; i < 40; ++i) ids.push_back(100 + 37 * i % 900);
        const auto l0 = logitsOf(mm, ids), l1 = logitsOf(out, ids);
        QCOMPARE(l0.size(), l1.size());
        QVERIFY(std::memcmp(l0.data(), l1.data(), l0.size() * 4) == 0);
    }

    // The bundled model carries tower configs but no tower tensors: the repack is a rename and a new config.
    void bundled() {
        const fs::path out = repack(bundledModelDir(), "bundled-text");
        std::vector<int> ids{2};
        for (int i = 0; i < 64; ++i) ids.push_back(300 + 91 * i % 7000);
        const auto l0 = logitsOf(bundledModelDir(), ids), l1 = logitsOf(out, ids);
        QVERIFY(std::memcmp(l0.data(), l1.data(), l0.size() * 4) == 0);
        QVERIFY(fs::exists(out / "tokenizer.json"));
        QCOMPARE(readJsonFile(out / "whittle.json")["recipe"]["text_only"].get<bool>(), true);
    }

    void refusals() {
        const fs::path once = repack(bundledModelDir(), "once");
        WHITTLE_EXPECT_ERROR(repack(once, "twice"), UsageError, "already a text-only model");
        QVERIFY(!fs::exists(tempPath(dir_, "twice")));
        WHITTLE_EXPECT_ERROR(parseRecipe(Json{{"whittle_recipe", 1}, {"text_only", "yes"}}, "r.json"), FormatError, "r.json", "'text_only'");
        QVERIFY(parseRecipe(Json{{"whittle_recipe", 1}, {"text_only", true}}, "r.json").textOnly);
    }

    void cli() {
        const fs::path mm = tempPath(dir_, "cli-mm");
        NullProgress np;
        makeTinyCheckpoint(mm, TinyCheckpointOptions{}, np, CancelToken{});
        const QString out = QString::fromStdString(tempPath(dir_, "cli-text").string());
        const CliResult r = runCli({"text-only", QString::fromStdString(mm.string()), out, "--json"});
        QCOMPARE(r.exitCode, 0);
        QVERIFY(Json::parse(r.out.toStdString())["tower_tensors_removed"].get<int>() > 0);
        const CliResult inspect = runCli({"inspect", out, "--json"});
        QCOMPARE(inspect.exitCode, 0);
        const Json inv = Json::parse(inspect.out.toStdString());
        for (const char* part : {"vision_tower", "audio_tower"}) QCOMPARE(inv["parts"][part]["params"].get<std::uint64_t>(), std::uint64_t(0));
        const CliResult inspectIn = runCli({"inspect", QString::fromStdString(mm.string()), "--json"});
        QVERIFY(Json::parse(inspectIn.out.toStdString())["parts"]["vision_tower"]["params"].get<std::uint64_t>() > 0);
        const CliResult again = runCli({"text-only", out, out + "-2"});
        QCOMPARE(again.exitCode, 2);
        QVERIFY(again.err.contains("already a text-only model"));
    }
};

QTEST_GUILESS_MAIN(TestTextOnly)
#include "tst_text_only.moc"
