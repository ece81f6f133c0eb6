// whittle-cli: every Whittle capability for scripts and CI. Errors print one line and exit non-zero.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "app/cli/commands.h"
#include "core/error.h"

namespace {

using whittle::cli::Command;

const Command kCommands[] = {
    {"inspect", "MODEL_DIR [--json]            parameters and bytes by part, dtype and layer",
     whittle::cli::runInspect},
    {"make-tiny", "DEST [--preset P] [--seed N] [--zeros] [--tokenizer FILE]   write a small Gemma 4 checkpoint",
     whittle::cli::runMakeTiny},
    {"tokenize", "MODEL_OR_TOKENIZER_JSON [--file F] [--no-bos] [--decode]   one line of ids per input line",
     whittle::cli::runTokenize},
    {"buckets", "MODEL_OR_TOKENIZER_JSON [--corpus FILES] [--json]   tokens by script and the vocabulary presets",
     whittle::cli::runBuckets},
    {"slim", "MODEL OUT (--recipe FILE | --preset ID | [--text-only] [--vocab P] [--flap R] [--quantize M])   every recipe in one run",
     whittle::cli::runSlim},
    {"estimate", "MODEL [--recipe FILE | --preset ID | the slim flags] [--ctx N] [--chunk N] [--ple host|gpu] [--device N] [--json]   disk size and memory, before running",
     whittle::cli::runEstimate},
    {"plan", "MODEL PLANNED.json (--recipe FILE | --preset ID | the slim flags) [--force] [--json]   calibrate FLAP's widths and the bit budget's formats into the recipe: exact sizes before the run",
     whittle::cli::runPlan},
    {"prune-vocab", "MODEL OUT --preset P | --buckets B,… | --recipe FILE   keep part of the vocabulary",
     whittle::cli::runPruneVocab},
    {"flap", "MODEL OUT --ratio R [--no-compensation] [--metric wifv|random] [--calib FILES]   FLAP structured FFN pruning",
     whittle::cli::runFlap},
    {"text-only", "MODEL OUT [--force] [--json]   drop the vision and audio towers (a gemma4_text checkpoint)",
     whittle::cli::runTextOnly},
    {"quantize", "MODEL OUT (--recipe FILE | --method rtn|gptq|nvfp4 --group N [--asym] [--act-order] [--calib FILES] [--exclude GLOBS] [--format F])   INT4 (GPTQ v1) or NVFP4 weights",
     whittle::cli::runQuantize},
    {"export", "MODEL OUT --format gguf-f32|gguf-f16|gguf-q8_0|gguf-q4_0|gguf-nvfp4 [--force]   write the model in another format (GGUF for llama.cpp)",
     whittle::cli::runExport},
    {"generate", "MODEL --prompt TEXT [--chat] [--max-tokens N] [--seed N] [--greedy] [--backend cpu|vulkan]   generate text",
     whittle::cli::runGenerate},
    {"chat", "MODEL [--system TEXT] [--backend cpu|vulkan] [--device N]   interactive chat (Ctrl-C stops an answer)",
     whittle::cli::runChat},
    {"eval", "MODEL --text FILE [--ref ORIGINAL] [--ctx N --stride N] [--json]   perplexity, KL divergence, top-1",
     whittle::cli::runEval},
    {"bench", "MODEL [--backend cpu|vulkan] [--prompt-tokens N] [--decode-tokens N] [--json]   prefill/decode speed, RSS, allocations",
     whittle::cli::runBench},
    {"devices", "[--json]                    Vulkan devices, their memory, features and limits", whittle::cli::runDevices},
};

void usage(std::FILE* out) {
    std::fprintf(out, "usage: whittle-cli COMMAND [ARGS]\n\ncommands:\n");
    for (const auto& c : kCommands) std::fprintf(out, "  %-10s %s\n", c.name, c.synopsis);
    std::fprintf(out, "\nwhittle-cli COMMAND --help shows a command's options.\n");
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!std::strcmp(argv[1], "--version")) {
        std::printf("whittle-cli %s\n", WHITTLE_VERSION);
        return 0;
    }
    const std::vector<std::string> args(argv + 2, argv + argc);
    for (const auto& c : kCommands) {
        if (std::strcmp(argv[1], c.name) != 0) continue;
        if (!args.empty() && (args[0] == "--help" || args[0] == "-h")) {
            std::printf("whittle-cli %s %s\n", c.name, c.synopsis);
            return 0;
        }
        try {
            return c.run(args);
        } catch (const whittle::OutputExistsError& e) {
            std::fprintf(stderr, "whittle-cli %s: %s (pass --force to replace it)\n", c.name, e.what());
            return 2;
        } catch (const whittle::UsageError& e) {
            std::fprintf(stderr, "whittle-cli %s: %s\n", c.name, e.what());
            return 2;
        } catch (const whittle::Error& e) {
            std::fprintf(stderr, "whittle-cli %s: error: %s\n", c.name, e.what());
            return 1;
        } catch (const std::exception& e) {
            std::fprintf(stderr, "whittle-cli %s: internal error: %s\n", c.name, e.what());
            return 3;
        }
    }
    std::fprintf(stderr, "whittle-cli: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
