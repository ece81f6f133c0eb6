// Benchmark (not a test): encode throughput of Whittle's tokenizer beside @huggingface/tokenizers on the
// same corpus and the same tokenizer.json, measured in one run. Prints JSON.
//   bench_tokenizer [TOKENIZER_JSON]     (default: Google's Gemma tokenizer from the test peers)
#include <QCoreApplication>
#include <QElapsedTimer>
#include <QProcess>
#include <QTemporaryDir>

#include <chrono>
#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/io/json_file.h"
#include "core/tokenizer/tokenizer.h"
#include "corpus.h"

using namespace whittle;
namespace fs = std::filesystem;

namespace {
double runNode(const QString& tok, const QString& cfg, const fs::path& in, const fs::path& out) {
    QElapsedTimer t;
    t.start();
    QProcess node;
    node.start("node", {QStringLiteral(WHITTLE_SOURCE_DIR "/tests/peers/hf_encode.mjs"), tok, cfg,
                        QString::fromStdString(in.string()), QString::fromStdString(out.string())});
    if (!node.waitForFinished(-1) || node.exitCode() != 0) {
        std::fprintf(stderr, "node failed: %s\n", node.readAllStandardError().constData());
        std::exit(1);
    }
    return double(t.nsecsElapsed()) / 1e9;
}
}  // namespace

int main(int argc, char** argv) {
    QCoreApplication app(argc, argv);
    const fs::path peers = qEnvironmentVariable("WHITTLE_PEERS_DIR", WHITTLE_SOURCE_DIR "/build/default/npm").toStdString();
    const QString tok = argc > 1 ? QString(argv[1]) : QString::fromStdString((peers / "gemma-tokenizer/tokenizer.json").string());
    const QString cfg = QFileInfo(tok).dir().filePath("tokenizer_config.json");
    auto lines = whittle::test::fortuneLines();
    for (auto& l : whittle::test::sourceLines(WHITTLE_SOURCE_DIR)) lines.push_back(std::move(l));
    std::uint64_t bytes = 0;
    for (const auto& l : lines) bytes += l.size();

    QTemporaryDir dir;
    const fs::path empty = fs::path(dir.path().toStdString()) / "empty.jsonl", in = fs::path(dir.path().toStdString()) / "in.jsonl",
                   out = fs::path(dir.path().toStdString()) / "out.jsonl";
    std::ofstream(empty) << "\"\"\n";
    {
        std::ofstream f(in, std::ios::binary);
        for (const auto& l : lines) f << Json(l).dump() << '\n';
    }
    // Node's own start-up and tokenizer load, measured on a one-line input and subtracted.
    const double nodeLoad = runNode(tok, cfg, empty, out);
    const double nodeTotal = runNode(tok, cfg, in, out);
    const double hfEncode = nodeTotal - nodeLoad;

    const auto t0 = std::chrono::steady_clock::now();
    const Tokenizer t = Tokenizer::fromFile(tok.toStdString());
    const auto t1 = std::chrono::steady_clock::now();
    std::size_t ids = 0;
    for (const auto& l : lines) ids += t.encode(l).size();
    const auto t2 = std::chrono::steady_clock::now();
    const double oursLoad = std::chrono::duration<double>(t1 - t0).count(), oursEncode = std::chrono::duration<double>(t2 - t1).count();

    const double mb = double(bytes) / 1e6;
    const Json j = {{"tokenizer", tok.toStdString()},
                    {"lines", lines.size()},
                    {"megabytes", mb},
                    {"tokens", ids},
                    {"whittle", {{"load_s", oursLoad}, {"encode_s", oursEncode}, {"mb_per_s", mb / oursEncode}}},
                    {"huggingface_tokenizers_js", {{"load_s", nodeLoad}, {"encode_s", hfEncode}, {"mb_per_s", mb / hfEncode}}},
                    {"speedup", hfEncode / oursEncode}};
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
}
