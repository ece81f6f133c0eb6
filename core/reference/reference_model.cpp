#include "core/reference/reference_model.h"

#include <cstring>

#include "core/error.h"

namespace whittle {

namespace {

bool allFinite(const TensorInfo& t, const TensorView& v, std::uint64_t* bad) {
    const std::byte* p = v.data();
    const std::uint64_t n = t.numel();
    for (std::uint64_t i = 0; i < n; ++i) {
        bool ok = true;
        if (t.dtype == DType::BF16 || t.dtype == DType::F16) {
            std::uint16_t u;
            std::memcpy(&u, p + 2 * i, 2);
            ok = t.dtype == DType::BF16 ? (u & 0x7f80) != 0x7f80 : (u & 0x7c00) != 0x7c00;
        } else if (t.dtype == DType::F32) {
            std::uint32_t u;
            std::memcpy(&u, p + 4 * i, 4);
            ok = (u & 0x7f800000u) != 0x7f800000u;
        }
        if (!ok) {
            *bad = i;
            return false;
        }
    }
    return true;
}

}  // namespace

ReferenceModel::ReferenceModel(const Checkpoint& ck, const ReferenceOptions& options)
    : config_(ck.config()), pool_(std::make_unique<ThreadPool>(options.threads)) {
    views_.reserve(4 * ck.table().size());  // views_ must not reallocate: WeightViews point into the mappings
    // Maps a stored tensor (kept alive in views_); weights and scales are scanned for NaN/Inf on request.
    auto mapped = [&](const TensorStore::Entry* e, bool isFloat) {
        views_.push_back(e->file->view(*e->info));
        std::uint64_t bad = 0;
        if (isFloat && options.checkFinite && !allFinite(*e->info, views_.back(), &bad))
            throw FormatError(e->file->path(), e->info->name, "holds NaN or Inf (element " + std::to_string(bad) + ")");
        return views_.back().data();
    };
    auto bind = [&](TensorRole role, int layer = -1) {
        if (const GptqLinear* g = ck.gptq(role, layer)) {
            WeightView w;
            w.format = WeightFormat::GptqInt4;
            w.rows = g->outFeatures;
            w.cols = g->inFeatures;
            w.name = tensorName(config_, role, layer);
            w.data = mapped(g->qweight, false);
            w.gptq = {mapped(g->qzeros, false), mapped(g->scales, true), mapped(g->gIdx, false), g->groups};
            // g_idx indexes the scales and zeros: an out-of-range entry would read past them.
            for (std::int64_t k = 0; k < w.cols; ++k) {
                std::int32_t v;
                std::memcpy(&v, w.gptq.gIdx + 4 * k, 4);
                if (v < 0 || v >= g->groups)
                    throw FormatError(g->gIdx->file->path(), g->gIdx->info->name, "entry " + std::to_string(k) + " is " +
                                                                                      std::to_string(v) + ", outside the " +
                                                                                      std::to_string(g->groups) + " groups");
            }
            return w;
        }
        const TensorStore::Entry* e = ck.find(role, layer);
        if (!e) throw FormatError(ck.dir().string(), tensorName(config_, role, layer), "missing from the checkpoint");
        const std::byte* data = mapped(e, true);
        const auto& s = e->info->shape;
        return WeightView{WeightFormat::Dense, e->info->dtype, data, s.size() > 1 ? s[0] : 1, s.empty() ? 1 : s.back(), e->info->name, {}};
    };
    auto vec = [&](TensorRole role, int layer = -1) {
        const WeightView w = bind(role, layer);
        std::vector<float> out(std::size_t(w.numel()));
        for (std::size_t i = 0; i < out.size(); ++i) out[i] = w.at(std::int64_t(i));
        return out;
    };
    using R = TensorRole;
    embed_ = bind(R::Embedding);
    head_ = headRole(config_) == R::Embedding ? embed_ : bind(R::LmHead);
    pleTable_ = bind(R::PleTable);
    // Every token id the head can emit must have a PLE row (GEMMA4.md §1); published models have equal sizes.
    if (pleTable_.rows < embed_.rows)
        throw FormatError((ck.dir() / "config.json").string(), pleTable_.name,
                          "vocab_size_per_layer_input (" + std::to_string(pleTable_.rows) + ") is smaller than vocab_size (" +
                              std::to_string(embed_.rows) + "): some tokens would have no per-layer embedding");
    pleModelProj_ = bind(R::PleModelProjection);
    pleProjNorm_ = vec(R::PleProjectionNorm);
    finalNorm_ = vec(R::FinalNorm);
    for (const LayerSpec& l : config_.layers) {
        const int i = l.index;
        Layer L;
        L.inputNorm = vec(R::InputNorm, i);
        L.q = bind(R::QProj, i);
        L.qNorm = vec(R::QNorm, i);
        if (l.ownsKv) {
            L.k = bind(R::KProj, i);
            L.v = bind(R::VProj, i);
            L.kNorm = vec(R::KNorm, i);
        }
        L.o = bind(R::OProj, i);
        L.postAttentionNorm = vec(R::PostAttentionNorm, i);
        L.preFeedforwardNorm = vec(R::PreFeedforwardNorm, i);
        L.gate = bind(R::GateProj, i);
        L.up = bind(R::UpProj, i);
        L.down = bind(R::DownProj, i);
        L.postFeedforwardNorm = vec(R::PostFeedforwardNorm, i);
        L.pleGate = bind(R::PleInputGate, i);
        L.pleProj = bind(R::PleProjection, i);
        L.postPleNorm = vec(R::PostPleNorm, i);
        L.scalar = vec(R::LayerScalar, i).at(0);
        layers_.push_back(std::move(L));
    }
}

ReferenceModel::~ReferenceModel() = default;

WeightView* ReferenceModel::linearSlot(TensorRole role, int layer) {
    using R = TensorRole;
    WeightView* slot = nullptr;
    if (role == R::PleModelProjection) slot = &pleModelProj_;
    else if (layer >= 0 && layer < int(layers_.size())) {
        Layer& L = layers_[std::size_t(layer)];
        switch (role) {
            case R::QProj: slot = &L.q; break;
            case R::KProj: slot = &L.k; break;
            case R::VProj: slot = &L.v; break;
            case R::OProj: slot = &L.o; break;
            case R::GateProj: slot = &L.gate; break;
            case R::UpProj: slot = &L.up; break;
            case R::DownProj: slot = &L.down; break;
            case R::PleInputGate: slot = &L.pleGate; break;
            case R::PleProjection: slot = &L.pleProj; break;
            default: break;
        }
    }
    if (!slot || slot->empty()) throw Error(std::string("internal: no ") + roleName(role) + " weight in layer " + std::to_string(layer));
    return slot;
}

const WeightView& ReferenceModel::linearWeight(TensorRole role, int layer) const {
    return *const_cast<ReferenceModel*>(this)->linearSlot(role, layer);
}

void ReferenceModel::replaceWeight(TensorRole role, int layer, const WeightView& view) {
    WeightView* slot = linearSlot(role, layer);
    if (slot->rows != view.rows || slot->cols != view.cols) throw Error({}, slot->name, "internal: a replacement weight must keep the shape");
    *slot = view;
}

}  // namespace whittle
