#pragma once
// The Vulkan suites' device: the default device (lavapipe in CI) on an instance with the Khronos validation
// layer on, and the check every suite ends with (no validation message at all).
#include <filesystem>
#include <memory>
#include <string>

#include "core/error.h"
#include "gpu/compute_device.h"
#include "test_support.h"

namespace whittle::test {

struct ValidatedDevice {
    std::unique_ptr<gpu::VulkanInstance> instance;
    std::unique_ptr<gpu::ComputeDevice> device;
    // Opens it; returns why not (no driver, no device) or an empty string.
    std::string open() {
        try {
            gpu::InstanceOptions o;
            o.validation = true;
            instance = std::make_unique<gpu::VulkanInstance>(o);
            const int idx = gpu::pickDevice(gpu::queryAllCaps(instance->physicalDevices()));
            if (idx < 0) return "no Vulkan device";
            device = std::make_unique<gpu::ComputeDevice>(*instance, std::uint32_t(idx));
        } catch (const Error& e) {
            return e.what();
        }
        return {};
    }
};

// A variant of the bundled model made by `whittle-cli args…` into `out`: `out`, or an empty path (with the
// CLI's error printed) when the command failed.
inline std::filesystem::path cliVariant(const std::filesystem::path& out, const QStringList& args) {
    const CliResult r = runCli(args, 240000);
    if (r.exitCode != 0) qWarning("%s", qPrintable(r.err));
    return r.exitCode == 0 ? out : std::filesystem::path();
}

// In cleanupTestCase: prints what the validation layer said and fails on any error or warning.
#define WHITTLE_EXPECT_NO_VALIDATION_MESSAGES(instance)                                         \
    do {                                                                                          \
        for (const auto& m_ : (instance).validationMessages()) qWarning("validation: %s", m_.c_str()); \
        QCOMPARE((instance).validationErrors(), 0);                                               \
        QCOMPARE((instance).validationWarnings(), 0);                                             \
    } while (0)

}  // namespace whittle::test
