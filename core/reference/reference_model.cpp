#include "core/reference/reference_model.h"

#include <cmath>
#include <cstring>
#include <map>

#include "core/error.h"
#include "core/io/gguf_reader.h"
#include "core/model/checkpoint_files.h"

namespace whittle {

namespace {

bool allFinite(DType dtype, const std::byte* p, std::uint64_t n, std::uint64_t* bad) {
    for (std::uint64_t i = 0; i < n; ++i) {
        bool ok = true;
        if (dtype == DType::BF16 || dtype == DType::F16) {
            std::uint16_t u;
            std::memcpy(&u, p + 2 * i, 2);
            ok = dtype == DType::BF16 ? (u & 0x7f80) != 0x7f80 : (u & 0x7c00) != 0x7c00;
        } else if (dtype == DType::F32) {
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
    views_.reserve(6 * ck.table().size());  // views_ must not reallocate (a GPTQ linear with a residual maps 6 tensors): WeightViews point into the mappings
    // Maps a stored tensor (kept alive in views_); weights and scales are scanned for NaN/Inf on request.
    auto mapped = [&](const TensorStore::Entry* e, bool isFloat) {
        views_.push_back(e->file->view(*e->info));
        std::uint64_t bad = 0;
        if (isFloat && options.checkFinite && !allFinite(e->info->dtype, views_.back().data(), e->info->numel(), &bad))
            throw FormatError(e->file->path(), e->info->name, "holds NaN or Inf (element " + std::to_string(bad) + ")");
        return views_.back().data();
    };
    // A quantized linear's view: its format, the dense shape [N, K] it stands for, its weight name.
    auto linearView = [&](WeightFormat format, std::int64_t N, std::int64_t K, TensorRole role, int layer) {
        WeightView w;
        w.format = format;
        w.rows = N;
        w.cols = K;
        w.name = tensorName(config_, role, layer);
        return w;
    };
    auto bind = [&](TensorRole role, int layer = -1) {
        if (const Nvfp4Linear* f = ck.nvfp4(role, layer)) {
            WeightView w = linearView(WeightFormat::Nvfp4, f->outFeatures, f->inFeatures, role, layer);
            w.data = mapped(f->packed, false);
            w.nvfp4BlockScales = mapped(f->scale, false);
            for (std::uint64_t i = 0; options.checkFinite && i < f->scale->info->nbytes; ++i)
                if ((std::to_integer<unsigned>(w.nvfp4BlockScales[i]) & 0x7F) == 0x7F)  // E4M3's only non-finite codes
                    throw FormatError(f->scale->file->path(), f->scale->info->name, "holds NaN (element " + std::to_string(i) + ")");
            float g;
            std::memcpy(&g, mapped(f->globalScale, true), 4);
            // compressed-tensors stores the reciprocal of the multiplier (shared/formats.md §1e)
            w.nvfp4Scale = f->layout == Nvfp4Layout::CompressedTensors ? 1.0f / g : g;
            if (!(w.nvfp4Scale > 0) || !std::isfinite(w.nvfp4Scale))
                throw FormatError(f->globalScale->file->path(), f->globalScale->info->name, "holds " + std::to_string(g) + ", not a positive scale");
            return w;
        }
        if (const GptqLinear* g = ck.gptq(role, layer)) {
            WeightView w = linearView(WeightFormat::GptqInt, g->outFeatures, g->inFeatures, role, layer);
            w.data = mapped(g->qweight, false);
            w.gptq = {mapped(g->qzeros, false), mapped(g->scales, true), mapped(g->gIdx, false), g->groups, g->bits,
                      g->qresidual ? mapped(g->qresidual, false) : nullptr, g->residualScales ? mapped(g->residualScales, true) : nullptr};
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
        if (const RowBlocksTable* rb = ck.rowBlocks(role, layer)) {
            WeightView w;
            w.format = rb->type == RowBlockType::Q8_0 ? WeightFormat::GgufQ8_0 : WeightFormat::GgufQ4_0;
            w.rows = rb->rows;
            w.cols = rb->cols;
            w.name = rb->entry->info->name;
            w.data = mapped(rb->entry, false);
            return w;
        }
        const TensorStore::Entry* e = ck.find(role, layer);
        if (!e) throw FormatError(ck.dir().string(), tensorName(config_, role, layer), "missing from the checkpoint");
        const std::byte* data = mapped(e, true);
        const auto& s = e->info->shape;
        return WeightView{WeightFormat::Dense, e->info->dtype, data, s.size() > 1 ? s[0] : 1, s.empty() ? 1 : s.back(), e->info->name, {}};
    };
    assemble(bind, (ck.dir() / files::kConfig).string());
}

void ReferenceModel::assemble(const Binder& bind, const std::string& configFile) {
    auto vec = [&](TensorRole role, int layer = -1) {
        const WeightView w = bind(role, layer);
        std::vector<float> out(std::size_t(w.numel()));
        for (std::size_t i = 0; i < out.size(); ++i) out[i] = w.at(std::int64_t(i));
        return out;
    };
    using R = TensorRole;
    embed_ = bind(R::Embedding, -1);
    head_ = headRole(config_) == R::Embedding ? embed_ : bind(R::LmHead, -1);
    pleTable_ = bind(R::PleTable, -1);
    // Every token id the head can emit must have a PLE row (GEMMA4.md §1); published models have equal sizes.
    if (pleTable_.rows < embed_.rows)
        throw FormatError(configFile, pleTable_.name,
                          "vocab_size_per_layer_input (" + std::to_string(pleTable_.rows) + ") is smaller than vocab_size (" +
                              std::to_string(embed_.rows) + "): some tokens would have no per-layer embedding");
    pleModelProj_ = bind(R::PleModelProjection, -1);
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
        if (config_.downProjBias) L.downBias = vec(R::DownProjBias, i);
        L.postFeedforwardNorm = vec(R::PostFeedforwardNorm, i);
        L.pleGate = bind(R::PleInputGate, i);
        L.pleProj = bind(R::PleProjection, i);
        L.postPleNorm = vec(R::PostPleNorm, i);
        L.scalar = vec(R::LayerScalar, i).at(0);
        layers_.push_back(std::move(L));
    }
}

namespace {

DType denseType(GgmlType t) {
    switch (t) {
        case GgmlType::F32: return DType::F32;
        case GgmlType::F16: return DType::F16;
        default: return DType::BF16;
    }
}

}  // namespace

ReferenceModel::ReferenceModel(const Checkpoint& source, const GgufWeights& gguf, const ReferenceOptions& options)
    : config_(source.config()), pool_(std::make_unique<ThreadPool>(options.threads)) {
    const std::filesystem::path& ggufPath = gguf.path;
    const GgufFile g(ggufPath);
    const std::string file = g.path();
    gguf_ = std::make_shared<const MappedRegion>(FileHandle::openRead(ggufPath), g.dataOffset(), g.fileSize() - g.dataOffset());
    std::map<std::pair<TensorRole, int>, const ExpectedTensor*> byRole;
    for (const ExpectedTensor& e : source.table()) byRole[{e.role, e.layer}] = &e;
    auto bytesOf = [&](const GgufTensorInfo& t) { return gguf_->data() + (t.offset - g.dataOffset()); };
    auto bind = [&](TensorRole role, int layer) {
        const auto it = byRole.find({role, layer});
        if (it == byRole.end()) throw Error(file, roleName(role), "internal: the tensor table has no such role");
        const ExpectedTensor& e = *it->second;
        const GgufTensorInfo* t = g.find(e.ggufName);
        if (!t) throw FormatError(file, e.ggufName, "missing from the GGUF");
        const std::vector<std::int64_t> want(e.shape.rbegin(), e.shape.rend());  // ggml's order: innermost first
        if (t->dims != want)
            throw FormatError(file, e.ggufName, "has shape " + shapeToString(t->dims) + " but " + source.dir().string() +
                                                    " implies " + shapeToString(want) + " (ggml order)");
        WeightView w;
        w.name = e.ggufName;
        w.cols = want.front();
        w.rows = want.size() > 1 ? want[1] : 1;
        w.data = bytesOf(*t);
        if (options.emulateGgmlActivations) {
            if (t->ggmlType == GgmlType::F16) w.inputRounding = WeightView::InputRounding::F16;
            if ((t->ggmlType == GgmlType::Q8_0 || t->ggmlType == GgmlType::Q4_0 || t->ggmlType == GgmlType::NVFP4) && w.cols % 32 == 0)
                w.inputRounding = WeightView::InputRounding::Q8_0;
        }
        switch (t->ggmlType) {
            case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16: {
                w.dtype = denseType(t->ggmlType);
                std::uint64_t bad = 0;
                if (options.checkFinite && !allFinite(w.dtype, w.data, t->numel(), &bad))
                    throw FormatError(file, e.ggufName, "holds NaN or Inf (element " + std::to_string(bad) + ")");
                return w;
            }
            case GgmlType::Q8_0: w.format = WeightFormat::GgufQ8_0; return w;
            case GgmlType::Q4_0: w.format = WeightFormat::GgufQ4_0; return w;
            case GgmlType::NVFP4: {
                w.format = WeightFormat::GgufNvfp4;
                // The per-tensor scale llama.cpp multiplies in after the matmul; absent means 1.
                const std::string scaleName = ggufScaleName(e.ggufName);
                if (const GgufTensorInfo* s = g.find(scaleName)) {
                    if (s->ggmlType != GgmlType::F32 || s->numel() != 1)
                        throw FormatError(file, scaleName, "must be one F32 value");
                    std::memcpy(&w.nvfp4Scale, bytesOf(*s), 4);
                    if (!std::isfinite(w.nvfp4Scale)) throw FormatError(file, scaleName, "is not finite");
                }
                return w;
            }
            default:
                throw FormatError(file, e.ggufName, "is stored as " + std::string(ggmlTypeTraits(t->ggmlType).name) +
                                                        ", which the reference engine does not decode (F32, F16, BF16, Q8_0, Q4_0, NVFP4)");
        }
    };
    assemble(bind, file);
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
