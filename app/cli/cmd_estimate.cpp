#include <algorithm>
#include <cstdio>
#include <optional>

#include <nlohmann/json.hpp>

#include "app/cli/args.h"
#include "app/cli/commands.h"
#include "app/cli/json_report.h"
#include "app/cli/recipe_args.h"
#include "core/error.h"
#include "core/estimate/estimate.h"
#include "core/model/inventory.h"
#include "gpu/device_caps.h"
#include "gpu/vulkan_instance.h"

namespace whittle::cli {

namespace {

void printOutput(const char* what, const OutputEstimate& o, const RuntimeOptions& r) {
    const EngineMemory& m = o.memory;
    std::printf("%s: %s on disk (tensors %s, other files %s), %s parameters\n", what, formatBytes(o.diskBytes()).c_str(),
                formatBytes(o.tensorBytes).c_str(), formatBytes(o.sideBytes).c_str(), formatParams(o.parameters).c_str());
    for (const auto& [file, bytes] : o.ggufBytes) std::printf("  %s for llama.cpp: %s (in the total)\n", file.c_str(), formatBytes(bytes).c_str());
    std::printf("  device memory at %d positions (prefill chunk %d, PLE table on the %s): %s\n", r.context, r.prefillChunk,
                r.pleInVram ? "device" : "host", formatBytes(m.deviceTotal()).c_str());
    std::printf("    weights %s%s, KV cache %s (sliding %s in %d layers of %lld positions, full %s in %d layers of %lld), scratch %s, host-visible %s\n",
                formatBytes(m.weights).c_str(), r.pleInVram ? (", PLE table " + formatBytes(m.pleTable)).c_str() : "",
                formatBytes(m.kv.total()).c_str(), formatBytes(m.kv.slidingBytes).c_str(), m.kv.slidingLayers, (long long)m.kv.slidingCells,
                formatBytes(m.kv.fullBytes).c_str(), m.kv.fullLayers, (long long)m.kv.fullCells, formatBytes(m.scratch).c_str(),
                formatBytes(m.hostVisible).c_str());
    std::printf("  host memory the engine reads tables from: %s\n", formatBytes(m.hostTables).c_str());
}

// What the picked device offers the model (DeviceCaps::roomForModel).
struct DeviceRoom {
    std::string name, source;
    std::uint64_t available = 0;
    bool measured = false;
    std::uint64_t maxBinding = 0;
};

DeviceRoom deviceRoom(const std::string& preference) {
    const gpu::VulkanInstance instance;
    const auto caps = gpu::queryAllCaps(instance.physicalDevices());
    int i = -1;
    try {
        i = gpu::pickDevice(caps, preference);
    } catch (const UsageError& e) {
        throw UsageError("--device " + preference + ": " + e.reason() + " (see whittle-cli devices)");
    }
    if (i < 0) throw UsageError("--device " + preference + ": the Vulkan loader found no devices");
    const auto it = std::find_if(caps.begin(), caps.end(), [&](const gpu::DeviceCaps& d) { return int(d.index) == i; });
    const gpu::DeviceCaps& c = *it;
    DeviceRoom d;
    d.name = c.name;
    d.measured = c.memoryBudget;
    d.source = c.roomSource();
    d.available = c.roomForModel();
    d.maxBinding = c.maxStorageBufferRange;
    return d;
}

}  // namespace

int runEstimate(const std::vector<std::string>& argv) {
    std::set<std::string> flags = kRecipeFlags, valued = kRecipeOptions;
    flags.insert("json");
    valued.insert({"ctx", "chunk", "ple", "device", "markdown"});
    const Args a(argv, flags, valued);
    if (a.positional().size() != 1)
        throw UsageError("usage: whittle-cli estimate MODEL [--recipe FILE.json | --preset ID | --text-only --vocab P --flap R --quantize M …] "
                         "[--ctx N] [--chunk N] [--ple host|gpu] [--device N|NAME] [--json | --ctx N,N,… --markdown LABEL]");
    const bool anyRecipe = hasRecipeArgs(a);
    const Recipe recipe = anyRecipe ? recipeFromArgs(a) : Recipe{};
    RuntimeOptions r;
    std::vector<int> contexts;
    for (const std::string& c : a.listValue("ctx")) {
        if (c.empty() || c.find_first_not_of("0123456789") != std::string::npos || c.size() > 9)
            throw UsageError("--ctx " + c + ": a number of positions");
        contexts.push_back(std::stoi(c));
    }
    if (contexts.empty()) contexts.push_back(4096);
    if (contexts.size() > 1 && !a.value("markdown")) throw UsageError("--ctx: several contexts go with --markdown");
    r.context = contexts.front();
    r.prefillChunk = int(a.uintValue("chunk", 32));
    if (const auto p = a.value("ple")) {
        if (*p != "host" && *p != "gpu") throw UsageError("--ple " + *p + ": host or gpu");
        r.pleInVram = *p == "gpu";
    }
    std::optional<DeviceRoom> device;
    if (const auto d = a.value("device")) {
        device = deviceRoom(*d);
        r.maxBindingBytes = device->maxBinding;  // the logits come back in chunks one binding holds
    }
    const Estimator estimator(std::make_shared<const Checkpoint>(Checkpoint::open(a.positional()[0])));
    const Estimate e = estimator.estimate(recipe, r);
    if (const auto label = a.value("markdown")) {
        // One row of a README table: | label | disk | weights | device memory at each context | host RAM |
        std::printf("| %s | %s | %s |", label->c_str(), formatBytes(e.output.diskBytes()).c_str(), formatBytes(e.output.memory.weights).c_str());
        for (int c : contexts) {
            RuntimeOptions at = r;
            at.context = c;
            std::printf(" %s |", formatBytes(estimator.estimate(recipe, at).output.memory.deviceTotal()).c_str());
        }
        std::printf(" %s |\n", formatBytes(e.output.memory.hostTables).c_str());
        return 0;
    }
    const std::uint64_t need = e.output.memory.deviceTotal();
    if (a.flag("json")) {
        Json j = toJson(e);
        j["runtime"] = {{"context", r.context}, {"prefill_chunk", r.prefillChunk}, {"ple", r.pleInVram ? "gpu" : "host"}, {"kv_type", "f32"}};
        if (device)
            j["device"] = {{"name", device->name},
                           {"available_bytes", device->available},
                           {"available_source", device->source},
                           {"fits", need <= device->available}};
        printJsonReport(j);
        return 0;
    }
    printOutput("as it is", e.input, r);
    if (anyRecipe) printOutput(e.exact ? "after the recipe" : "after the recipe (estimated)", e.output, r);
    if (e.low && e.high)
        std::printf("  range for FLAP's widths: %s … %s on disk, %s … %s of device memory\n", formatBytes(e.low->diskBytes()).c_str(),
                    formatBytes(e.high->diskBytes()).c_str(), formatBytes(e.low->memory.deviceTotal()).c_str(),
                    formatBytes(e.high->memory.deviceTotal()).c_str());
    if (!e.note.empty()) std::printf("note: %s\n", e.note.c_str());
    if (device) {
        std::printf("%s: %s free%s — ", device->name.c_str(), formatBytes(device->available).c_str(),
                    device->measured ? "" : " (estimated: 0.8 × its device-local memory)");
        if (need <= device->available) std::printf("fits, %s to spare\n", formatBytes(device->available - need).c_str());
        else std::printf("does NOT fit: %s more than it has would spill to host memory or fail\n", formatBytes(need - device->available).c_str());
    }
    return 0;
}

}  // namespace whittle::cli
