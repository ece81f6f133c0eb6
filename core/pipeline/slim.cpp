#include "core/pipeline/slim.h"

#include <algorithm>
#include <chrono>
#include <optional>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/estimate/estimate.h"
#include "core/export/gguf_export.h"
#include "core/io/atomic_output.h"
#include "core/model/checkpoint_files.h"
#include "core/model/inventory.h"
#include "core/pipeline/plan.h"
#include "core/pipeline/quality.h"
#include "core/pipeline/tensor_stream.h"
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
    for (std::size_t i = 0; i < r.stages.size(); ++i) {
        stages.push_back(Json{{"stage", r.stages[i]}, {"report", r.stageReports[i]}, {"seconds", r.stageSeconds[i]}});
        if (i < r.stagePass.size()) stages.back()["pass"] = r.stagePass[i];
    }
    Json passes = Json::array();
    for (const SlimPass& p : r.passes) passes.push_back(Json{{"stages", p.stages}, {"seconds", p.seconds}, {"bytes_written", p.bytesWritten}});
    Json j{{"plan", toJson(r.plan)}, {"stages", stages}, {"passes", passes}, {"bytes_written", r.bytesWritten}, {"seconds", r.seconds}};
    if (r.quality) j["quality"] = toJson(*r.quality);
    return j;
}

namespace {

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
    // Every check before any work (errors name the recipe field); the plan's estimator keeps the stages it made.
    const Estimator estimator(std::shared_ptr<const Checkpoint>(&ck, [](const Checkpoint*) {}));
    rep.plan = planSlim(estimator, recipe);
    // Export writes other formats of the result and evaluation measures it: neither transforms.
    const std::size_t transforms = rep.stages.size() - (recipe.exports ? 1 : 0) - (recipe.evaluation ? 1 : 0);
    const std::string n = std::to_string(rep.stages.size());
    rep.stageReports.resize(transforms);
    rep.stageSeconds.resize(transforms);
    rep.stagePass.resize(transforms);
    AtomicOutputDir out(dest, force, {ck.dir()});
    const Json hashes = inputHashes(ck.dir(), progress, cancel);

    // The checkpoint on disk the stream reads (the input, then each pass's folder inside the partial output),
    // and the stream transforms not yet written (indices into rep.stages).
    std::optional<Checkpoint> current;
    fs::path currentDir = ck.dir();
    auto currentCheckpoint = [&]() -> const Checkpoint& { return current ? *current : ck; };
    TensorStream stream = checkpointStream(ck);
    std::vector<std::size_t> pending;
    // The folder just written becomes what the next stage reads; the one before it is no longer needed.
    auto adopt = [&](const fs::path& dir) {
        Checkpoint next = Checkpoint::open(dir);  // a pass's output must open before anything builds on it
        if (currentDir != ck.dir()) fs::remove_all(currentDir);
        currentDir = dir;
        current.emplace(std::move(next));
        stream = checkpointStream(*current);
    };
    // A pass over the stages `ks` (indices into rep.stages): its folder and its progress label ("1-2/5 a+b: ").
    struct PassName {
        fs::path dir;
        std::string label;
    };
    auto passName = [&](const std::vector<std::size_t>& ks) {
        std::string names;
        for (std::size_t k : ks) names += (names.empty() ? "" : "+") + rep.stages[k];
        const std::string span = std::to_string(ks.front() + 1) + (ks.size() > 1 ? "-" + std::to_string(ks.back() + 1) : "");
        return PassName{out.path() / ("pass-" + std::to_string(rep.passes.size() + 1) + "-" + names), span + "/" + n + " " + names + ": "};
    };
    // Records a pass that wrote `bytes` for the stages `ks` in `seconds`, and makes its folder the current checkpoint.
    auto recordPass = [&](const std::vector<std::size_t>& ks, const fs::path& dir, double seconds, std::uint64_t bytes) {
        std::vector<std::string> stages;
        for (std::size_t k : ks) {
            rep.stageSeconds[k] += seconds;
            rep.stagePass[k] = int(rep.passes.size()) + 1;
            stages.push_back(rep.stages[k]);
        }
        rep.passes.push_back(SlimPass{stages, seconds, bytes});
        pending.clear();
        adopt(dir);
    };
    // Writes the pending transforms as one pass over the bytes they read.
    auto flush = [&]() {
        const std::vector<std::size_t> ks = pending;
        const PassName p = passName(ks);
        fs::create_directory(p.dir);
        PrefixedProgress sp(progress, p.label);
        const auto ts = std::chrono::steady_clock::now();
        const StreamWriteReport w = writeStream(stream, p.dir, sp, cancel);
        for (std::size_t k : ks) rep.stageReports[k]["bytes_written"] = w.tensorBytes;
        recordPass(ks, p.dir, secondsSince(ts), w.tensorBytes);
    };

    for (std::size_t i = 0; i < transforms; ++i) {
        cancel.throwIfCancelled();
        const auto ts = std::chrono::steady_clock::now();
        const std::string& stage = rep.stages[i];
        PrefixedProgress sp(progress, std::to_string(i + 1) + "/" + n + " " + stage + ": ");
        if (stage == "text_only") {
            sp.report(ProgressReport{"dropping the towers (written with the pass)", 0});
            TextOnlyReport r;
            stream = textOnlyStream(std::move(stream), r);
            rep.stageReports[i] = toJson(r);
        } else if (stage == "vocabulary") {
            sp.report(ProgressReport{"the tokens and tokenizer the plan selected (written with the pass)", 0});
            // The plan selected the tokens and rewrote the tokenizer: its kept stage is this stage's stream, with
            // text-only's transform when the recipe has it (the stages before the vocabulary; none was written).
            Estimator::KeptStream kept = estimator.keptStream(recipe);
            stream = std::move(kept.stream);
            rep.stageReports[i] = toJson(*kept.vocabulary);
        } else if (stage == "flap") {
            if (!pending.empty()) flush();  // FLAP calibrates on the model the stages before it made
            FlapReport r;
            const FlapSelection sel = selectFlapChannels(currentCheckpoint(), *recipe.flap, r, sp, cancel);
            stream = flapStream(std::move(stream), *recipe.flap, sel, r);
            rep.stageReports[i] = toJson(r);
        } else {
            // Quantization writes the pass. RTN and NVFP4 read the pending transforms' stream as a checkpoint,
            // so they fuse with them; GPTQ and the bit budget run the model the stages before them made, which
            // must be written first.
            const std::string& method = recipe.quantization->method;
            if ((method == "gptq" || method == "budget") && !pending.empty()) flush();
            const auto tq = std::chrono::steady_clock::now();  // after any flush, which counts as its own pass
            std::vector<std::size_t> ks = pending;
            ks.push_back(i);
            const PassName p = passName(ks);
            PrefixedProgress qp(progress, p.label);
            Recipe one;  // the stage's own section, so its report says what it did
            one.quantization = recipe.quantization;
            std::optional<Checkpoint> streamed;
            if (!pending.empty()) streamed.emplace(streamCheckpoint(stream));
            const QuantizeReport q = quantizeCheckpoint(streamed ? *streamed : currentCheckpoint(), one, p.dir, false, qp, cancel);
            streamed.reset();
            rep.stageReports[i] = toJson(q);
            for (std::size_t k : pending) rep.stageReports[k]["bytes_written"] = q.bytesWritten;
            recordPass(ks, p.dir, secondsSince(tq), q.bytesWritten);
            continue;
        }
        rep.stageSeconds[i] = secondsSince(ts);  // its own work; the pass that writes it adds the writing
        pending.push_back(i);
    }
    if (!pending.empty()) flush();

    if (recipe.exports) {
        // From the last pass's folder (a GGUF is never written into the checkpoint folder it reads), named
        // after the destination, so each file equals what `whittle-cli export OUT` writes.
        const auto ts = std::chrono::steady_clock::now();
        PrefixedProgress sp(progress, std::to_string(transforms + 1) + "/" + n + " export: ");
        Json reports = Json::array();
        for (const std::string& f : recipe.exports->formats) {
            GgufExportOptions o;
            o.weightType = ggufFormatType(f, "export.formats");
            o.name = out.destination().filename().string();
            const GgufExportReport g = exportGguf(currentCheckpoint(), out.path() / ggufFileName(f), o, sp, cancel);
            Json j = toJson(g);
            j["format"] = f;
            j["file"] = ggufFileName(f);  // inside the output (the path written was the partial folder's)
            reports.push_back(j);
        }
        rep.stageReports.push_back(reports);
        rep.stageSeconds.push_back(secondsSince(ts));
    }
    // The last pass's files become the output folder's (a quantization pass's own whittle.json gives way to the run's).
    stream = TensorStream{};  // its reader points into the checkpoint released next
    current.reset();
    for (const auto& e : fs::directory_iterator(currentDir))
        if (e.path().filename() != files::kWhittleReport) fs::rename(e.path(), out.path() / e.path().filename());
    fs::remove_all(currentDir);
    const Checkpoint result = Checkpoint::open(out.path());  // the result must open before it replaces anything
    if (recipe.evaluation) {
        const auto ts = std::chrono::steady_clock::now();
        PrefixedProgress sp(progress, n + "/" + n + " evaluation: ");
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
