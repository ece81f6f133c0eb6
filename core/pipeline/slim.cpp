#include "core/pipeline/slim.h"

#include <chrono>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/io/atomic_output.h"
#include "core/recipes/flap.h"
#include "core/recipes/quantize.h"
#include "core/recipes/recipe.h"
#include "core/recipes/text_only.h"
#include "core/recipes/vocab_prune.h"

namespace fs = std::filesystem;

namespace whittle {

std::vector<std::string> slimStages(const Recipe& r) {
    std::vector<std::string> s;
    if (r.textOnly) s.push_back("text_only");
    if (r.vocabulary) s.push_back("vocabulary");
    if (r.flap) s.push_back("flap");
    if (r.quantization) s.push_back("quantization");
    return s;
}

Json toJson(const SlimReport& r) {
    Json stages = Json::array();
    for (std::size_t i = 0; i < r.stages.size(); ++i) stages.push_back(Json{{"stage", r.stages[i]}, {"report", r.stageReports[i]}});
    return Json{{"stages", stages}, {"bytes_written", r.bytesWritten}, {"seconds", r.seconds}};
}

namespace {

// Reports a stage's progress as "i/n name: stage".
class StageProgress final : public Progress {
public:
    StageProgress(Progress& inner, std::string prefix) : inner_(inner), prefix_(std::move(prefix)) {}
    void report(const ProgressReport& r) override {
        ProgressReport p = r;
        p.stage = prefix_ + r.stage;
        inner_.report(p);
    }

private:
    Progress& inner_;
    std::string prefix_;
};

}  // namespace

SlimReport slim(const Checkpoint& ck, const Recipe& recipe, const fs::path& dest, bool force, Progress& progress, const CancelToken& cancel) {
    const auto t0 = std::chrono::steady_clock::now();
    SlimReport rep;
    rep.stages = slimStages(recipe);
    if (rep.stages.empty()) throw UsageError("the recipe has nothing to do: give text_only, vocabulary, flap or quantization");
    if (recipe.quantization && recipe.quantization->format.rfind("gguf-", 0) == 0)
        throw UsageError("quantization.format " + recipe.quantization->format +
                         ": slim writes safetensors formats; export its output with whittle-cli export");
    AtomicOutputDir out(dest, force, {ck.dir()});
    fs::path input = ck.dir();
    for (std::size_t i = 0; i < rep.stages.size(); ++i) {
        cancel.throwIfCancelled();
        const std::string& stage = rep.stages[i];
        const fs::path stageDir = out.path() / ("stage-" + std::to_string(i + 1) + "-" + stage);
        StageProgress sp(progress, std::to_string(i + 1) + "/" + std::to_string(rep.stages.size()) + " " + stage + ": ");
        const Checkpoint in = Checkpoint::open(input);
        Recipe one;  // the stage's own section, so each whittle.json says what that stage did
        Json report;
        if (stage == "text_only") {
            one.textOnly = true;
            report = toJson(textOnlyRepack(in, one, stageDir, false, sp, cancel));
        } else if (stage == "vocabulary") {
            one.vocabulary = recipe.vocabulary;
            report = toJson(pruneVocabulary(in, one, stageDir, false, sp, cancel));
        } else if (stage == "flap") {
            one.flap = recipe.flap;
            report = toJson(flapPrune(in, one, stageDir, false, sp, cancel));
        } else {
            one.quantization = recipe.quantization;
            report = toJson(quantizeCheckpoint(in, one, stageDir, false, sp, cancel));
        }
        rep.stageReports.push_back(report);
        if (input != ck.dir()) fs::remove_all(input);  // the previous stage's folder: no longer needed
        input = stageDir;
    }
    // The last stage's files become the output folder's (its own whittle.json gives way to the run's).
    for (const auto& e : fs::directory_iterator(input))
        if (e.path().filename() != "whittle.json") fs::rename(e.path(), out.path() / e.path().filename());
    fs::remove_all(input);
    rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (const auto& e : fs::directory_iterator(out.path()))
        if (e.is_regular_file()) rep.bytesWritten += e.file_size();
    writeJsonFile(out.path() / "whittle.json", Json{{"recipe", toJson(recipe)}, {"source", ck.dir().string()}, {"slim", toJson(rep)}});
    (void)Checkpoint::open(out.path());  // the result must open before it replaces anything
    out.commit();
    return rep;
}

}  // namespace whittle
