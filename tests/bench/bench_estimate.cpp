// Benchmark (not a test): how long an estimate takes (core/estimate) on full-size E2B- and E4B-shaped
// checkpoints (zero weights, sparse), per recipe. Prints JSON, per model and recipe, in milliseconds:
//   - cold_ms: a fresh Estimator (every stage computed: the vocabulary's tokenizer rewrite, FLAP's selection,
//     the quantization plan, the writer's layout) — what the Recipe page computes on a worker thread;
//   - after_vocabulary_ms: the stages after a kept text-only + vocabulary stream (a change of FLAP or
//     quantization on the page), also on the worker thread;
//   - warm_median_ms / warm_max_ms: 50 estimates with the recipe's stages kept and the context moving
//     (Estimator::cached) — what the page computes on the GUI thread on every change.
//   bench_estimate [--tokenizer FILE] [--model e2b-full|e4b-full] [--only RECIPE]
//   (--tokenizer: Google's 262k tokenizer.json, so the vocabulary prune sees real buckets)
#include <QTemporaryDir>

#include <algorithm>
#include <memory>
#include <optional>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/estimate/estimate.h"
#include "core/fixtures/tiny_checkpoint.h"
#include "core/model/checkpoint.h"

using namespace whittle;

int main(int argc, char** argv) {
    std::string tokenizer, only, model;
    for (int i = 1; i + 1 < argc; ++i) {
        if (std::string(argv[i]) == "--tokenizer") tokenizer = argv[i + 1];
        if (std::string(argv[i]) == "--only") only = argv[i + 1];    // one recipe by name
        if (std::string(argv[i]) == "--model") model = argv[i + 1];  // e2b-full or e4b-full
    }
    const std::vector<std::pair<const char*, const char*>> recipes{
        {"none", R"({"whittle_recipe": 1})"},
        {"english", R"({"whittle_recipe": 1, "vocabulary": {"preset": "english"}})"},
        {"text_only+english+int4", R"({"whittle_recipe": 1, "text_only": true, "vocabulary": {"preset": "english"},
                                       "quantization": {"method": "gptq", "group_size": 128}})"},
        {"flap0.2+gptq", R"({"whittle_recipe": 1, "flap": {"ratio": 0.2}, "quantization": {"method": "gptq"}})"},
        {"nvfp4", R"({"whittle_recipe": 1, "quantization": {"method": "nvfp4"}})"},
        {"budget3.5", R"({"whittle_recipe": 1, "quantization": {"method": "budget", "bpw": 3.5}})"},
    };
    QTemporaryDir dir;
    Json out = Json::object();
    for (const char* preset : {"e2b-full", "e4b-full"}) {
        if (!model.empty() && model != preset) continue;
        TinyCheckpointOptions to;
        to.preset = preset;
        to.zeros = true;
        if (!tokenizer.empty()) to.tokenizer = tokenizer;
        NullProgress np;
        const auto path = std::filesystem::path(dir.path().toStdString()) / preset;
        makeTinyCheckpoint(path, to, np, CancelToken{});
        const auto ms = [](auto&& f) {
            const auto t0 = std::chrono::steady_clock::now();
            f();
            return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        };
        const auto shared = std::make_shared<const Checkpoint>(Checkpoint::open(path));
        for (const auto& [name, json] : recipes) {
            if (!only.empty() && only != name) continue;
            const Recipe r = parseRecipe(Json::parse(json), name);
            RuntimeOptions rt;
            Json row;
            {
                const Estimator fresh(shared);
                row["cold_ms"] = ms([&] { (void)fresh.estimate(r, rt); });
                Recipe other = r;  // the same text-only and vocabulary, another quantization
                other.quantization = QuantizeRecipe{};
                other.quantization->groupSize = r.quantization && r.quantization->groupSize == 32 ? 64 : 32;
                row["after_vocabulary_ms"] = ms([&] { (void)fresh.estimate(other, rt); });
            }
            const Estimator est(shared);
            est.prepare(r);
            std::vector<double> warm;
            for (int i = 0; i < 50; ++i) {
                rt.context = 4096 << (i % 6);  // the context slider moving
                std::optional<Estimate> e;
                warm.push_back(ms([&] { e = est.cached(r, rt); }));
                if (!e || e->output.diskBytes() == 0) return 1;
            }
            std::sort(warm.begin(), warm.end());
            row["warm_median_ms"] = warm[warm.size() / 2];
            row["warm_max_ms"] = warm.back();
            out[preset][name] = row;
        }
    }
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
}
