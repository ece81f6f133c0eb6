#pragma once
// Whittle's own Vulkan instance (Qt's QVulkanInstance cannot be created on the offscreen platform).
// Optionally enables the Khronos validation layer and counts what it reports.
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include <vulkan/vulkan_raii.hpp>

namespace whittle::gpu {

struct InstanceOptions {
    bool validation = false;  // also on when WHITTLE_VK_VALIDATION=1
};

class VulkanInstance {
public:
    // Throws whittle::Error with a clear message when no Vulkan loader or driver is present.
    explicit VulkanInstance(const InstanceOptions& options = {});
    ~VulkanInstance();
    VulkanInstance(const VulkanInstance&) = delete;
    VulkanInstance& operator=(const VulkanInstance&) = delete;

    const vk::raii::Instance& instance() const { return instance_; }
    std::vector<vk::raii::PhysicalDevice> physicalDevices() const;
    std::uint32_t apiVersion() const { return apiVersion_; }
    bool validationEnabled() const { return messenger_ != nullptr; }
    int validationErrors() const { return errors_->load(); }
    int validationWarnings() const { return warnings_->load(); }
    std::vector<std::string> validationMessages() const;

private:
    vk::raii::Context context_;
    vk::raii::Instance instance_{nullptr};
    std::unique_ptr<vk::raii::DebugUtilsMessengerEXT> messenger_;
    std::uint32_t apiVersion_ = 0;

public:
    struct Log;  // shared with the debug callback

private:
    std::shared_ptr<Log> log_;
    std::shared_ptr<std::atomic<int>> errors_, warnings_;
};

}  // namespace whittle::gpu
