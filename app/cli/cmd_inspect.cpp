#include <iostream>

#include <nlohmann/json.hpp>

#include "app/cli/args.h"
#include "app/cli/commands.h"
#include "core/error.h"
#include "core/model/inventory.h"

namespace whittle::cli {

int runInspect(const std::vector<std::string>& argv) {
    const Args a(argv, {"json"}, {});
    if (a.positional().size() != 1) throw UsageError("usage: whittle-cli inspect MODEL_DIR [--json]");
    const Checkpoint ck = Checkpoint::open(a.positional()[0]);
    const Inventory inv = makeInventory(ck);
    if (a.flag("json")) std::cout << toJson(inv).dump(2) << "\n";
    else std::cout << formatInventory(inv);
    return 0;
}

}  // namespace whittle::cli
