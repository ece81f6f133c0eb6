#include <iostream>

#include <nlohmann/json.hpp>

#include "app/cli/args.h"
#include "app/cli/commands.h"
#include "core/error.h"
#include "gpu/device_caps.h"
#include "gpu/vulkan_instance.h"

namespace whittle::cli {

int runDevices(const std::vector<std::string>& argv) {
    const Args a(argv, {"json"}, {});
    if (!a.positional().empty()) throw UsageError("usage: whittle-cli devices [--json]");
    const gpu::VulkanInstance instance;
    const auto caps = gpu::queryAllCaps(instance.physicalDevices());
    if (a.flag("json")) {
        Json j = Json::array();
        for (const auto& c : caps) j.push_back(gpu::toJson(c));
        std::cout << Json{{"vulkan", gpu::versionString(instance.apiVersion())}, {"default", gpu::pickDevice(caps)}, {"devices", j}}.dump(2)
                  << "\n";
        return 0;
    }
    if (caps.empty()) throw Error("the Vulkan loader found no devices (is a Vulkan driver installed?)");
    std::cout << "Vulkan " << gpu::versionString(instance.apiVersion()) << ", " << caps.size() << " device"
              << (caps.size() == 1 ? "" : "s") << "\n"
              << gpu::formatDevices(caps);
    return 0;
}

}  // namespace whittle::cli
