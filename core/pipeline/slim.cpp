#include "core/pipeline/slim.h"

#include <algorithm>
#include <chrono>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/export/gguf_export.h"
#include "core/io/atomic_output.h"
#include "core/model/checkpoint_files.h"
#include "core/model/inventory.h"
#include "core/pipeline/plan.h"
#include "core/pipeline/quality.h"
#include "core/recipes/flap.h"
#include "core/recipes/quantize.h"
#include "core/recipes/recipe.h"
#include "core/recipes/text_only.h"
#include "core/recipes/vocab_prune.h"
#include "core/util/sha256.h"

namespace fs = std::filesystem;

namespace whittle {

std::vector<std::string> slimStages(const Recipe& r) {
    std::vector<std::string> s;
    if (r.textOnly) s.push_back("text_only");
    if (r.vocabulary) s.push_back("vocabulary");
    if (r.flap) s.push_back("flap");
    if (r.quantization) s.push_back("quantization");
    if (r.exports) s.push_back("export");
    if (r.evaluation) s.push_back("evaluation");
    return s;
}

Json toJson(const SlimReport& r) {
    Json stages = Json::array();
    for (std::size_t i = 0; i < r.stages.size(); ++i)
        stages.push_back(Json{{"stage", r.stages[i]}, {"report", r.stageReports[i]}, {"seconds", r.stageSeconds[i]}});
    Json j{{"plan", toJson(r.plan)}, {"stages", stages}, {"bytes_written", r.bytesWritten}, {"seconds", r.seconds}};
    if (r.quality) j["quality"] = toJson(*r.quality);
    return j;
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

double secondsSince(std::chrono::steady_clock::time_point t) { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count(); }

// Each regular file of the input folder: name, bytes, SHA-256 (so a variant names exactly what it was made from).
Json inputHashes(const fs::path& dir, Progress& progress, const CancelToken& cancel) {
    std::vector<fs::path> names;
    std::uint64_t total = 0;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.is_regular_file()) {
            names.push_back(e.path());
            total += e.file_size();
        }
    std::sort(names.begin(), names.end());
    StageMeter meter(progress, "input: hashing", total);
    Json files = Json::array();
    for (const auto& f : names) {
        const std::uint64_t size = fs::file_size(f);
        files.push_back(Json{{"name", f.filename().string()}, {"bytes", size}, {"sha256", sha256File(f, cancel)}});
        meter.advance(size);
    }
    meter.finish();
    return files;
}

// Parameters and bytes by part, from the headers.
Json partsOf(const Checkpoint& ck) {
    const Json inv = toJson(makeInventory(ck));
    return Json{{"total", inv["total"]}, {"parts", inv["parts"]}, {"file_bytes", inv["file_bytes"]}};
}

}  // namespace

SlimReport slim(const Checkpoint& ck, const Recipe& recipe, const fs::path& dest, bool force, Progress& progress, const CancelToken& cancel) {
    const auto t0 = std::chrono::steady_clock::now();
    SlimReport rep;
    rep.stages = slimStages(recipe);
    rep.plan = planSlim(ck, recipe);  // every check before any work: errors name the recipe field
    // Export writes other formats of the result and evaluation measures it: neither transforms.
    const std::size_t transforms = rep.stages.size() - (recipe.exports ? 1 : 0) - (recipe.evaluation ? 1 : 0);
    AtomicOutputDir out(dest, force, {ck.dir()});
    const Json hashes = inputHashes(ck.dir(), progress, cancel);
    fs::path input = ck.dir();
    for (std::size_t i = 0; i < transforms; ++i) {
        cancel.throwIfCancelled();
        const auto ts = std::chrono::steady_clock::now();
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
        rep.stageSeconds.push_back(secondsSince(ts));
        if (input != ck.dir()) fs::remove_all(input);  // the previous stage's folder: no longer needed
        input = stageDir;
    }
    if (recipe.exports) {
        // From the last stage's folder (a GGUF is never written into the checkpoint folder it reads), named
        // after the destination, so each file equals what `whittle-cli export OUT` writes.
        const auto ts = std::chrono::steady_clock::now();
        const std::size_t k = transforms + 1;
        StageProgress sp(progress, std::to_string(k) + "/" + std::to_string(rep.stages.size()) + " export: ");
        const Checkpoint last = Checkpoint::open(input);
        Json reports = Json::array();
        for (const std::string& f : recipe.exports->formats) {
            GgufExportOptions o;
            o.weightType = ggufFormatType(f, "export.formats");
            o.name = out.destination().filename().string();
            const GgufExportReport g = exportGguf(last, out.path() / ggufFileName(f), o, sp, cancel);
            Json j = toJson(g);
            j["format"] = f;
            j["file"] = ggufFileName(f);  // inside the output (the path written was the partial folder's)
            reports.push_back(j);
        }
        rep.stageReports.push_back(reports);
        rep.stageSeconds.push_back(secondsSince(ts));
    }
    // The last stage's files become the output folder's (its own whittle.json gives way to the run's).
    for (const auto& e : fs::directory_iterator(input))
        if (e.path().filename() != files::kWhittleReport) fs::rename(e.path(), out.path() / e.path().filename());
    fs::remove_all(input);
    const Checkpoint result = Checkpoint::open(out.path());  // the result must open before it replaces anything
    if (recipe.evaluation) {
        const auto ts = std::chrono::steady_clock::now();
        const std::string n = std::to_string(rep.stages.size());
        StageProgress sp(progress, n + "/" + n + " evaluation: ");
        rep.quality = evaluateAgainstOriginal(result, ck, *recipe.evaluation, sp, cancel);
        rep.stageReports.push_back(toJson(*rep.quality));
        rep.stageSeconds.push_back(secondsSince(ts));
    }
    rep.seconds = secondsSince(t0);
    for (const auto& e : fs::directory_iterator(out.path()))
        if (e.is_regular_file()) rep.bytesWritten += e.file_size();
    Json record{{"recipe", toJson(recipe)}, {"source", ck.dir().string()}, {"input", hashes}, {"slim", toJson(rep)},
                {"before", partsOf(ck)}, {"after", partsOf(result)}};
    writeJsonFile(out.path() / files::kWhittleReport, record);
    out.commit();
    return rep;
}

}  // namespace whittle
