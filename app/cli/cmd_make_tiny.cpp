#include <iostream>

#include "app/cli/args.h"
#include "app/cli/commands.h"
#include "app/cli/progress_printer.h"
#include "core/error.h"
#include "core/fixtures/tiny_checkpoint.h"

namespace whittle::cli {

int runMakeTiny(const std::vector<std::string>& argv) {
    const Args a(argv, {"zeros", "force", "dead-shared-kv", "untied"}, {"preset", "seed", "tokenizer", "shard-size"});
    if (a.positional().size() != 1)
        throw UsageError("usage: whittle-cli make-tiny DEST [--preset e2b-mini|e4b-mini|e2b-full|e4b-full] [--seed N] "
                         "[--zeros] [--tokenizer FILE] [--shard-size BYTES] [--dead-shared-kv] [--untied] [--force]");
    TinyCheckpointOptions o;
    o.preset = a.value("preset").value_or("e2b-mini");
    o.seed = a.uintValue("seed", 0);
    o.zeros = a.flag("zeros");
    o.force = a.flag("force");
    o.deadSharedKv = a.flag("dead-shared-kv");
    o.untied = a.flag("untied");
    o.shardLimitBytes = a.uintValue("shard-size", 0);
    if (auto t = a.value("tokenizer")) o.tokenizer = *t;
    ProgressPrinter progress;
    CancelToken cancel;
    makeTinyCheckpoint(a.positional()[0], o, progress, cancel);
    std::cout << "wrote " << a.positional()[0] << " (" << o.preset << (o.zeros ? ", zeros" : "") << ")\n";
    return 0;
}

}  // namespace whittle::cli
