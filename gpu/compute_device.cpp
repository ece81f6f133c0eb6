#include "gpu/compute_device.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "core/error.h"

namespace whittle::gpu {

ComputeDevice::ComputeDevice(const VulkanInstance& instance, std::uint32_t index) {
    auto devices = instance.physicalDevices();
    if (index >= devices.size()) throw UsageError("no Vulkan device with index " + std::to_string(index));
    physical_ = std::move(devices[index]);
    caps_ = queryCaps(physical_, index);
    memProps_ = physical_.getMemoryProperties();
    const auto families = physical_.getQueueFamilyProperties();
    bool found = false;
    // Prefer a compute-only family (async compute on discrete GPUs), else any with compute.
    for (int pass = 0; pass < 2 && !found; ++pass)
        for (std::uint32_t i = 0; i < families.size(); ++i) {
            const auto f = families[i].queueFlags;
            if ((f & vk::QueueFlagBits::eCompute) && (pass == 1 || !(f & vk::QueueFlagBits::eGraphics))) {
                queueFamily_ = i;
                found = true;
                break;
            }
        }
    if (!found) throw Error("Vulkan device '" + caps_.name + "' has no compute queue");
    const float priority = 1.0f;
    vk::DeviceQueueCreateInfo qci({}, queueFamily_, 1, &priority);
    vk::StructureChain<vk::DeviceCreateInfo, vk::PhysicalDeviceVulkan11Features, vk::PhysicalDeviceVulkan12Features> chain;
    chain.get<vk::DeviceCreateInfo>().setQueueCreateInfos(qci);
    // Enable what the shaders may use; DeviceCaps already reflects the kill switches.
    chain.get<vk::PhysicalDeviceVulkan11Features>().storageBuffer16BitAccess = caps_.storageBuffer16Bit;
    chain.get<vk::PhysicalDeviceVulkan12Features>().storageBuffer8BitAccess = caps_.storageBuffer8Bit;
    chain.get<vk::PhysicalDeviceVulkan12Features>().shaderFloat16 = caps_.shaderFloat16;
    chain.get<vk::PhysicalDeviceVulkan12Features>().shaderInt8 = caps_.shaderInt8;
    try {
        device_ = vk::raii::Device(physical_, chain.get<vk::DeviceCreateInfo>());
        queue_ = device_.getQueue(queueFamily_, 0);
        commandPool_ = vk::raii::CommandPool(
            device_, vk::CommandPoolCreateInfo(vk::CommandPoolCreateFlagBits::eResetCommandBuffer, queueFamily_));
        commandBuffer_ = std::move(vk::raii::CommandBuffers(
            device_, vk::CommandBufferAllocateInfo(*commandPool_, vk::CommandBufferLevel::ePrimary, 1))[0]);
        const vk::DescriptorPoolSize size(vk::DescriptorType::eStorageBuffer, 64);
        descriptorPool_ = vk::raii::DescriptorPool(
            device_, vk::DescriptorPoolCreateInfo(vk::DescriptorPoolCreateFlagBits::eFreeDescriptorSet, 16, size));
        fence_ = vk::raii::Fence(device_, vk::FenceCreateInfo());
        pipelineCache_ = vk::raii::PipelineCache(device_, vk::PipelineCacheCreateInfo());
    } catch (const vk::SystemError& e) {
        throw Error("cannot open Vulkan device '" + caps_.name + "': " + e.what());
    }
}

std::uint32_t ComputeDevice::memoryType(std::uint32_t typeBits) const {
    using P = vk::MemoryPropertyFlagBits;
    // Host-visible and coherent, device-local when possible (lavapipe and resizable-BAR GPUs).
    for (const auto want : {P::eHostVisible | P::eHostCoherent | P::eDeviceLocal, P::eHostVisible | P::eHostCoherent})
        for (std::uint32_t i = 0; i < memProps_.memoryTypeCount; ++i)
            if ((typeBits & (1u << i)) && (memProps_.memoryTypes[i].propertyFlags & want) == want) return i;
    throw Error("Vulkan device '" + caps_.name + "' has no host-visible coherent memory");
}

Buffer ComputeDevice::createBuffer(std::uint64_t bytes) {
    if (bytes == 0) bytes = 4;
    if (bytes > caps_.maxStorageBufferRange)
        throw UsageError("buffer of " + std::to_string(bytes) + " bytes exceeds the device's storage-buffer range of " +
                         std::to_string(caps_.maxStorageBufferRange));
    vk::raii::Buffer buf(device_, vk::BufferCreateInfo({}, bytes, vk::BufferUsageFlagBits::eStorageBuffer | vk::BufferUsageFlagBits::eTransferSrc | vk::BufferUsageFlagBits::eTransferDst,
                                                       vk::SharingMode::eExclusive));
    const auto req = buf.getMemoryRequirements();
    vk::raii::DeviceMemory mem(device_, vk::MemoryAllocateInfo(req.size, memoryType(req.memoryTypeBits)));
    buf.bindMemory(*mem, 0);
    void* mapped = mem.mapMemory(0, bytes);
    return Buffer(std::move(buf), std::move(mem), mapped, bytes);
}

Pipeline ComputeDevice::createPipeline(ShaderId shader, std::uint32_t bindings, std::uint32_t pushBytes,
                                       std::span<const std::uint32_t> specialization) {
    std::vector<vk::DescriptorSetLayoutBinding> b;
    for (std::uint32_t i = 0; i < bindings; ++i)
        b.emplace_back(i, vk::DescriptorType::eStorageBuffer, 1, vk::ShaderStageFlagBits::eCompute);
    vk::raii::DescriptorSetLayout dsl(device_, vk::DescriptorSetLayoutCreateInfo({}, b));
    const vk::PushConstantRange range(vk::ShaderStageFlagBits::eCompute, 0, pushBytes);
    vk::PipelineLayoutCreateInfo plci({}, *dsl);
    if (pushBytes) plci.setPushConstantRanges(range);
    vk::raii::PipelineLayout layout(device_, plci);
    const auto code = spirv(shader);
    vk::raii::ShaderModule module(device_, vk::ShaderModuleCreateInfo({}, code.size_bytes(), code.data()));
    std::vector<vk::SpecializationMapEntry> entries;
    for (std::uint32_t i = 0; i < specialization.size(); ++i) entries.emplace_back(i, i * 4, 4);
    const vk::SpecializationInfo spec(std::uint32_t(entries.size()), entries.data(), specialization.size_bytes(), specialization.data());
    vk::PipelineShaderStageCreateInfo stage({}, vk::ShaderStageFlagBits::eCompute, *module, "main", specialization.empty() ? nullptr : &spec);
    vk::ComputePipelineCreateInfo ci({}, stage, *layout);
    vk::raii::Pipeline pipeline(device_, pipelineCache_, ci);
    return Pipeline(std::move(dsl), std::move(layout), std::move(pipeline), bindings, pushBytes, shader);
}

void ComputeDevice::loadPipelineCache(const std::filesystem::path& file) {
    pipelineCacheFile_ = file;
    std::ifstream in(file, std::ios::binary);
    if (!in) return;
    const std::vector<char> data{std::istreambuf_iterator<char>(in), {}};
    try {
        // The driver checks the header (vendor, device, cache UUID) and ignores data from elsewhere.
        pipelineCache_ = vk::raii::PipelineCache(device_, vk::PipelineCacheCreateInfo({}, data.size(), data.data()));
    } catch (const vk::SystemError&) {
        pipelineCache_ = vk::raii::PipelineCache(device_, vk::PipelineCacheCreateInfo());
    }
}

void ComputeDevice::savePipelineCache() const {
    if (pipelineCacheFile_.empty()) return;
    try {
        const std::vector<std::uint8_t> data = pipelineCache_.getData();
        std::error_code ec;
        std::filesystem::create_directories(pipelineCacheFile_.parent_path(), ec);
        const auto tmp = pipelineCacheFile_.string() + ".tmp";
        {
            std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
            out.write(reinterpret_cast<const char*>(data.data()), std::streamsize(data.size()));
            if (!out) return;  // a cache is an optimisation: failing to write it is not an error
        }
        std::filesystem::rename(tmp, pipelineCacheFile_, ec);
    } catch (const std::exception&) {
    }
}

namespace {
std::string formatSeconds(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, s >= 1 ? "%.0f s" : "%.3g s", s);
    return buf;
}
}  // namespace

std::filesystem::path defaultPipelineCacheFile(const DeviceCaps& caps) {
    std::filesystem::path dir;
    if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) dir = x;
    else if (const char* h = std::getenv("HOME"); h && *h) dir = std::filesystem::path(h) / ".cache";
    else return {};
    char id[32];
    std::snprintf(id, sizeof id, "%04x-%04x", caps.vendorId, caps.deviceId);
    return dir / "whittle" / ("pipelines-" + std::string(id) + ".bin");
}

void ComputeDevice::submitAndWait(const vk::CommandBuffer& cb, const vk::raii::Fence& fence, double timeoutSeconds) const {
    try {
        device_.resetFences(*fence);
        queue_.submit(vk::SubmitInfo({}, {}, cb), *fence);
        const auto ns = std::uint64_t(timeoutSeconds * 1e9);
        const vk::Result r = device_.waitForFences(*fence, VK_TRUE, ns);
        if (r == vk::Result::eTimeout)
            throw Error("the Vulkan device '" + caps_.name + "' did not finish its work within " + formatSeconds(timeoutSeconds) +
                        "; the session is ended");
    } catch (const vk::DeviceLostError&) {
        throw Error("the Vulkan device '" + caps_.name + "' was lost (VK_ERROR_DEVICE_LOST: a driver reset or a hung kernel); the session is ended");
    } catch (const vk::SystemError& e) {
        throw Error("Vulkan submit on '" + caps_.name + "' failed: " + e.what());
    }
}

void ComputeDevice::runOnce(const std::function<void(const vk::raii::CommandBuffer&)>& fill) {
    commandBuffer_.reset();
    commandBuffer_.begin(vk::CommandBufferBeginInfo(vk::CommandBufferUsageFlagBits::eOneTimeSubmit));
    fill(commandBuffer_);
    commandBuffer_.end();
    submitAndWait(*commandBuffer_, fence_);
}

void ComputeDevice::dispatch(const Pipeline& p, std::span<const Buffer* const> buffers, const void* push,
                             std::uint32_t gx, std::uint32_t gy, std::uint32_t gz) {
    if (buffers.size() != p.bindings) throw UsageError("dispatch needs " + std::to_string(p.bindings) + " buffers");
    for (std::uint32_t i = 0; i < 3; ++i) {
        const std::uint32_t g = i == 0 ? gx : i == 1 ? gy : gz;
        if (g > caps_.maxComputeWorkGroupCount[i])
            throw UsageError("dispatch of " + std::to_string(g) + " workgroups exceeds the device limit of " +
                             std::to_string(caps_.maxComputeWorkGroupCount[i]));
    }
    vk::raii::DescriptorSets sets(device_, vk::DescriptorSetAllocateInfo(*descriptorPool_, *p.setLayout));
    vk::raii::DescriptorSet& set = sets[0];
    std::vector<vk::DescriptorBufferInfo> infos;
    for (const Buffer* b : buffers) infos.emplace_back(*b->handle(), 0, VK_WHOLE_SIZE);
    std::vector<vk::WriteDescriptorSet> writes;
    for (std::uint32_t i = 0; i < infos.size(); ++i)
        writes.emplace_back(*set, i, 0, 1, vk::DescriptorType::eStorageBuffer, nullptr, &infos[i]);
    device_.updateDescriptorSets(writes, nullptr);

    runOnce([&](const vk::raii::CommandBuffer& cb) {
        cb.bindPipeline(vk::PipelineBindPoint::eCompute, *p.pipeline);
        cb.bindDescriptorSets(vk::PipelineBindPoint::eCompute, *p.layout, 0, *set, nullptr);
        if (p.pushBytes)
            cb.pushConstants<std::uint8_t>(*p.layout, vk::ShaderStageFlagBits::eCompute, 0,
                                           std::span(static_cast<const std::uint8_t*>(push), p.pushBytes));
        cb.dispatch(gx, gy, gz);
        // Make shader writes visible to the host mapping.
        const vk::MemoryBarrier barrier(vk::AccessFlagBits::eShaderWrite, vk::AccessFlagBits::eHostRead);
        cb.pipelineBarrier(vk::PipelineStageFlagBits::eComputeShader, vk::PipelineStageFlagBits::eHost, {}, barrier, nullptr, nullptr);
    });
}

}  // namespace whittle::gpu
