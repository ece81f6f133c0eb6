// The tensor stream (core/pipeline/tensor_stream.h) and the transforms over it, on the bundled model: a
// transform's tensor read in arbitrary pieces equals the tensor read whole; the vocabulary transform's token
// rows and FLAP's kept rows and columns equal the rows and elements picked from the checkpoint by hand; the
// source written unchanged has every tensor's bytes; prune-vocab and text-only write the bytes they wrote before
// the stream existed; the stream read as a Checkpoint gives what the written folder gives; cancel stops the writer.
#include <algorithm>
#include <cstring>
#include <map>
#include <numeric>
#include <random>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/export/gguf_export.h"
#include "core/io/atomic_output.h"
#include "core/model/checkpoint_files.h"
#include "core/model/tensor_table.h"
#include "core/pipeline/tensor_stream.h"
#include "core/recipes/flap.h"
#include "core/recipes/text_only.h"
#include "core/recipes/recipe.h"
#include "core/recipes/vocab_prune.h"
#include "core/tokenizer/tokenizer.h"
#include "core/util/sha256.h"
#include "test_support.h"

using namespace whittle;
using namespace whittle::test;
namespace fs = std::filesystem;

namespace {

std::string readWhole(const TensorStream& s, std::size_t i) {
    std::string b(std::size_t(s.tensors[i].nbytes()), '\0');
    s.read(i, 0, b.size(), b.data());
    return b;
}

// Tensor i read in pieces of random length (1 byte up to a few rows), from a seeded generator.
std::string readInPieces(const TensorStream& s, std::size_t i, std::mt19937& rng) {
    const std::uint64_t total = s.tensors[i].nbytes();
    std::string b(std::size_t(total), '\0');
    const std::uint64_t row = s.tensors[i].shape.size() == 2 ? total / std::uint64_t(s.tensors[i].shape[0]) : total;
    std::uniform_int_distribution<std::uint64_t> len(1, std::max<std::uint64_t>(1, 3 * row + 7));
    for (std::uint64_t off = 0; off < total;) {
        const std::uint64_t n = std::min(total - off, len(rng));
        s.read(i, off, n, b.data() + off);
        off += n;
    }
    return b;
}

// Row r of a stored 2-D tensor, straight from its file.
std::string sourceRow(const Checkpoint& ck, const std::string& name, std::int64_t r) {
    for (const CheckpointTensor& t : ck.tensors())
        if (t.entry->info->name == name) {
            const std::uint64_t rowBytes = t.entry->info->nbytes / std::uint64_t(t.entry->info->shape[0]);
            std::string b(std::size_t(rowBytes), '\0');
            t.entry->file->read(*t.entry->info, b.data(), std::uint64_t(r) * rowBytes, rowBytes);
            return b;
        }
    throw std::runtime_error("no tensor " + name);
}

// The bundled model's stream through text-only, then the English vocabulary.
TensorStream textOnlyEnglish(const Checkpoint& ck, VocabPruneReport& vr) {
    TextOnlyReport tr;
    VocabularyRecipe v;
    v.preset = "english";
    return vocabularyStream(textOnlyStream(checkpointStream(ck), tr), v, vr);
}

std::size_t indexOf(const TensorStream& s, const std::string& name) {
    for (std::size_t i = 0; i < s.tensors.size(); ++i)
        if (s.tensors[i].name == name) return i;
    throw std::runtime_error("no tensor " + name);
}

}  // namespace

class TestTensorStream : public QObject {
    Q_OBJECT
    QTemporaryDir dir_;

private slots:
    void initTestCase() { QVERIFY(dir_.isValid()); }

    // The source passes every tensor's bytes and every side file through; writing it reproduces the tensors.
    void sourceWrittenUnchanged() {
        const Checkpoint ck = Checkpoint::open(bundledModelDir());
        const TensorStream s = checkpointStream(ck);
        QCOMPARE(s.tensors.size(), ck.tensors().size());
        QVERIFY(s.file(files::kConfig) && s.file(files::kTokenizer));
        QVERIFY(!s.file(files::kWhittleReport));
        const fs::path out = tempPath(dir_, "copy");
        fs::create_directory(out);
        NullProgress np;
        const StreamWriteReport w = writeStream(s, out, np, CancelToken{});
        QVERIFY(w.tensorBytes > s.tensorBytes());
        const Checkpoint copy = Checkpoint::open(out);
        const TensorStream c = checkpointStream(copy);
        QCOMPARE(c.tensors.size(), s.tensors.size());
        for (std::size_t i = 0; i < s.tensors.size(); ++i) {
            const std::size_t j = indexOf(c, s.tensors[i].name);
            QCOMPARE(c.tensors[j].shape, s.tensors[i].shape);
            QVERIFY2(readWhole(c, j) == readWhole(s, i), s.tensors[i].name.c_str());
        }
        for (const SideFile& f : s.files) QCOMPARE(readBytes(out / f.name), readBytes(f.from));
    }

    // Text-only then vocabulary, read in random pieces: equal to whole reads; every token table's row r is the
    // source's row new_to_old[r] (padding rows: the placeholder's row), and every other tensor is the source's.
    void vocabularyRows() {
        const Checkpoint ck = Checkpoint::open(bundledModelDir());
        VocabPruneReport vr;
        const TensorStream s = textOnlyEnglish(ck, vr);
        QCOMPARE(s.config.vocabSize, vr.tokensAfterPadding);
        QVERIFY(vr.tokensAfterPadding < vr.tokensBefore);
        const Json map = s.file(files::kVocabMapping)->json();
        const auto newToOld = map["new_to_old"].get<std::vector<int>>();
        const int pad = map["padding_copies_row_of"].get<int>();
        QCOMPARE(int(newToOld.size()), vr.tokensAfterPadding);
        // Names in the source: the text-only transform renamed model.language_model.* to model.*.
        std::map<std::string, std::string> sourceName;
        for (const CheckpointTensor& t : ck.tensors()) sourceName[textOnlyTensorName(ck.config(), t.entry->info->name)] = t.entry->info->name;
        const auto tables = tokenRowTensorNames(s.config);
        std::mt19937 rng(7);
        int checkedTables = 0;
        for (std::size_t i = 0; i < s.tensors.size(); ++i) {
            const std::string whole = readWhole(s, i);
            QVERIFY2(readInPieces(s, i, rng) == whole, s.tensors[i].name.c_str());
            const std::string& src = sourceName.at(s.tensors[i].name);
            if (std::find(tables.begin(), tables.end(), s.tensors[i].name) == tables.end()) {
                QVERIFY2(whole == readWhole(checkpointStream(ck), indexOf(checkpointStream(ck), src)), src.c_str());
                continue;
            }
            ++checkedTables;
            const std::size_t rowBytes = whole.size() / newToOld.size();
            for (std::size_t r = 0; r < newToOld.size(); ++r)
                QVERIFY(whole.compare(r * rowBytes, rowBytes, sourceRow(ck, src, newToOld[r] >= 0 ? newToOld[r] : pad)) == 0);
        }
        // The embedding and the PLE table (the bundled model's head is tied: no lm_head tensor).
        QCOMPARE(checkedTables, 2);
    }

    // FLAP's slicing with a chosen selection (no calibration): gate/up keep their selected rows, down_proj its
    // selected columns element by element, the bias tensor holds the given values, and config.json the widths.
    void flapRowsAndColumns() {
        const Checkpoint ck = Checkpoint::open(bundledModelDir());
        const Gemma4Config& c = ck.config();
        FlapSelection sel;
        std::mt19937 rng(11);
        for (const LayerSpec& l : c.layers) {
            std::vector<int> all(std::size_t(l.ffnWidth));
            std::iota(all.begin(), all.end(), 0);
            std::shuffle(all.begin(), all.end(), rng);
            all.resize(std::size_t(l.ffnWidth / 2));
            std::sort(all.begin(), all.end());
            sel.kept.push_back(all);
            std::vector<float> b(std::size_t(c.hiddenSize));
            for (std::size_t i = 0; i < b.size(); ++i) b[i] = float(l.index) + float(i) / 1024.0f;
            sel.bias.push_back(b);
        }
        FlapReport rep;
        FlapRecipe recipe;
        const TensorStream s = flapStream(checkpointStream(ck), recipe, sel, rep);
        const Json cfg = s.file(files::kConfig)->json();
        QCOMPARE(s.config.layers[0].ffnWidth, int(sel.kept[0].size()));
        QVERIFY(s.config.downProjBias);
        QVERIFY((cfg.contains("text_config") ? cfg["text_config"] : cfg)["flap"]["whittle_only"].get<bool>());
        for (const LayerSpec& l : c.layers) {
            const auto& keep = sel.kept[std::size_t(l.index)];
            for (TensorRole role : {TensorRole::GateProj, TensorRole::UpProj}) {
                const std::string name = tensorName(c, role, l.index);
                const std::size_t i = indexOf(s, name);
                const std::string whole = readWhole(s, i);
                QVERIFY(readInPieces(s, i, rng) == whole);
                const std::size_t rowBytes = whole.size() / keep.size();
                for (std::size_t r = 0; r < keep.size(); ++r) QVERIFY(whole.compare(r * rowBytes, rowBytes, sourceRow(ck, name, keep[r])) == 0);
            }
            const std::string down = tensorName(c, TensorRole::DownProj, l.index);
            const std::size_t i = indexOf(s, down);
            const std::string whole = readWhole(s, i);
            QVERIFY(readInPieces(s, i, rng) == whole);
            const std::size_t elem = dtypeSize(s.tensors[i].dtype);
            for (std::int64_t r = 0; r < c.hiddenSize; ++r) {
                const std::string src = sourceRow(ck, down, r);
                for (std::size_t k = 0; k < keep.size(); ++k)
                    QVERIFY(whole.compare((std::size_t(r) * keep.size() + k) * elem, elem, src, std::size_t(keep[k]) * elem, elem) == 0);
            }
            const std::string bias = readWhole(s, indexOf(s, tensorName(c, TensorRole::DownProjBias, l.index)));
            QCOMPARE(bias.size(), sel.bias[std::size_t(l.index)].size() * 4);
            QVERIFY(std::memcmp(bias.data(), sel.bias[std::size_t(l.index)].data(), bias.size()) == 0);
        }
        // Written and opened: the engine-facing checkpoint has the widths and the biases.
        const fs::path out = tempPath(dir_, "flap");
        fs::create_directory(out);
        NullProgress np;
        writeStream(s, out, np, CancelToken{});
        const Checkpoint pruned = Checkpoint::open(out);
        QCOMPARE(pruned.config().layers.back().ffnWidth, int(sel.kept.back().size()));
        QVERIFY(pruned.find(TensorRole::DownProjBias, 0));
    }

    // The shortcuts over the stream write the bytes the stage-by-stage implementation wrote before it (SHA-256
    // recorded from b79613e's `prune-vocab … --preset english` and `text-only` of the bundled model): the seam
    // changed how the bytes flow, not which bytes. A change to the bundled model changes these on purpose.
    void shortcutsKeepTheirBytes() {
        const Checkpoint ck = Checkpoint::open(bundledModelDir());
        NullProgress np;
        Recipe pv;
        pv.vocabulary = VocabularyRecipe{};
        pv.vocabulary->preset = "english";
        pruneVocabulary(ck, pv, tempPath(dir_, "pv"), false, np, CancelToken{});
        Recipe to;
        to.textOnly = true;
        textOnlyRepack(ck, to, tempPath(dir_, "to"), false, np, CancelToken{});
        const std::map<std::string, std::string> pruned{
            {"config.json", "835c10392cf8f21d5dcd3ec4ae494f40131f058a1241c0034788818454ac0a37"},
            {"generation_config.json", "b11451547b0f2b0b1484472083da80f89a6d25d80598635e1ffce03294e8b5c8"},
            {"model.safetensors", "a8f9fd62bc2399db2776a2328155dead7b4eccbf6b9e73efb0063b57c4adaafa"},
            {"tokenizer.json", "07bfc5a3e1bfce0abcbf0edba5c031a305233c153b20418ed93ed38084eb3a94"},
            {"tokenizer_config.json", "ace6d336191f90ecb1cdf7d10c45a5d83eee2f506c75688770e91b4bf88e2751"},
            {"vocab_mapping.json", "1b1b1b95025a7daac59d4bb1ebbd2977bc6c79da34466b9dada08237de94e79f"}};
        const std::map<std::string, std::string> textOnly{
            {"config.json", "311097ac71685e4ebe1addb91ebad7f965f2cfecedf1e748da783c33959b6792"},
            {"model.safetensors", "8bfbf3b0a2b0876635da711caf15d0e0cc807c235c45b53d7b143b309c4f2855"},
            {"tokenizer.json", "d4a6bb13b0d1569c0625aa23ba2d5713cef600beca7ac144b8151d5d81794bea"}};
        for (const auto& [dir, expected] : {std::pair{"pv", pruned}, std::pair{"to", textOnly}})
            for (const auto& [name, sha] : expected) QVERIFY2(sha256File(tempPath(dir_, dir) / name, CancelToken{}) == sha, (std::string(dir) + "/" + name).c_str());
    }

    // The stream as a Checkpoint (streamCheckpoint), for stages that read one: text-only then vocabulary of the
    // bundled model, checked against the table as a folder is; each tensor read through the entry equals the
    // stream's read; the rewritten configs and tokenizer come from its side files; mapping a tensor is refused;
    // and the GGUF exporter reading it writes exactly the file it writes from the stream written out and opened.
    void streamAsCheckpoint() {
        const Checkpoint ck = Checkpoint::open(bundledModelDir());
        VocabPruneReport vr;
        const TensorStream s = textOnlyEnglish(ck, vr);
        const Checkpoint sc = streamCheckpoint(s);
        QCOMPARE(sc.config().vocabSize, vr.tokensAfterPadding);
        QCOMPARE(sc.tensors().size(), s.tensors.size());
        QCOMPARE(sc.specialTokens().eos, s.special.eos);
        QVERIFY(sc.hasGenerationConfig());
        for (std::size_t i = 0; i < s.tensors.size(); ++i) {
            const TensorStore::Entry& e = *sc.tensors()[i].entry;
            QCOMPARE(e.info->name, s.tensors[i].name);
            QVERIFY(sc.tensors()[i].expected != nullptr);  // every tensor found its row of the table
            std::string b(std::size_t(e.info->nbytes), '\0');
            e.file->read(*e.info, b.data(), 0, b.size());
            QVERIFY2(b == readWhole(s, i), e.info->name.c_str());
        }
        QVERIFY(sc.sideFile(files::kTokenizer)->text.has_value());  // the pruned tokenizer, never the input's
        QCOMPARE(checkpointTokenizer(sc).size(), vr.tokensAfterPadding);
        WHITTLE_EXPECT_ERROR(sc.tensors()[0].entry->file->view(*sc.tensors()[0].entry->info), Error, "no mapping");

        NullProgress np;
        const fs::path written = tempPath(dir_, "sc-written");
        fs::create_directory(written);
        writeStream(s, written, np, CancelToken{});
        GgufExportOptions o;
        o.weightType = GgmlType::Q8_0;
        o.name = "same";
        const GgufExportReport a = exportGguf(sc, tempPath(dir_, "from-stream.gguf"), o, np, CancelToken{});
        const GgufExportReport b = exportGguf(Checkpoint::open(written), tempPath(dir_, "from-folder.gguf"), o, np, CancelToken{});
        QCOMPARE(a.fileBytes, b.fileBytes);
        QCOMPARE(sha256File(tempPath(dir_, "from-stream.gguf"), CancelToken{}), sha256File(tempPath(dir_, "from-folder.gguf"), CancelToken{}));
    }

    // A selection whose layer count does not match the model is refused before anything is read.
    void flapSelectionMismatch() {
        const Checkpoint ck = Checkpoint::open(bundledModelDir());
        FlapSelection sel;
        sel.kept.resize(1);
        FlapReport rep;
        WHITTLE_EXPECT_ERROR(flapStream(checkpointStream(ck), FlapRecipe{}, sel, rep), UsageError, "layers");
    }

    // Cancel reaches the sink between chunks: nothing but the partial folder was touched.
    void cancelStopsTheSink() {
        const Checkpoint ck = Checkpoint::open(bundledModelDir());
        const fs::path out = tempPath(dir_, "cancelled");
        fs::create_directory(out);
        CancelToken token;
        token.cancel();
        NullProgress np;
        WHITTLE_EXPECT_ERROR(writeStream(checkpointStream(ck), out, np, token), CancelledError, "cancelled");
    }
};

QTEST_GUILESS_MAIN(TestTensorStream)
#include "tst_tensor_stream.moc"
