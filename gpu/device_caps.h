#pragma once
// Everything Whittle needs to know about a Vulkan device, read once into one struct of named flags
// (the ggml-vulkan/ncnn model): shaders get them as specialization constants, the UI shows them, and
// WHITTLE_VK_DISABLE=fp16,int8,subgroup,dot,coopmat switches features off for testing.
#include <cstdint>
#include <string>
#include <vector>

#include <vulkan/vulkan_raii.hpp>

#include "core/io/json_file.h"

namespace whittle::gpu {

struct MemoryHeap {
    std::uint64_t size = 0;
    bool deviceLocal = false;
    bool hostVisible = false;  // some memory type of this heap is host-visible
    std::uint64_t budget = 0;  // VK_EXT_memory_budget; 0 when unknown
    std::uint64_t usage = 0;
};

struct DeviceCaps {
    std::uint32_t index = 0;  // in the instance's enumeration order
    std::string name;
    std::uint32_t vendorId = 0, deviceId = 0;
    std::string vendor;  // "AMD", "NVIDIA", "Intel", "Mesa (software)", …
    std::string type;    // "discrete", "integrated", "virtual", "cpu", "other"
    bool software = false;  // lavapipe and other CPU implementations
    std::string driverName, driverInfo;
    std::uint32_t apiVersion = 0;

    std::uint32_t subgroupSize = 0;
    bool subgroupBasic = false, subgroupVote = false, subgroupArithmetic = false, subgroupBallot = false,
         subgroupShuffle = false, subgroupShuffleRelative = false, subgroupClustered = false, subgroupQuad = false;
    bool shaderFloat16 = false, shaderInt8 = false, shaderInt16 = false, shaderInt64 = false, shaderFloat64 = false;
    bool storageBuffer8Bit = false, storageBuffer16Bit = false;
    bool integerDotProduct = false;             // VK_KHR_shader_integer_dot_product (core 1.3)
    bool integerDotProductAccelerated = false;  // 4x8-bit packed signed dot product is accelerated
    bool cooperativeMatrix = false;             // VK_KHR_cooperative_matrix
    bool memoryBudget = false;                  // VK_EXT_memory_budget
    bool timestamps = false;
    float timestampPeriodNs = 0;

    std::uint64_t maxStorageBufferRange = 0;
    std::uint64_t maxMemoryAllocationSize = 0;
    std::uint32_t maxComputeSharedMemorySize = 0;
    std::uint32_t maxComputeWorkGroupInvocations = 0;
    std::uint32_t maxComputeWorkGroupCount[3] = {0, 0, 0};  // the dispatch-count cap
    std::uint32_t maxComputeWorkGroupSize[3] = {0, 0, 0};
    std::uint32_t maxPushConstantsSize = 0;
    std::uint32_t minStorageBufferOffsetAlignment = 0;
    std::vector<MemoryHeap> heaps;
    std::vector<std::string> disabled;  // features switched off by WHITTLE_VK_DISABLE

    std::uint64_t deviceLocalBytes() const;
    // Σ(budget − usage) over device-local heaps when the budget extension is present, else their size.
    std::uint64_t freeDeviceLocalBytes() const;
    // What a model may count on: the free device-local bytes when VK_EXT_memory_budget reports them, otherwise
    // 0.8 × the device-local heaps (an estimate: other programs' use is unknown). roomSource() says which.
    std::uint64_t roomForModel() const;
    const char* roomSource() const;  // "VK_EXT_memory_budget" or "estimated: 0.8 x device-local heaps"
};

DeviceCaps queryCaps(const vk::raii::PhysicalDevice& pd, std::uint32_t index);
std::vector<DeviceCaps> queryAllCaps(const std::vector<vk::raii::PhysicalDevice>& devices);

// The device a run should use: the one named by `preference` (an index or a name substring; also
// WHITTLE_VK_DEVICE), else the first discrete GPU, then integrated, then anything but a CPU device;
// a software device only when it is the only one or when named. Returns -1 when there is none.
int pickDevice(const std::vector<DeviceCaps>& devices, const std::string& preference = {});

Json toJson(const DeviceCaps& c);
std::string formatDevices(const std::vector<DeviceCaps>& devices);  // `whittle-cli devices`
std::string versionString(std::uint32_t v);

}  // namespace whittle::gpu
