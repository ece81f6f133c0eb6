#include "core/engine/evaluate.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/error.h"

namespace whittle {

VocabMapping loadVocabMapping(const std::filesystem::path& file) {
    const Json j = readJsonFile(file, 256ull << 20);
    const std::string f = file.string();
    if (j.contains("new_to_old")) return j["new_to_old"].get<std::vector<int>>();
    if (j.contains("old_to_new")) {
        const auto o2n = j["old_to_new"].get<std::vector<int>>();
        int n = 0;
        for (int v : o2n) n = std::max(n, v + 1);
        VocabMapping m(std::size_t(n), -1);
        for (std::size_t old = 0; old < o2n.size(); ++old)
            if (o2n[old] >= 0) m[std::size_t(o2n[old])] = int(old);
        return m;
    }
    throw FormatError(f, {}, "expected a 'new_to_old' or 'old_to_new' array");
}

void logSoftmax(std::span<const float> logits, std::vector<double>& out) {
    double mx = -INFINITY;
    for (float v : logits) mx = std::max(mx, double(v));
    double sum = 0;
    for (float v : logits) sum += std::exp(double(v) - mx);
    const double lse = mx + std::log(sum);
    out.resize(logits.size());
    for (std::size_t i = 0; i < logits.size(); ++i) out[i] = double(logits[i]) - lse;
}

PositionAgreement comparePosition(std::span<const double> lp, std::span<const double> rlp, const VocabMapping& mapping) {
    const std::size_t V = lp.size();
    auto shared = [&](std::size_t v) {  // the reference's log-probability of model id v; -inf: no reference id
        const int rv = mapping.empty() ? int(v) : mapping[v];
        return rv < 0 || std::size_t(rv) >= rlp.size() ? -INFINITY : rlp[std::size_t(rv)];
    };
    double mass = 0;
    for (std::size_t v = 0; v < V; ++v) mass += std::exp(shared(v));
    const double logMass = std::log(mass);
    double kl = 0;
    std::size_t argP = 0, argQ = 0;
    for (std::size_t v = 0; v < V; ++v) {
        const double s = shared(v);
        if (s == -INFINITY) continue;  // ids without a reference id take no part, not even in the argmax
        const double lr = s - logMass;
        kl += std::exp(lr) * (lr - lp[v]);
        if (s > shared(argP)) argP = v;
        if (lp[v] > lp[argQ]) argQ = v;
    }
    return {std::max(0.0, kl), argP == argQ};
}

EvalReport evaluate(Session& session, const Tokenizer& tok, const std::string& text, const EvalOptions& o, Session* refSession,
                    const VocabMapping& mapping, Progress& progress, const CancelToken& cancel) {
    const auto t0 = std::chrono::steady_clock::now();
    if (o.ctx < 2) throw UsageError("the evaluation context must be at least 2 tokens");
    if (o.stride < 1 || o.stride > o.ctx) throw UsageError("the evaluation stride must be between 1 and the context length");
    if (session.capacity() < o.ctx || (refSession && refSession->capacity() < o.ctx))
        throw UsageError("the session holds fewer positions than the evaluation context of " + std::to_string(o.ctx));
    const auto bos = tok.bosId();
    if (!bos) throw UsageError("the tokenizer has no BOS token");
    EncodeOptions eo;
    eo.addSpecialTokens = false;
    std::vector<int> tokens = tok.encode(text, eo);
    if (o.maxTokens > 0 && int(tokens.size()) > o.maxTokens) tokens.resize(std::size_t(o.maxTokens));
    if (tokens.empty()) throw UsageError("the text has no tokens to score");
    const std::size_t V = std::size_t(session.vocabSize());
    if (refSession && mapping.empty() && refSession->vocabSize() != session.vocabSize())
        throw UsageError("the models' vocabularies differ (" + std::to_string(session.vocabSize()) + " vs " +
                         std::to_string(refSession->vocabSize()) + "): give the id mapping written by the pruner");
    if (!mapping.empty() && mapping.size() != V)
        throw UsageError("the id mapping has " + std::to_string(mapping.size()) + " entries for a vocabulary of " + std::to_string(V));
    auto toRef = [&](int id) { return mapping.empty() ? id : mapping[std::size_t(id)]; };
    // A padding placeholder never appears in text, so inputs always map; guard anyway.
    auto toRefInput = [&](int id) {
        const int r = toRef(id);
        return r < 0 ? *tok.bosId() : r;
    };

    constexpr int kChunk = 32;  // logits rows held at once
    const std::size_t RV = refSession ? std::size_t(refSession->vocabSize()) : 0;
    std::vector<float> logits(std::size_t(kChunk) * V), refLogits(std::size_t(kChunk) * RV);
    std::vector<double> lp, rlp;
    std::vector<double> klds;
    double nll = 0, refNll = 0;
    int scored = 0, agree = 0, windows = 0;
    StageMeter meter(progress, "evaluating", tokens.size());
    for (std::size_t start = 0; start < tokens.size(); start += std::size_t(o.stride)) {
        cancel.throwIfCancelled();
        const std::size_t n = std::min<std::size_t>(std::size_t(o.ctx), tokens.size() - start);  // targets
        std::vector<int> input;
        input.reserve(n);
        input.push_back(*bos);
        for (std::size_t i = 0; i + 1 < n; ++i) input.push_back(tokens[start + i]);
        const std::size_t firstScored = start == 0 ? 0 : std::size_t(o.ctx - o.stride);
        session.reset();
        if (refSession) refSession->reset();
        for (std::size_t c0 = 0; c0 < input.size(); c0 += kChunk) {
            const std::size_t cn = std::min<std::size_t>(kChunk, input.size() - c0);
            const std::span<const int> part(input.data() + c0, cn);
            session.forward(part, logits.data());
            std::vector<int> refPart;
            if (refSession) {
                for (int id : part) refPart.push_back(toRefInput(id));
                refSession->forward(refPart, refLogits.data());
            }
            for (std::size_t i = 0; i < cn; ++i) {
                const std::size_t pos = c0 + i;
                if (pos < firstScored) continue;
                const int target = tokens[start + pos];
                logSoftmax(std::span<const float>(&logits[i * V], V), lp);
                nll -= lp[std::size_t(target)];
                ++scored;
                if (!refSession) continue;
                logSoftmax(std::span<const float>(&refLogits[i * RV], RV), rlp);
                refNll -= rlp[std::size_t(toRefInput(target))];
                const PositionAgreement pa = comparePosition(lp, rlp, mapping);
                klds.push_back(pa.kld);
                agree += pa.top1;
            }
        }
        ++windows;
        meter.advance(n);
        if (start + n >= tokens.size()) break;
    }
    meter.finish();
    EvalReport r;
    r.tokens = scored;
    r.windows = windows;
    r.nll = nll / scored;
    r.ppl = std::exp(r.nll);
    if (refSession) {
        double sum = 0;
        for (double k : klds) sum += k;
        r.kldMean = sum / double(klds.size());
        std::vector<double> sorted = klds;
        std::sort(sorted.begin(), sorted.end());
        r.kldP99 = sorted[std::min(sorted.size() - 1, std::size_t(std::ceil(0.99 * double(sorted.size()))) - 1)];
        r.top1 = double(agree) / double(scored);
        r.refPpl = std::exp(refNll / scored);
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
}

Json toJson(const EvalReport& r) {
    Json j = {{"ppl", r.ppl}, {"nll", r.nll}, {"tokens", r.tokens}, {"windows", r.windows}, {"seconds", r.seconds}};
    j["kld_mean"] = r.kldMean ? Json(*r.kldMean) : Json(nullptr);
    j["kld_p99"] = r.kldP99 ? Json(*r.kldP99) : Json(nullptr);
    j["top1"] = r.top1 ? Json(*r.top1) : Json(nullptr);
    j["reference_ppl"] = r.refPpl ? Json(*r.refPpl) : Json(nullptr);
    return j;
}

}  // namespace whittle
