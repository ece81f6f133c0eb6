#include "core/recipes/gptq_calibration.h"

#include <chrono>

#include "core/error.h"
#include "core/io/file.h"
#include "core/reference/reference_model.h"
#include "core/reference/reference_session.h"

namespace fs = std::filesystem;

namespace whittle {

std::vector<std::vector<int>> calibrationWindows(const Tokenizer& tok, const std::vector<fs::path>& files, int samples, int length) {
    if (files.empty()) throw UsageError("GPTQ needs calibration text: give one or more text files");
    if (samples <= 0 || length < 2) throw UsageError("calibration needs at least one window of at least 2 tokens");
    const auto bos = tok.bosId();
    if (!bos) throw UsageError("the tokenizer has no BOS token to start calibration windows with");
    std::string text;
    std::string names;
    for (const auto& f : files) {
        text += readTextFile(f, 1ull << 30);
        text += '\n';
        names += (names.empty() ? "" : ", ") + f.string();
    }
    EncodeOptions eo;
    eo.addSpecialTokens = false;
    const std::vector<int> ids = tok.encode(text, eo);
    const std::size_t per = std::size_t(length - 1);  // each window is BOS + length − 1 text tokens
    const std::size_t fit = std::min<std::size_t>(std::size_t(samples), ids.size() / per);
    if (fit == 0)
        throw UsageError(names, {}, "holds " + std::to_string(ids.size()) + " tokens, fewer than one calibration window of " +
                                        std::to_string(length));
    std::vector<std::vector<int>> windows;
    for (std::size_t w = 0; w < fit; ++w) {
        const std::size_t start = ids.size() - (fit - w) * per;
        std::vector<int> win{*bos};
        win.insert(win.end(), ids.begin() + std::ptrdiff_t(start), ids.begin() + std::ptrdiff_t(start + per));
        windows.push_back(std::move(win));
    }
    return windows;
}

namespace {

WeightView viewOf(const GptqTensors& g, const std::string& name) {
    WeightView v;
    v.format = WeightFormat::GptqInt4;
    v.rows = g.outFeatures;
    v.cols = g.inFeatures;
    v.name = name;
    v.data = reinterpret_cast<const std::byte*>(g.qweight.data());
    v.gptq = {reinterpret_cast<const std::byte*>(g.qzeros.data()), reinterpret_cast<const std::byte*>(g.scales.data()),
              reinterpret_cast<const std::byte*>(g.gIdx.data()), g.groups()};
    return v;
}

}  // namespace

GptqRun runGptq(const Checkpoint& ck, const std::function<bool(const ExpectedTensor&)>& selected,
                const std::vector<std::vector<int>>& windows, const GptqOptions& options, Progress& progress, const CancelToken& cancel) {
    const auto t0 = std::chrono::steady_clock::now();
    if (windows.empty()) throw UsageError("GPTQ needs at least one calibration window");
    ReferenceModel model(ck, {});
    std::size_t maxLen = 0;
    for (const auto& w : windows) maxLen = std::max(maxLen, w.size());
    ReferenceSession session(model, int(maxLen), 64);

    // The linears to quantize, grouped by layer and then by site (the linears of a site share their input).
    std::map<int, std::map<LinearSite, std::vector<const ExpectedTensor*>>> layers;
    std::uint64_t total = 0;
    for (const ExpectedTensor& e : ck.table())
        if (e.linear && e.read && selected(e)) {
            layers[e.layer][linearSite(e.role)].push_back(&e);
            total += std::uint64_t(e.shape[0] * e.shape[1]);
        }

    GptqRun run;
    run.windows = int(windows.size());
    for (const auto& w : windows) run.tokens += std::int64_t(w.size());
    StageMeter meter(progress, "GPTQ", total);
    std::vector<float> weight;
    for (const auto& [layer, sites] : layers) {
        // One pass over the calibration windows collects every site's inputs of this layer, with the layers
        // before it already quantized.
        std::map<LinearSite, Hessian> hessians;
        LinearTap tap;
        tap.layer = layer;
        for (const auto& [site, linears] : sites) {
            hessians.emplace(site, Hessian(linears.front()->shape[1]));
            tap.sites.push_back(site);
        }
        tap.observe = [&hessians](LinearSite site, const float* x, int T, int width) {
            Hessian& h = hessians.at(site);
            if (width != h.dim()) throw Error("internal: a calibration site's width differs from its weights' inputs");
            h.add(x, T);
        };
        session.setLinearTap(std::move(tap));
        for (const auto& w : windows) {
            cancel.throwIfCancelled();
            session.reset();
            session.forward(w);
        }
        session.setLinearTap(std::nullopt);
        for (const auto& [site, linears] : sites)
            for (const ExpectedTensor* e : linears) {
                const auto ts = std::chrono::steady_clock::now();
                const WeightView& original = model.linearWeight(e->role, layer);
                weight.resize(std::size_t(original.numel()));
                model.pool().parallelFor(std::size_t(original.rows),
                                         [&](std::size_t r) { original.row(std::int64_t(r), &weight[r * std::size_t(original.cols)]); });
                std::int64_t done = 0;
                GptqResult res = quantizeGptq(weight, original.rows, original.cols, hessians.at(site), options, e->name, model.pool(), cancel,
                                              [&](std::int64_t cols) {
                                                  meter.advance(std::uint64_t((cols - done) * original.rows));
                                                  done = cols;
                                              });
                auto [it, inserted] = run.packed.emplace(e->name, packGptqV1(res.tensor, e->name, &model.pool()));
                run.stats.push_back({e->name, res.dampUsed, res.deadInputs, res.loss,
                                     std::chrono::duration<double>(std::chrono::steady_clock::now() - ts).count()});
            }
        // Swapped in only now: the layer's sites were all observed with its original weights (one pass per
        // layer instead of one per site), and the next layer sees this one quantized.
        for (const auto& [site, linears] : sites)
            for (const ExpectedTensor* e : linears) model.replaceWeight(e->role, layer, viewOf(run.packed.at(e->name), e->name));
    }
    meter.finish();
    run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return run;
}

}  // namespace whittle
