#include "gpu/vulkan_instance.h"

#include <cstdlib>
#include <cstring>
#include <mutex>

#include "core/error.h"

namespace whittle::gpu {

struct VulkanInstance::Log {
    std::mutex mutex;
    std::vector<std::string> messages;
    std::atomic<int>* errors;
    std::atomic<int>* warnings;
};

namespace {

VKAPI_ATTR VkBool32 VKAPI_CALL onMessage(VkDebugUtilsMessageSeverityFlagBitsEXT severity, VkDebugUtilsMessageTypeFlagsEXT,
                                         const VkDebugUtilsMessengerCallbackDataEXT* data, void* user) {
    auto* log = static_cast<VulkanInstance::Log*>(user);
    if (severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT) ++*log->errors;
    else if (severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT) ++*log->warnings;
    else return VK_FALSE;
    std::lock_guard lock(log->mutex);
    if (log->messages.size() < 100) log->messages.emplace_back(data && data->pMessage ? data->pMessage : "");
    return VK_FALSE;
}

bool hasLayer(const vk::raii::Context& ctx, const char* name) {
    for (const auto& l : ctx.enumerateInstanceLayerProperties())
        if (std::strcmp(l.layerName, name) == 0) return true;
    return false;
}

bool hasExtension(const vk::raii::Context& ctx, const char* name) {
    for (const auto& e : ctx.enumerateInstanceExtensionProperties())
        if (std::strcmp(e.extensionName, name) == 0) return true;
    return false;
}

}  // namespace

VulkanInstance::VulkanInstance(const InstanceOptions& options)
    : log_(std::make_shared<Log>()),
      errors_(std::make_shared<std::atomic<int>>(0)),
      warnings_(std::make_shared<std::atomic<int>>(0)) {
    log_->errors = errors_.get();
    log_->warnings = warnings_.get();
    const char* env = std::getenv("WHITTLE_VK_VALIDATION");
    const bool validation = options.validation || (env && std::strcmp(env, "1") == 0);
    try {
        apiVersion_ = context_.enumerateInstanceVersion();
        std::vector<const char*> layers, extensions;
        if (validation) {
            if (!hasLayer(context_, "VK_LAYER_KHRONOS_validation"))
                throw Error("Vulkan validation was requested but VK_LAYER_KHRONOS_validation is not installed "
                            "(Debian package vulkan-validationlayers)");
            layers.push_back("VK_LAYER_KHRONOS_validation");
            extensions.push_back(VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
        }
        const bool portability = hasExtension(context_, VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME);
        if (portability) extensions.push_back(VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME);
        vk::ApplicationInfo app("Whittle", 1, "Whittle", 1, VK_API_VERSION_1_2);
        vk::InstanceCreateInfo ci({}, &app, layers, extensions);
        if (portability) ci.flags |= vk::InstanceCreateFlagBits::eEnumeratePortabilityKHR;
        instance_ = vk::raii::Instance(context_, ci);
        if (validation) {
            using S = vk::DebugUtilsMessageSeverityFlagBitsEXT;
            using T = vk::DebugUtilsMessageTypeFlagBitsEXT;
            vk::DebugUtilsMessengerCreateInfoEXT mi({}, S::eWarning | S::eError,
                                                    T::eGeneral | T::eValidation | T::ePerformance, &onMessage, log_.get());
            messenger_ = std::make_unique<vk::raii::DebugUtilsMessengerEXT>(instance_, mi);
        }
    } catch (const vk::IncompatibleDriverError&) {
        throw Error("no Vulkan driver found: install your GPU's Vulkan driver, or mesa-vulkan-drivers for the CPU "
                    "device (lavapipe)");
    } catch (const vk::SystemError& e) {
        throw Error(std::string("cannot start Vulkan: ") + e.what());
    }
}

VulkanInstance::~VulkanInstance() = default;

std::vector<vk::raii::PhysicalDevice> VulkanInstance::physicalDevices() const {
    try {
        vk::raii::PhysicalDevices list(instance_);
        return {std::make_move_iterator(list.begin()), std::make_move_iterator(list.end())};
    } catch (const vk::SystemError& e) {
        throw Error(std::string("cannot list Vulkan devices: ") + e.what());
    }
}

std::vector<std::string> VulkanInstance::validationMessages() const {
    std::lock_guard lock(log_->mutex);
    return log_->messages;
}

}  // namespace whittle::gpu
