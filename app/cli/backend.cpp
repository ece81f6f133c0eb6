#include "app/cli/backend.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/reference/reference_session.h"
#include "gpu/vulkan_engine.h"
#include "gpu/vulkan_instance.h"

namespace whittle::cli {

Backend::Backend(const std::filesystem::path& model, const Args& a, bool checkFinite) : name_(a.value("backend").value_or("cpu")) {
    if (name_ != "cpu" && name_ != "vulkan") throw UsageError("--backend " + name_ + ": the backends are cpu and vulkan");
    if (name_ == "cpu" && (a.value("device") || a.flag("ple-vram"))) throw UsageError("--device and --ple-vram need --backend vulkan");
    checkpoint_ = std::make_unique<Checkpoint>(Checkpoint::open(model));
    ReferenceOptions ro;
    ro.threads = int(a.uintValue("threads", 0));
    ro.checkFinite = checkFinite;
    reference_ = std::make_unique<ReferenceModel>(*checkpoint_, ro);
    if (name_ == "vulkan") {
        instance_ = std::make_unique<gpu::VulkanInstance>();
        const auto caps = gpu::queryAllCaps(instance_->physicalDevices());
        const int index = gpu::pickDevice(caps, a.value("device").value_or(""));
        if (index < 0) throw UsageError("no Vulkan device to run on (see whittle-cli devices)");
        device_ = std::make_unique<gpu::ComputeDevice>(*instance_, std::uint32_t(index));
        device_->loadPipelineCache(gpu::defaultPipelineCacheFile(device_->caps()));
        gpu::EngineOptions eo;
        eo.pleInVram = a.flag("ple-vram");
        vulkan_ = std::make_unique<gpu::VulkanModel>(*device_, *reference_, eo);
    }
}

Backend::~Backend() {
    if (device_) device_->savePipelineCache();
}

int Backend::threads() const { return reference_->pool().size(); }

std::string Backend::deviceName() const { return device_ ? device_->caps().name : "cpu"; }

std::unique_ptr<Session> Backend::newSession(int context) const {
    if (vulkan_) return std::make_unique<gpu::VulkanSession>(*vulkan_, context);
    return std::make_unique<ReferenceSession>(*reference_, context);
}

Json Backend::sessionStats(const Session& session) const {
    if (const auto* v = dynamic_cast<const gpu::VulkanSession*>(&session)) {
        Json j = gpu::toJson(v->stats());
        j["device"] = device_->caps().name;
        j["software_device"] = device_->caps().software;
        return j;
    }
    return Json::object();
}

}  // namespace whittle::cli
