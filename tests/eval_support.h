#pragma once
// Quality of a slimmed bundled model the way the README's tables measure it: the CPU reference on the first
// 2,048 tokens of the bundled model's heldout.txt in windows of 256, optionally against the original.
#include <filesystem>

#include "core/engine/evaluate.h"
#include "core/model/checkpoint.h"
#include "core/reference/reference_model.h"
#include "core/reference/reference_session.h"
#include "core/tokenizer/tokenizer.h"
#include "test_support.h"

namespace whittle::test {

inline EvalReport evalHeldout(const std::filesystem::path& model, bool againstOriginal) {
    const Checkpoint qc = Checkpoint::open(model), oc = Checkpoint::open(bundledModelDir());
    const ReferenceModel qm(qc, {}), om(oc, {});
    const Tokenizer tok = Tokenizer::fromModelOrFile(model);
    EvalOptions eo;
    eo.ctx = 256;
    eo.stride = 256;
    eo.maxTokens = 2048;
    ReferenceSession a(qm, eo.ctx), b(om, eo.ctx);
    NullProgress np;
    return evaluate(a, tok, readBytes(bundledModelDir() / "heldout.txt"), eo, againstOriginal ? &b : nullptr, {}, np, CancelToken{});
}

}  // namespace whittle::test
