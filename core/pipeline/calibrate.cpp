#include "core/pipeline/calibrate.h"

#include <chrono>

#include "core/estimate/estimate.h"
#include "core/io/atomic_output.h"
#include "core/pipeline/plan.h"
#include "core/pipeline/tensor_stream.h"
#include "core/recipes/quantize.h"

namespace fs = std::filesystem;

namespace whittle {

namespace {

bool flapNeedsWidths(const Recipe& r) { return r.flap && r.flap->widths.empty(); }
bool budgetNeedsFormats(const Recipe& r) { return r.quantization && r.quantization->method == "budget" && r.quantization->formats.empty(); }

}  // namespace

bool needsCalibration(const Recipe& r) { return flapNeedsWidths(r) || budgetNeedsFormats(r); }

CalibratedRecipe calibrateRecipe(const Checkpoint& ck, const Recipe& recipe, const fs::path& scratch, Progress& progress, const CancelToken& cancel) {
    // The caller's checkpoint, not owned: the estimator lives only for this call.
    const Estimator estimator(std::shared_ptr<const Checkpoint>(&ck, [](const Checkpoint*) {}));
    return calibrateRecipe(estimator, recipe, scratch, progress, cancel);
}

CalibratedRecipe calibrateRecipe(const Estimator& estimator, const Recipe& recipe, const fs::path& scratch, Progress& progress,
                                 const CancelToken& cancel) {
    const auto t0 = std::chrono::steady_clock::now();
    const Checkpoint& ck = estimator.checkpoint();
    (void)planSlim(estimator, recipe);  // the run's own checks first, naming the recipe field; its stages stay kept
    CalibratedRecipe out{recipe, {}, {}, 0};
    if (!needsCalibration(recipe)) return out;

    // Declared in this order so that the stream (which reads the current checkpoint) goes first, and the
    // scratch folder last.
    AtomicOutputDir work(scratch, true, {ck.dir()});  // never committed: removed with everything in it
    std::optional<Checkpoint> current;
    TensorStream stream = checkpointStream(ck);
    bool pending = false;  // transforms not yet on disk
    int written = 0;
    // The stages before a calibration are written out for it to run, as slim's passes are.
    auto materialize = [&](const char* what) {
        if (!pending) return;
        const fs::path dir = work.path() / ("stage-" + std::to_string(++written));
        fs::create_directory(dir);
        PrefixedProgress p(progress, std::string("writing the model ") + what + " calibrates on: ");
        (void)writeStream(stream, dir, p, cancel);
        Checkpoint next = Checkpoint::open(dir);
        current.emplace(std::move(next));
        stream = checkpointStream(*current);
        pending = false;
    };
    auto model = [&]() -> const Checkpoint& { return current ? *current : ck; };

    if (recipe.textOnly || recipe.vocabulary) {  // the plan's text-only + vocabulary stage (the tokenizer is not read again)
        stream = estimator.keptStream(recipe).stream;
        pending = true;
    }
    if (recipe.flap && (flapNeedsWidths(recipe) || budgetNeedsFormats(recipe))) {
        materialize("FLAP");
        PrefixedProgress p(progress, "flap: ");
        FlapReport rep;
        const FlapSelection sel = selectFlapChannels(model(), *recipe.flap, rep, p, cancel);
        out.recipe.flap->widths = rep.widthsAfter;
        if (budgetNeedsFormats(recipe)) {
            stream = flapStream(std::move(stream), *recipe.flap, sel, rep);
            pending = true;
        }
        if (flapNeedsWidths(recipe)) out.flap = rep;
    }
    if (budgetNeedsFormats(recipe)) {
        materialize("the bit budget");
        PrefixedProgress p(progress, "bit budget: ");
        out.budget = planBitBudget(model(), *recipe.quantization, work.path(), p, cancel);
        out.recipe.quantization->formats = formatIds(*out.budget);
    }
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return out;
}

}  // namespace whittle
