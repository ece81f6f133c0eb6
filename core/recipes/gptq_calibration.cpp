#include "core/recipes/gptq_calibration.h"

#include <chrono>
#include <fstream>
#include <random>
#include <set>

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
    v.format = WeightFormat::GptqInt;
    v.rows = g.outFeatures;
    v.cols = g.inFeatures;
    v.name = name;
    v.data = reinterpret_cast<const std::byte*>(g.qweight.data());
    const bool residual = !g.residualScales.empty();
    v.gptq = {reinterpret_cast<const std::byte*>(g.qzeros.data()), reinterpret_cast<const std::byte*>(g.scales.data()),
              reinterpret_cast<const std::byte*>(g.gIdx.data()), g.groups(), g.bits,
              residual ? reinterpret_cast<const std::byte*>(g.qresidual.data()) : nullptr,
              residual ? reinterpret_cast<const std::byte*>(g.residualScales.data()) : nullptr};
    return v;
}

// Per-window state of the layer-by-layer path: the residual stream x [T, H] at the current layer boundary,
// and the keys and values [T, nkv·hd] of every layer a KV-shared layer reads. In RAM up to `limit` bytes in
// all, otherwise in one temporary file (removed at the end) that each layer step reads and rewrites.
class WindowStates {
public:
    WindowStates(const std::vector<std::vector<std::size_t>>& floats, std::uint64_t limit, const fs::path& dir) {
        std::uint64_t total = 0;
        for (const auto& w : floats) {
            offsets_.emplace_back();
            sizes_.push_back(w);
            for (std::size_t n : w) {
                offsets_.back().push_back(total);
                total += n;
            }
        }
        bytes_ = total * 4;
        if (bytes_ <= limit) {
            memory_.assign(std::size_t(total), 0.0f);
            return;
        }
        std::random_device rd;
        path_ = (dir.empty() ? fs::temp_directory_path() : dir) / ("whittle-gptq-" + std::to_string(rd()) + "-" + std::to_string(rd()) + ".states");
        file_.open(path_, std::ios::binary | std::ios::in | std::ios::out | std::ios::trunc);
        if (!file_) throw Error(path_.string(), {}, "cannot create the GPTQ calibration state file");
    }
    ~WindowStates() {
        if (!path_.empty()) {
            file_.close();
            std::error_code ec;
            fs::remove(path_, ec);
        }
    }
    WindowStates(const WindowStates&) = delete;
    WindowStates& operator=(const WindowStates&) = delete;
    std::uint64_t bytes() const { return bytes_; }
    bool onDisk() const { return !path_.empty(); }
    void write(std::size_t w, std::size_t slot, const float* src) {
        const std::uint64_t off = offsets_[w][slot];
        const std::size_t n = sizes_[w][slot];
        if (!onDisk()) return void(std::copy_n(src, n, memory_.begin() + std::ptrdiff_t(off)));
        file_.seekp(std::streamoff(off * 4));
        file_.write(reinterpret_cast<const char*>(src), std::streamsize(n * 4));
        if (!file_) throw Error(path_.string(), {}, "cannot write the GPTQ calibration state file (disk full?)");
    }
    void read(std::size_t w, std::size_t slot, float* dst) {
        const std::uint64_t off = offsets_[w][slot];
        const std::size_t n = sizes_[w][slot];
        if (!onDisk()) return void(std::copy_n(memory_.begin() + std::ptrdiff_t(off), n, dst));
        file_.seekg(std::streamoff(off * 4));
        file_.read(reinterpret_cast<char*>(dst), std::streamsize(n * 4));
        if (!file_) throw Error(path_.string(), {}, "cannot read back the GPTQ calibration state file");
    }

private:
    std::vector<std::vector<std::uint64_t>> offsets_;
    std::vector<std::vector<std::size_t>> sizes_;
    std::uint64_t bytes_ = 0;
    std::vector<float> memory_;
    fs::path path_;
    std::fstream file_;
};

}  // namespace

void calibrateLayers(const Checkpoint& ck, const std::function<bool(const ExpectedTensor&)>& selected,
                     const std::vector<std::vector<int>>& windows, const GptqOptions& options, const CancelToken& cancel,
                     const LayerVisitor& visit) {
    if (windows.empty()) throw UsageError("calibration needs at least one window");
    ReferenceModel model(ck, {});
    const Gemma4Config& c = model.config();
    std::size_t maxLen = 0;
    for (const auto& w : windows) maxLen = std::max(maxLen, w.size());
    const bool layerwise = options.calibration == GptqOptions::Calibration::Layerwise;
    constexpr int chunk = 64;
    ReferenceSession session(model, int(maxLen), chunk, layerwise);

    // The selected linears, grouped by layer and then by site (the linears of a site share their input).
    std::map<int, SiteLinears> layers;
    for (const ExpectedTensor& e : ck.table())
        if (e.linear && e.read && selected(e)) layers[e.layer][linearSite(e.role)].push_back(&e);

    // A tap that feeds one Hessian per site of `layer`.
    auto makeTap = [&](int layer, const SiteLinears& sites, std::map<LinearSite, Hessian>& hessians) {
        LinearTap tap;
        tap.layer = layer;
        for (const auto& [site, linears] : sites) {
            hessians.emplace(site, Hessian(linears.front()->shape[1], &model.pool(), options.hessianBatch, &cancel));
            tap.sites.push_back(site);
        }
        tap.observe = [&hessians](LinearSite site, const float* x, int T, int width) {
            Hessian& h = hessians.at(site);
            if (width != h.dim()) throw Error("internal: a calibration site's width differs from its weights' inputs");
            h.add(x, T);
        };
        return tap;
    };
    if (!layerwise) {
        // Each layer's inputs: the windows run from the embeddings through the (quantized) layers before it,
        // the forward stopping at the layer's last site.
        for (const auto& [layer, sites] : layers) {
            std::map<LinearSite, Hessian> hessians;
            session.setLinearTap(makeTap(layer, sites, hessians));
            for (const auto& w : windows) {
                cancel.throwIfCancelled();
                session.reset();
                session.forward(w);
            }
            session.setLinearTap(std::nullopt);
            visit(model, layer, sites, hessians);
        }
    } else if (!layers.empty()) {
        // Layer by layer: each window's residual stream is kept at the current layer boundary, so layer l costs
        // one step of layer l per window to observe its sites (original weights) and one to advance the stream
        // through it (quantized weights) — the same values the re-run path computes, in the same order.
        const std::size_t H = std::size_t(c.hiddenSize), P = std::size_t(c.pleDim);
        std::set<int> producers;  // layers whose K/V a KV-shared layer reads
        for (const LayerSpec& l : c.layers)
            if (!l.ownsKv) producers.insert(l.kvSource);
        std::map<int, std::size_t> producerSlot;  // slot of the keys; the values follow
        for (int p : producers) producerSlot[p] = 1 + 2 * producerSlot.size();
        std::vector<std::vector<std::size_t>> floats;
        for (const auto& w : windows) {
            floats.push_back({w.size() * H});
            for (int p : producers) {
                const std::size_t kv = w.size() * std::size_t(c.numKvHeads) * std::size_t(c.layers[std::size_t(p)].headDim);
                floats.back().push_back(kv);
                floats.back().push_back(kv);
            }
        }
        WindowStates states(floats, options.calibrationMemory, options.scratchDir);
        std::vector<float> x(maxLen * H), x0(maxLen * H), ple(maxLen * P), observed(maxLen * H);
        for (std::size_t wi = 0; wi < windows.size(); ++wi) {
            session.embed(windows[wi], x.data());
            states.write(wi, 0, x.data());
        }
        const int last = layers.rbegin()->first;
        auto sel = layers.find(-1);
        if (sel != layers.end()) {
            // The PLE model projection reads x0.
            std::map<LinearSite, Hessian> hessians;
            LinearTap tap = makeTap(-1, sel->second, hessians);
            for (std::size_t wi = 0; wi < windows.size(); ++wi) {
                cancel.throwIfCancelled();
                states.read(wi, 0, x.data());
                for (const LinearSite site : tap.sites) tap.observe(site, x.data(), int(windows[wi].size()), int(H));
            }
            visit(model, -1, sel->second, hessians);
        }
        // One layer step of window wi: per-layer inputs from the (current) PLE projection, the source's K/V
        // restored for a KV-shared layer.
        auto step = [&](int li, std::size_t wi, float* xs) {
            const std::vector<int>& w = windows[wi];
            const int T = int(w.size());
            session.embed(w, x0.data());
            session.pleInputs(w, x0.data(), li, ple.data());
            const LayerSpec& spec = c.layers[std::size_t(li)];
            if (!spec.ownsKv) {
                const std::size_t s = producerSlot.at(spec.kvSource);
                states.read(wi, s, session.kvCache(spec.kvSource, false, T).data());
                states.read(wi, s + 1, session.kvCache(spec.kvSource, true, T).data());
            }
            session.forwardLayer(li, xs, ple.data(), T);
        };
        for (int li = 0; li <= last; ++li) {
            sel = layers.find(li);
            if (sel != layers.end()) {
                std::map<LinearSite, Hessian> hessians;
                session.setLinearTap(makeTap(li, sel->second, hessians));
                for (std::size_t wi = 0; wi < windows.size(); ++wi) {
                    cancel.throwIfCancelled();
                    states.read(wi, 0, observed.data());
                    step(li, wi, observed.data());
                }
                session.setLinearTap(std::nullopt);
                visit(model, li, sel->second, hessians);
            }
            if (li == last) break;
            for (std::size_t wi = 0; wi < windows.size(); ++wi) {
                cancel.throwIfCancelled();
                states.read(wi, 0, x.data());
                step(li, wi, x.data());
                states.write(wi, 0, x.data());
                if (producers.count(li)) {
                    const int T = int(windows[wi].size());
                    states.write(wi, producerSlot.at(li), session.kvCache(li, false, T).data());
                    states.write(wi, producerSlot.at(li) + 1, session.kvCache(li, true, T).data());
                }
            }
        }
    }
}

GptqRun runGptq(const Checkpoint& ck, const std::function<bool(const ExpectedTensor&)>& selected,
                const std::vector<std::vector<int>>& windows, const GptqOptions& options, Progress& progress, const CancelToken& cancel,
                const std::map<std::string, IntOptions>& formats) {
    const auto t0 = std::chrono::steady_clock::now();
    if (windows.empty()) throw UsageError("GPTQ needs at least one calibration window");
    std::uint64_t total = 0;
    for (const ExpectedTensor& e : ck.table())
        if (e.linear && e.read && selected(e)) total += std::uint64_t(e.shape[0] * e.shape[1]);
    GptqRun run;
    run.windows = int(windows.size());
    for (const auto& w : windows) run.tokens += std::int64_t(w.size());
    StageMeter meter(progress, "GPTQ", total);
    std::vector<float> weight;
    // Quantizes a layer's linears from its sites' Hessians, then swaps them into the engine. Swapped in only
    // after all of them: the layer's sites were all observed with its original weights (one pass per layer
    // instead of one per site), and the next layer sees this one quantized.
    calibrateLayers(ck, selected, windows, options, cancel,
                    [&](ReferenceModel& model, int layer, const SiteLinears& sites, const std::map<LinearSite, Hessian>& hessians) {
                        for (const auto& [site, linears] : sites)
                            for (const ExpectedTensor* e : linears) {
                                const auto ts = std::chrono::steady_clock::now();
                                const WeightView& original = model.linearWeight(e->role, layer);
                                weight.resize(std::size_t(original.numel()));
                                model.pool().parallelFor(std::size_t(original.rows), [&](std::size_t r) {
                                    original.row(std::int64_t(r), &weight[r * std::size_t(original.cols)]);
                                });
                                GptqOptions o = options;
                                if (const auto f = formats.find(e->name); f != formats.end()) {
                                    o.bits = f->second.bits;
                                    o.groupSize = f->second.groupSize;
                                    o.symmetric = f->second.symmetric;
                                    o.residual = f->second.residual;
                                }
                                std::int64_t done = 0;
                                GptqResult res = quantizeGptq(weight, original.rows, original.cols, hessians.at(site), o, e->name, model.pool(),
                                                              cancel, [&](std::int64_t cols) {
                                                                  meter.advance(std::uint64_t((cols - done) * original.rows));
                                                                  done = cols;
                                                              });
                                run.packed.emplace(e->name, packGptqV1(res.tensor, e->name, &model.pool()));
                                run.stats.push_back({e->name, res.dampUsed, res.deadInputs, res.loss,
                                                     std::chrono::duration<double>(std::chrono::steady_clock::now() - ts).count()});
                            }
                        for (const auto& [site, linears] : sites)
                            for (const ExpectedTensor* e : linears) model.replaceWeight(e->role, layer, viewOf(run.packed.at(e->name), e->name));
                    });
    meter.finish();
    run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return run;
}

}  // namespace whittle
