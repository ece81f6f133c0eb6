#pragma once
// The model a command runs, on the backend it names (--backend cpu|vulkan, --device, --threads): generate, eval,
// bench and chat open it here and then only talk to Session, so the Vulkan engine plugs in at this one place.
#include <filesystem>
#include <memory>
#include <string>

#include "app/cli/args.h"
#include "core/engine/session.h"
#include "core/io/json_file.h"
#include "core/model/checkpoint.h"
#include "core/reference/reference_model.h"

namespace whittle::gpu {
class VulkanInstance;
class ComputeDevice;
class VulkanModel;
}  // namespace whittle::gpu

namespace whittle::cli {

class Backend {
public:
    // Reads --backend (cpu), --device (Vulkan: an index or a name substring), --ple-vram and --threads;
    // checkFinite scans the weights for NaN/Inf at load.
    Backend(const std::filesystem::path& model, const Args& args, bool checkFinite = true);
    ~Backend();

    const Checkpoint& checkpoint() const { return *checkpoint_; }
    const std::string& name() const { return name_; }
    int threads() const;
    std::string deviceName() const;  // the Vulkan device, or "cpu"
    std::unique_ptr<Session> newSession(int context) const;
    // Backend-specific facts about a session (the Vulkan engine's memory by kind and dispatches per token).
    Json sessionStats(const Session& session) const;

    static constexpr const char* kUsage = "[--backend cpu|vulkan] [--device N|NAME] [--ple-vram] [--threads N]";

private:
    std::string name_;
    std::unique_ptr<Checkpoint> checkpoint_;
    std::unique_ptr<ReferenceModel> reference_;
    std::unique_ptr<gpu::VulkanInstance> instance_;
    std::unique_ptr<gpu::ComputeDevice> device_;
    std::unique_ptr<gpu::VulkanModel> vulkan_;
};

}  // namespace whittle::cli
