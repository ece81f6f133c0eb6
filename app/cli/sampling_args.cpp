#include "app/cli/sampling_args.h"

#include <stdexcept>
#include <string>

#include "core/engine/generator.h"
#include "core/error.h"

namespace whittle::cli {

namespace {
float floatValue(const Args& a, const char* name, float fallback) {
    const auto v = a.value(name);
    if (!v) return fallback;
    try {
        std::size_t used = 0;
        const float f = std::stof(*v, &used);
        if (used != v->size()) throw std::invalid_argument(*v);
        return f;
    } catch (const std::exception&) {
        throw UsageError(std::string("option --") + name + " needs a number, got '" + *v + "'");
    }
}
}  // namespace

SamplingParams samplingFromArgs(const Checkpoint& ck, const Args& a) {
    SamplingParams s = generationConfigDefaults(ck);
    s.seed = a.uintValue("seed", 0);
    if (a.flag("greedy")) s.temperature = 0.0f;
    s.temperature = floatValue(a, "temperature", s.temperature);
    s.topK = int(a.uintValue("top-k", std::uint64_t(s.topK)));
    s.topP = floatValue(a, "top-p", s.topP);
    s.minP = floatValue(a, "min-p", s.minP);
    s.repetitionPenalty = floatValue(a, "repeat-penalty", s.repetitionPenalty);
    validate(s);
    return s;
}

}  // namespace whittle::cli
