#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>

#include <nlohmann/json.hpp>

#include "app/cli/args.h"
#include "app/cli/commands.h"
#include "core/error.h"
#include "core/model/checkpoint.h"
#include "core/estimate/vocabulary_sizes.h"
#include "core/model/inventory.h"
#include "core/recipes/vocab_prune.h"
#include "core/tokenizer/buckets.h"
#include "core/model/checkpoint_files.h"

namespace whittle::cli {

namespace {
std::string visible(const std::string& t) {
    std::string out;
    for (char c : t) {
        if (c == '\n') out += "\\n";
        else if (c == '\t') out += "\\t";
        else if (static_cast<unsigned char>(c) < 0x20) out += "?";
        else out += c;
    }
    return out;
}
}  // namespace

int runBuckets(const std::vector<std::string>& argv) {
    const Args a(argv, {"json"}, {"corpus"});
    if (a.positional().size() != 1) throw UsageError("usage: whittle-cli buckets MODEL_OR_TOKENIZER_JSON [--corpus FILE[,FILE…]] [--json]");
    const std::filesystem::path path = a.positional()[0];
    const Tokenizer tok = Tokenizer::fromModelOrFile(path);
    const std::vector<std::string> corpusFiles = a.listValue("corpus");
    const auto corpus = readCorpusLines(corpusFiles);
    const BucketTable table = classifyVocabulary(tok, corpus);
    // With a model folder, the estimator's sizes by vocabulary: the cost of each token (its rows in the tensors
    // with one row per token id) and the parameters of any selection — the figures the Vocabulary page shows.
    std::optional<VocabularySizes> sizes;
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec) && std::filesystem::exists(path / files::kConfig, ec))
        sizes = vocabularySizes(Estimator(std::make_shared<const Checkpoint>(Checkpoint::open(path))), Recipe{});
    const TokenRowCost* cost = sizes ? &sizes->row : nullptr;

    Json presets = Json::object();
    for (const auto& p : presetNames()) {
        if (p == "corpus" && corpus.empty()) continue;
        KeepSelection s = selectPreset(tok, table, p, corpus);
        const int before = s.kept;
        const int merges = keptMerges(tok, s.keep);
        const FittedSelection fit = fitSelection(tok, s.keep, sizes ? sizes->rows : tok.size(), 256);
        const int padded = fit.vocabSize;
        presets[p] = {{"description", presetDescription(p)}, {"tokens_kept", before}, {"tokens_after_padding", padded}, {"merges_kept", merges},
                      {"merges_total", tok.merges().size()}, {"tokens_total", tok.size()}};
        if (sizes) {
            presets[p]["parameters_after"] = sizes->parametersAt(padded);
            presets[p]["parameters_removed"] = sizes->full.parameters - sizes->parametersAt(padded);
            presets[p]["safetensors_bytes_after"] = sizes->tensorBytesAt(padded);
        }
    }
    if (a.flag("json")) {
        Json buckets = Json::array();
        for (const auto& b : table.buckets) {
            Json ex = Json::array();
            for (int id : b.examples) ex.push_back({{"id", id}, {"text", tok.tokenText(id)}});
            Json row = {{"bucket", b.name}, {"tokens", b.tokens}, {"share", double(b.tokens) / tok.size()}, {"examples", ex}};
            if (cost) {
                row["embedding_params"] = std::uint64_t(b.tokens) * cost->mainParams;
                row["ple_params"] = std::uint64_t(b.tokens) * cost->pleParams;
                row["embedding_bytes"] = std::uint64_t(b.tokens) * cost->mainBytes;
                row["ple_bytes"] = std::uint64_t(b.tokens) * cost->pleBytes;
            }
            if (!corpus.empty()) row["corpus_count"] = b.corpusCount;
            buckets.push_back(row);
        }
        std::cout << Json{{"tokenizer", tok.source()}, {"tokens", tok.size()}, {"buckets", buckets}, {"presets", presets}}.dump(2) << "\n";
        return 0;
    }
    std::printf("%s: %d tokens, %zu merges\n\n", tok.source().c_str(), tok.size(), tok.merges().size());
    std::printf("%-14s %8s %7s", "bucket", "tokens", "share");
    if (cost) std::printf(" %12s %12s", "embedding", "PLE");
    if (!corpus.empty()) std::printf(" %10s", "in corpus");
    std::printf("  examples\n");
    for (const auto& b : table.buckets) {
        std::printf("%-14s %8d %6.2f%%", b.name.c_str(), b.tokens, 100.0 * b.tokens / tok.size());
        if (cost)
            std::printf(" %12s %12s", formatBytes(std::uint64_t(b.tokens) * cost->mainBytes).c_str(),
                        formatBytes(std::uint64_t(b.tokens) * cost->pleBytes).c_str());
        if (!corpus.empty()) std::printf(" %10llu", (unsigned long long)b.corpusCount);
        std::string ex;
        for (int id : b.examples) ex += (ex.empty() ? "" : " ") + visible(tok.tokenText(id));
        std::printf("  %s\n", ex.c_str());
    }
    std::printf("\n%-10s %10s %10s %10s\n", "preset", "kept", "padded", "merges");
    for (auto it = presets.begin(); it != presets.end(); ++it)
        std::printf("%-10s %10d %10d %10d\n", it.key().c_str(), it.value()["tokens_kept"].get<int>(),
                    it.value()["tokens_after_padding"].get<int>(), it.value()["merges_kept"].get<int>());
    return 0;
}

}  // namespace whittle::cli
