#pragma once
// The sampling options generate and chat share: the model's generation_config.json defaults, overridden by
// --greedy, --seed, --temperature, --top-k, --top-p, --min-p and --repeat-penalty.
#include "app/cli/args.h"
#include "core/engine/sampler.h"
#include "core/model/checkpoint.h"

namespace whittle::cli {

inline constexpr const char* kSamplingUsage =
    "[--greedy | --temperature T --top-k K --top-p P --min-p P --repeat-penalty R] [--seed N]";
SamplingParams samplingFromArgs(const Checkpoint& checkpoint, const Args& args);

}  // namespace whittle::cli
