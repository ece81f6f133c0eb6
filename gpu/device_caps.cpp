#include "gpu/device_caps.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "core/error.h"
#include "core/model/inventory.h"

namespace whittle::gpu {

namespace {

std::string vendorName(std::uint32_t id, bool software) {
    switch (id) {
    case 0x1002: return "AMD";
    case 0x10de: return "NVIDIA";
    case 0x8086: return "Intel";
    case 0x13b5: return "ARM";
    case 0x5143: return "Qualcomm";
    case 0x106b: return "Apple";
    case 0x10005: return software ? "Mesa (software)" : "Mesa";
    default: {
        char b[16];
        std::snprintf(b, sizeof b, "0x%04x", id);
        return b;
    }
    }
}

std::string typeName(vk::PhysicalDeviceType t) {
    switch (t) {
    case vk::PhysicalDeviceType::eDiscreteGpu: return "discrete";
    case vk::PhysicalDeviceType::eIntegratedGpu: return "integrated";
    case vk::PhysicalDeviceType::eVirtualGpu: return "virtual";
    case vk::PhysicalDeviceType::eCpu: return "cpu";
    default: return "other";
    }
}

bool hasDeviceExtension(const std::vector<vk::ExtensionProperties>& exts, const char* name) {
    for (const auto& e : exts)
        if (std::strcmp(e.extensionName, name) == 0) return true;
    return false;
}

// WHITTLE_VK_DISABLE=fp16,int8,subgroup,dot,coopmat: kill switches for optional features.
void applyKillSwitches(DeviceCaps& c) {
    const char* env = std::getenv("WHITTLE_VK_DISABLE");
    if (!env) return;
    std::stringstream ss(env);
    std::string item;
    while (std::getline(ss, item, ',')) {
        if (item == "fp16") c.shaderFloat16 = c.storageBuffer16Bit = false;
        else if (item == "int8") c.shaderInt8 = c.storageBuffer8Bit = false;
        else if (item == "subgroup") c.subgroupArithmetic = c.subgroupShuffle = c.subgroupClustered = false;
        else if (item == "dot") c.integerDotProduct = c.integerDotProductAccelerated = false;
        else if (item == "coopmat") c.cooperativeMatrix = false;
        else continue;
        c.disabled.push_back(item);
    }
}

}  // namespace

std::string versionString(std::uint32_t v) {
    return std::to_string(VK_API_VERSION_MAJOR(v)) + "." + std::to_string(VK_API_VERSION_MINOR(v)) + "." +
           std::to_string(VK_API_VERSION_PATCH(v));
}

DeviceCaps queryCaps(const vk::raii::PhysicalDevice& pd, std::uint32_t index) {
    DeviceCaps c;
    c.index = index;
    const auto exts = pd.enumerateDeviceExtensionProperties();
    const vk::PhysicalDeviceProperties base = pd.getProperties();
    c.apiVersion = base.apiVersion;
    c.name = base.deviceName.data();
    c.vendorId = base.vendorID;
    c.deviceId = base.deviceID;
    c.type = typeName(base.deviceType);
    c.software = base.deviceType == vk::PhysicalDeviceType::eCpu;
    c.vendor = vendorName(base.vendorID, c.software);

    const bool v12 = base.apiVersion >= VK_API_VERSION_1_2;
    const bool v13 = base.apiVersion >= VK_API_VERSION_1_3;
    c.memoryBudget = hasDeviceExtension(exts, VK_EXT_MEMORY_BUDGET_EXTENSION_NAME);
    c.cooperativeMatrix = hasDeviceExtension(exts, "VK_KHR_cooperative_matrix");
    const bool dotExt = v13 || hasDeviceExtension(exts, VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME);

    if (v12) {
        auto props = pd.getProperties2<vk::PhysicalDeviceProperties2, vk::PhysicalDeviceVulkan11Properties,
                                       vk::PhysicalDeviceVulkan12Properties>();
        const auto& p11 = props.get<vk::PhysicalDeviceVulkan11Properties>();
        const auto& p12 = props.get<vk::PhysicalDeviceVulkan12Properties>();
        c.subgroupSize = p11.subgroupSize;
        const bool compute = bool(p11.subgroupSupportedStages & vk::ShaderStageFlagBits::eCompute);
        using F = vk::SubgroupFeatureFlagBits;
        auto has = [&](F f) { return compute && bool(p11.subgroupSupportedOperations & f); };
        c.subgroupBasic = has(F::eBasic);
        c.subgroupVote = has(F::eVote);
        c.subgroupArithmetic = has(F::eArithmetic);
        c.subgroupBallot = has(F::eBallot);
        c.subgroupShuffle = has(F::eShuffle);
        c.subgroupShuffleRelative = has(F::eShuffleRelative);
        c.subgroupClustered = has(F::eClustered);
        c.subgroupQuad = has(F::eQuad);
        c.driverName = p12.driverName.data();
        c.driverInfo = p12.driverInfo.data();

        auto feats = pd.getFeatures2<vk::PhysicalDeviceFeatures2, vk::PhysicalDeviceVulkan11Features,
                                     vk::PhysicalDeviceVulkan12Features>();
        const auto& f0 = feats.get<vk::PhysicalDeviceFeatures2>().features;
        const auto& f11 = feats.get<vk::PhysicalDeviceVulkan11Features>();
        const auto& f12 = feats.get<vk::PhysicalDeviceVulkan12Features>();
        c.shaderInt16 = f0.shaderInt16;
        c.shaderInt64 = f0.shaderInt64;
        c.shaderFloat64 = f0.shaderFloat64;
        c.shaderFloat16 = f12.shaderFloat16;
        c.shaderInt8 = f12.shaderInt8;
        c.storageBuffer8Bit = f12.storageBuffer8BitAccess;
        c.storageBuffer16Bit = f11.storageBuffer16BitAccess;
        if (dotExt && v13) {
            auto dot = pd.getFeatures2<vk::PhysicalDeviceFeatures2, vk::PhysicalDeviceVulkan13Features>();
            c.integerDotProduct = dot.get<vk::PhysicalDeviceVulkan13Features>().shaderIntegerDotProduct;
            auto dp = pd.getProperties2<vk::PhysicalDeviceProperties2, vk::PhysicalDeviceShaderIntegerDotProductProperties>();
            c.integerDotProductAccelerated =
                dp.get<vk::PhysicalDeviceShaderIntegerDotProductProperties>().integerDotProduct4x8BitPackedSignedAccelerated;
        }
    }
    const auto& lim = base.limits;
    c.maxStorageBufferRange = lim.maxStorageBufferRange;
    c.maxComputeSharedMemorySize = lim.maxComputeSharedMemorySize;
    c.maxComputeWorkGroupInvocations = lim.maxComputeWorkGroupInvocations;
    for (int i = 0; i < 3; ++i) {
        c.maxComputeWorkGroupCount[i] = lim.maxComputeWorkGroupCount[std::size_t(i)];
        c.maxComputeWorkGroupSize[i] = lim.maxComputeWorkGroupSize[std::size_t(i)];
    }
    c.maxPushConstantsSize = lim.maxPushConstantsSize;
    c.minStorageBufferOffsetAlignment = std::uint32_t(lim.minStorageBufferOffsetAlignment);
    c.timestamps = lim.timestampComputeAndGraphics;
    c.timestampPeriodNs = lim.timestampPeriod;
    if (base.apiVersion >= VK_API_VERSION_1_1) {
        auto m = pd.getProperties2<vk::PhysicalDeviceProperties2, vk::PhysicalDeviceMaintenance3Properties>();
        c.maxMemoryAllocationSize = m.get<vk::PhysicalDeviceMaintenance3Properties>().maxMemoryAllocationSize;
    }

    vk::PhysicalDeviceMemoryProperties mem;
    vk::PhysicalDeviceMemoryBudgetPropertiesEXT budget;
    if (c.memoryBudget) {
        auto chain = pd.getMemoryProperties2<vk::PhysicalDeviceMemoryProperties2, vk::PhysicalDeviceMemoryBudgetPropertiesEXT>();
        mem = chain.get<vk::PhysicalDeviceMemoryProperties2>().memoryProperties;
        budget = chain.get<vk::PhysicalDeviceMemoryBudgetPropertiesEXT>();
    } else {
        mem = pd.getMemoryProperties();
    }
    for (std::uint32_t h = 0; h < mem.memoryHeapCount; ++h) {
        MemoryHeap heap;
        heap.size = mem.memoryHeaps[h].size;
        heap.deviceLocal = bool(mem.memoryHeaps[h].flags & vk::MemoryHeapFlagBits::eDeviceLocal);
        for (std::uint32_t t = 0; t < mem.memoryTypeCount; ++t)
            if (mem.memoryTypes[t].heapIndex == h &&
                (mem.memoryTypes[t].propertyFlags & vk::MemoryPropertyFlagBits::eHostVisible))
                heap.hostVisible = true;
        if (c.memoryBudget) {
            heap.budget = budget.heapBudget[h];
            heap.usage = budget.heapUsage[h];
        }
        c.heaps.push_back(heap);
    }
    applyKillSwitches(c);
    return c;
}

std::vector<DeviceCaps> queryAllCaps(const std::vector<vk::raii::PhysicalDevice>& devices) {
    std::vector<DeviceCaps> out;
    for (std::size_t i = 0; i < devices.size(); ++i) out.push_back(queryCaps(devices[i], std::uint32_t(i)));
    return out;
}

std::uint64_t DeviceCaps::deviceLocalBytes() const {
    std::uint64_t n = 0;
    for (const auto& h : heaps)
        if (h.deviceLocal) n += h.size;
    return n;
}

std::uint64_t DeviceCaps::freeDeviceLocalBytes() const {
    std::uint64_t n = 0;
    for (const auto& h : heaps)
        if (h.deviceLocal) n += memoryBudget ? (h.budget > h.usage ? h.budget - h.usage : 0) : h.size;
    return n;
}

std::uint64_t DeviceCaps::roomForModel() const { return memoryBudget ? freeDeviceLocalBytes() : deviceLocalBytes() / 10 * 8; }

const char* DeviceCaps::roomSource() const { return memoryBudget ? "VK_EXT_memory_budget" : "estimated: 0.8 x device-local heaps"; }

int pickDevice(const std::vector<DeviceCaps>& devices, const std::string& preferenceIn) {
    std::string preference = preferenceIn;
    if (preference.empty())
        if (const char* env = std::getenv("WHITTLE_VK_DEVICE")) preference = env;
    if (!preference.empty()) {
        const bool numeric = preference.find_first_not_of("0123456789") == std::string::npos;
        for (const auto& d : devices) {
            if (numeric ? std::to_string(d.index) == preference : d.name.find(preference) != std::string::npos)
                return int(d.index);
        }
        throw UsageError("no Vulkan device matches '" + preference + "'");
    }
    for (const char* kind : {"discrete", "integrated", "virtual", "other"})
        for (const auto& d : devices)
            if (d.type == kind) return int(d.index);
    return devices.empty() ? -1 : int(devices.front().index);  // only CPU devices left
}

Json toJson(const DeviceCaps& c) {
    Json heaps = Json::array();
    for (const auto& h : c.heaps)
        heaps.push_back({{"size", h.size}, {"device_local", h.deviceLocal}, {"host_visible", h.hostVisible},
                         {"budget", h.budget}, {"usage", h.usage}});
    return {{"index", c.index},
            {"name", c.name},
            {"vendor", c.vendor},
            {"vendor_id", c.vendorId},
            {"device_id", c.deviceId},
            {"type", c.type},
            {"software", c.software},
            {"driver", c.driverName},
            {"driver_info", c.driverInfo},
            {"api_version", versionString(c.apiVersion)},
            {"subgroup",
             {{"size", c.subgroupSize}, {"basic", c.subgroupBasic}, {"vote", c.subgroupVote},
              {"arithmetic", c.subgroupArithmetic}, {"ballot", c.subgroupBallot}, {"shuffle", c.subgroupShuffle},
              {"shuffle_relative", c.subgroupShuffleRelative}, {"clustered", c.subgroupClustered}, {"quad", c.subgroupQuad}}},
            {"features",
             {{"float16", c.shaderFloat16}, {"float64", c.shaderFloat64}, {"int8", c.shaderInt8}, {"int16", c.shaderInt16},
              {"int64", c.shaderInt64}, {"storage_8bit", c.storageBuffer8Bit}, {"storage_16bit", c.storageBuffer16Bit},
              {"integer_dot_product", c.integerDotProduct}, {"integer_dot_product_accelerated", c.integerDotProductAccelerated},
              {"cooperative_matrix", c.cooperativeMatrix}, {"memory_budget", c.memoryBudget}, {"timestamps", c.timestamps}}},
            {"limits",
             {{"max_storage_buffer_range", c.maxStorageBufferRange},
              {"max_memory_allocation_size", c.maxMemoryAllocationSize},
              {"max_compute_shared_memory", c.maxComputeSharedMemorySize},
              {"max_workgroup_invocations", c.maxComputeWorkGroupInvocations},
              {"max_workgroup_count", {c.maxComputeWorkGroupCount[0], c.maxComputeWorkGroupCount[1], c.maxComputeWorkGroupCount[2]}},
              {"max_push_constants", c.maxPushConstantsSize},
              {"timestamp_period_ns", c.timestampPeriodNs}}},
            {"heaps", heaps},
            {"device_local_bytes", c.deviceLocalBytes()},
            {"free_device_local_bytes", c.freeDeviceLocalBytes()},
            {"room_for_model_bytes", c.roomForModel()},
            {"room_source", c.roomSource()},
            {"disabled", c.disabled}};
}

std::string formatDevices(const std::vector<DeviceCaps>& devices) {
    std::string out;
    char line[512];
    const int picked = pickDevice(devices);
    for (const auto& c : devices) {
        std::snprintf(line, sizeof line, "[%u] %s%s\n", c.index, c.name.c_str(),
                      int(c.index) == picked ? "   (default)" : "");
        out += line;
        std::snprintf(line, sizeof line, "    %s %s%s, driver %s %s, Vulkan %s\n", c.vendor.c_str(), c.type.c_str(),
                      c.software ? " (software rendering: slow, for testing)" : "", c.driverName.c_str(),
                      c.driverInfo.c_str(), versionString(c.apiVersion).c_str());
        out += line;
        for (std::size_t h = 0; h < c.heaps.size(); ++h) {
            const auto& heap = c.heaps[h];
            std::snprintf(line, sizeof line, "    heap %zu: %s%s%s%s\n", h, formatBytes(heap.size).c_str(),
                          heap.deviceLocal ? " device-local" : "", heap.hostVisible ? " host-visible" : "",
                          c.memoryBudget ? (", " + formatBytes(heap.budget > heap.usage ? heap.budget - heap.usage : 0) + " free").c_str() : "");
            out += line;
        }
        std::string sub;
        for (const auto& [ok, n] : std::initializer_list<std::pair<bool, const char*>>{
                 {c.subgroupBasic, "basic"}, {c.subgroupVote, "vote"}, {c.subgroupArithmetic, "arithmetic"},
                 {c.subgroupBallot, "ballot"}, {c.subgroupShuffle, "shuffle"}, {c.subgroupShuffleRelative, "shuffle-relative"},
                 {c.subgroupClustered, "clustered"}, {c.subgroupQuad, "quad"}})
            if (ok) sub += std::string(sub.empty() ? "" : " ") + n;
        std::snprintf(line, sizeof line, "    subgroup %u: %s\n", c.subgroupSize, sub.c_str());
        out += line;
        std::string feats;
        for (const auto& [ok, n] : std::initializer_list<std::pair<bool, const char*>>{
                 {c.shaderFloat16, "fp16"}, {c.shaderInt8, "int8"}, {c.shaderInt16, "int16"}, {c.shaderInt64, "int64"},
                 {c.storageBuffer8Bit, "8-bit-storage"}, {c.storageBuffer16Bit, "16-bit-storage"},
                 {c.integerDotProduct, "int-dot"}, {c.integerDotProductAccelerated, "int-dot-accelerated"},
                 {c.cooperativeMatrix, "cooperative-matrix"}, {c.memoryBudget, "memory-budget"}, {c.timestamps, "timestamps"}})
            if (ok) feats += std::string(feats.empty() ? "" : " ") + n;
        std::snprintf(line, sizeof line, "    features: %s\n", feats.c_str());
        out += line;
        std::snprintf(line, sizeof line,
                      "    limits: storage buffer %s, allocation %s, shared memory %u B, workgroup %u invocations, "
                      "dispatch %u x %u x %u\n",
                      formatBytes(c.maxStorageBufferRange).c_str(), formatBytes(c.maxMemoryAllocationSize).c_str(),
                      c.maxComputeSharedMemorySize, c.maxComputeWorkGroupInvocations, c.maxComputeWorkGroupCount[0],
                      c.maxComputeWorkGroupCount[1], c.maxComputeWorkGroupCount[2]);
        out += line;
        if (!c.disabled.empty()) {
            std::string d;
            for (const auto& s : c.disabled) d += (d.empty() ? "" : ",") + s;
            out += "    disabled by WHITTLE_VK_DISABLE: " + d + "\n";
        }
    }
    return out;
}

}  // namespace whittle::gpu
