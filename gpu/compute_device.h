#pragma once
// A logical Vulkan device with one compute queue: host-visible storage buffers, compute pipelines
// built from embedded SPIR-V, and synchronous dispatches. The engine's per-token command buffers
// grow from this.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include <vulkan/vulkan_raii.hpp>

#include "gpu/device_caps.h"
#include "gpu/shaders.h"
#include "gpu/vulkan_instance.h"

namespace whittle::gpu {

class Buffer {
public:
    Buffer(vk::raii::Buffer buffer, vk::raii::DeviceMemory memory, void* mapped, std::uint64_t size)
        : buffer_(std::move(buffer)), memory_(std::move(memory)), mapped_(mapped), size_(size) {}
    const vk::raii::Buffer& handle() const { return buffer_; }
    std::uint64_t size() const { return size_; }
    void* data() const { return mapped_; }
    template <class T>
    std::span<T> as() const { return {static_cast<T*>(mapped_), std::size_t(size_ / sizeof(T))}; }

private:
    vk::raii::Buffer buffer_;
    vk::raii::DeviceMemory memory_;
    void* mapped_;
    std::uint64_t size_;
};

class Pipeline {
public:
    Pipeline(vk::raii::DescriptorSetLayout dsl, vk::raii::PipelineLayout layout, vk::raii::Pipeline pipeline,
             std::uint32_t bindings, std::uint32_t pushBytes, ShaderId shader = ShaderId::Scale)
        : setLayout(std::move(dsl)), layout(std::move(layout)), pipeline(std::move(pipeline)), bindings(bindings),
          pushBytes(pushBytes), shader(shader) {}
    vk::raii::DescriptorSetLayout setLayout;
    vk::raii::PipelineLayout layout;
    vk::raii::Pipeline pipeline;
    std::uint32_t bindings;
    std::uint32_t pushBytes;
    ShaderId shader;
};

class ComputeDevice {
public:
    // Opens device `index` of the instance (see pickDevice).
    ComputeDevice(const VulkanInstance& instance, std::uint32_t index);
    const DeviceCaps& caps() const { return caps_; }

    Buffer createBuffer(std::uint64_t bytes);
    // specialization: values of constant_id 0, 1, … (each 32 bits). Pipelines go through the device's
    // VkPipelineCache (see loadPipelineCache), since lavapipe and GPU drivers compile at creation.
    Pipeline createPipeline(ShaderId shader, std::uint32_t bindings, std::uint32_t pushBytes,
                            std::span<const std::uint32_t> specialization = {});
    // Seeds the pipeline cache from `file` (ignored when missing or written by another driver) and remembers it;
    // savePipelineCache() writes it back (through a temporary file and a rename).
    void loadPipelineCache(const std::filesystem::path& file);  // an empty path: no cache on disk
    void savePipelineCache() const;

    const vk::raii::Device& device() const { return device_; }
    const vk::raii::PhysicalDevice& physical() const { return physical_; }
    const vk::raii::Queue& queue() const { return queue_; }
    std::uint32_t queueFamily() const { return queueFamily_; }
    const vk::PhysicalDeviceMemoryProperties& memoryProperties() const { return memProps_; }
    // Submits a command buffer and waits for it; a lost device or a wait past `timeoutSeconds` throws Error
    // naming the device (never a hang).
    void submitAndWait(const vk::CommandBuffer& cb, const vk::raii::Fence& fence, double timeoutSeconds = 120) const;
    // Records `fill` into a one-time command buffer, submits it and waits (uploads through a staging buffer).
    void runOnce(const std::function<void(const vk::raii::CommandBuffer&)>& fill);
    // Records one dispatch, submits it and waits (one host wait).
    void dispatch(const Pipeline& p, std::span<const Buffer* const> buffers, const void* push, std::uint32_t groupsX,
                  std::uint32_t groupsY = 1, std::uint32_t groupsZ = 1);

private:
    std::uint32_t memoryType(std::uint32_t typeBits) const;

    DeviceCaps caps_;
    vk::raii::PhysicalDevice physical_{nullptr};
    vk::raii::Device device_{nullptr};
    vk::raii::Queue queue_{nullptr};
    vk::raii::CommandPool commandPool_{nullptr};
    vk::raii::CommandBuffer commandBuffer_{nullptr};
    vk::raii::DescriptorPool descriptorPool_{nullptr};
    vk::raii::Fence fence_{nullptr};
    std::uint32_t queueFamily_ = 0;
    vk::PhysicalDeviceMemoryProperties memProps_;
    vk::raii::PipelineCache pipelineCache_{nullptr};
    std::filesystem::path pipelineCacheFile_;
};

// Where compiled pipelines are kept between runs, per device: $XDG_CACHE_HOME/whittle, else ~/.cache/whittle
// (empty when neither is set). whittle-cli and the Chat page share it.
std::filesystem::path defaultPipelineCacheFile(const DeviceCaps& caps);

}  // namespace whittle::gpu
