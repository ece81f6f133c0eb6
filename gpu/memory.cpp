#include "gpu/memory.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "core/model/inventory.h"
#include "gpu/compute_device.h"

namespace whittle::gpu {

const char* memoryKindName(MemoryKind k) {
    switch (k) {
    case MemoryKind::Weights: return "weights";
    case MemoryKind::KvCache: return "kv_cache";
    case MemoryKind::Scratch: return "scratch";
    case MemoryKind::Host: return "host_visible";
    }
    return "?";
}

std::uint64_t MemoryStats::totalAllocated() const {
    std::uint64_t n = 0;
    for (auto b : allocated) n += b;
    return n;
}

MemoryArena::MemoryArena(ComputeDevice& device) : device_(device) {}
MemoryArena::~MemoryArena() = default;

BufferId MemoryArena::add(MemoryKind kind, std::uint64_t bytes, std::string name) {
    if (allocated_) throw Error("internal: buffer '" + name + "' declared after the arena was allocated");
    bytes = std::max<std::uint64_t>(4, (bytes + 3) / 4 * 4);
    if (bytes > device_.caps().maxStorageBufferRange)
        throw UsageError("'" + name + "' needs a buffer of " + std::to_string(bytes) + " bytes, more than the device's storage-buffer range of " +
                         std::to_string(device_.caps().maxStorageBufferRange));
    entries_.push_back(Entry{kind, bytes, std::move(name)});
    return BufferId{int(entries_.size()) - 1};
}

std::uint32_t MemoryArena::memoryTypeFor(MemoryKind kind, std::uint32_t typeBits) const {
    using P = vk::MemoryPropertyFlagBits;
    const auto& props = device_.memoryProperties();
    std::vector<vk::MemoryPropertyFlags> wants;
    if (kind == MemoryKind::Host)
        wants = {P::eHostVisible | P::eHostCoherent | P::eHostCached, P::eHostVisible | P::eHostCoherent};
    else
        wants = {P::eDeviceLocal, P::eHostVisible | P::eHostCoherent};
    for (const auto want : wants)
        for (std::uint32_t i = 0; i < props.memoryTypeCount; ++i)
            if ((typeBits & (1u << i)) && (props.memoryTypes[i].propertyFlags & want) == want) return i;
    throw Error("Vulkan device '" + device_.caps().name + "' has no memory type for " + memoryKindName(kind) + " buffers");
}

std::uint64_t MemoryArena::plannedBytes() const {
    std::uint64_t n = 0;
    for (const auto& e : entries_) n += e.bytes;
    return n;
}

void MemoryArena::allocate(const std::string& description, std::uint64_t alreadyUsedElsewhere, std::uint64_t limit) {
    if (allocated_) return;
    const auto& dev = device_.device();
    const auto& caps = device_.caps();
    // Lay every buffer out in blocks per (kind, memory type), at most maxMemoryAllocationSize each.
    struct Plan {
        MemoryKind kind;
        std::uint32_t type;
        std::uint64_t size = 0;
    };
    std::vector<Plan> plans;
    std::vector<std::uint64_t> heapNeed(device_.memoryProperties().memoryHeapCount, 0);
    const std::uint64_t blockCap = std::max<std::uint64_t>(caps.maxMemoryAllocationSize, 1u << 20);
    for (auto& e : entries_) {
        e.buffer = vk::raii::Buffer(dev, vk::BufferCreateInfo({}, e.bytes,
                                                             vk::BufferUsageFlagBits::eStorageBuffer | vk::BufferUsageFlagBits::eTransferDst |
                                                                 vk::BufferUsageFlagBits::eTransferSrc,
                                                             vk::SharingMode::eExclusive));
        const auto req = e.buffer.getMemoryRequirements();
        const std::uint32_t type = memoryTypeFor(e.kind, req.memoryTypeBits);
        int found = -1;
        for (int b = int(plans.size()) - 1; b >= 0; --b)
            if (plans[std::size_t(b)].kind == e.kind && plans[std::size_t(b)].type == type &&
                (plans[std::size_t(b)].size + req.alignment - 1) / req.alignment * req.alignment + req.size <= blockCap) {
                found = b;
                break;
            }
        if (found < 0) {
            plans.push_back(Plan{e.kind, type, 0});
            found = int(plans.size()) - 1;
        }
        Plan& pl = plans[std::size_t(found)];
        e.block = found;
        e.offset = (pl.size + req.alignment - 1) / req.alignment * req.alignment;
        pl.size = e.offset + req.size;
    }
    for (const auto& pl : plans) heapNeed[device_.memoryProperties().memoryTypes[pl.type].heapIndex] += pl.size;
    // Refuse before allocating anything: what the heap holds (its budget when the device reports one) against
    // what this arena and everything allocated before it need.
    for (std::size_t h = 0; h < heapNeed.size(); ++h) {
        if (heapNeed[h] == 0) continue;
        std::uint64_t avail = device_.memoryProperties().memoryHeaps[h].size;
        if (h < caps.heaps.size() && caps.memoryBudget && caps.heaps[h].budget > 0) avail = caps.heaps[h].budget;
        if (limit) avail = limit;
        if (heapNeed[h] + alreadyUsedElsewhere > avail)
            throw UsageError(description + " needs " + formatBytes(heapNeed[h]) + " of device memory" +
                             (alreadyUsedElsewhere ? " (plus " + formatBytes(alreadyUsedElsewhere) + " already in use)" : std::string()) +
                             " but '" + caps.name + "' has " + formatBytes(avail) + " in that heap");
    }
    try {
        for (const auto& pl : plans) {
            Block b;
            b.memory = vk::raii::DeviceMemory(dev, vk::MemoryAllocateInfo(pl.size, pl.type));
            b.size = pl.size;
            if (device_.memoryProperties().memoryTypes[pl.type].propertyFlags & vk::MemoryPropertyFlagBits::eHostVisible)
                b.mapped = static_cast<std::byte*>(b.memory.mapMemory(0, pl.size));
            stats_.allocated[std::size_t(pl.kind)] += pl.size;
            blocks_.push_back(std::move(b));
        }
    } catch (const vk::SystemError& e) {
        throw UsageError(description + ": allocating " + formatBytes(plannedBytes()) + " on '" + caps.name + "' failed (" + e.what() + ")");
    }
    for (auto& e : entries_) {
        e.buffer.bindMemory(*blocks_[std::size_t(e.block)].memory, e.offset);
        stats_.used[std::size_t(e.kind)] += e.bytes;
    }
    allocated_ = true;
}

vk::Buffer MemoryArena::buffer(BufferId id) const { return *entries_.at(std::size_t(id.index)).buffer; }
std::uint64_t MemoryArena::size(BufferId id) const { return entries_.at(std::size_t(id.index)).bytes; }

std::byte* MemoryArena::mapped(BufferId id) const {
    const Entry& e = entries_.at(std::size_t(id.index));
    const Block& b = blocks_.at(std::size_t(e.block));
    return b.mapped ? b.mapped + e.offset : nullptr;
}

void MemoryArena::upload(BufferId id, std::uint64_t offset, const void* data, std::uint64_t bytes) {
    if (bytes == 0) return;
    const Entry& e = entries_.at(std::size_t(id.index));
    if (offset + bytes > e.bytes) throw Error("internal: upload past the end of '" + e.name + "'");
    if (std::byte* m = mapped(id); m && !forceStaging_) {
        std::memcpy(m + offset, data, bytes);
        return;
    }
    // Through a staging buffer, in pieces of at most 16 MiB, so a large tensor needs no large host copy.
    constexpr std::uint64_t kPiece = 16u << 20;
    const std::uint64_t stagingBytes = std::min(kPiece, (bytes + 3) / 4 * 4);
    Buffer staging = device_.createBuffer(stagingBytes);
    for (std::uint64_t done = 0; done < bytes;) {
        const std::uint64_t n = std::min(stagingBytes, bytes - done);
        std::memcpy(staging.data(), static_cast<const std::byte*>(data) + done, n);
        device_.runOnce([&](const vk::raii::CommandBuffer& cb) {
            cb.copyBuffer(*staging.handle(), *e.buffer, vk::BufferCopy(0, offset + done, n));
            const vk::MemoryBarrier barrier(vk::AccessFlagBits::eTransferWrite, vk::AccessFlagBits::eShaderRead | vk::AccessFlagBits::eShaderWrite);
            cb.pipelineBarrier(vk::PipelineStageFlagBits::eTransfer, vk::PipelineStageFlagBits::eComputeShader, {}, barrier, nullptr, nullptr);
        });
        done += n;
    }
}

void MemoryArena::fill(BufferId id, std::uint32_t value) {
    const Entry& e = entries_.at(std::size_t(id.index));
    device_.runOnce([&](const vk::raii::CommandBuffer& cb) {
        cb.fillBuffer(*e.buffer, 0, VK_WHOLE_SIZE, value);
        const vk::MemoryBarrier barrier(vk::AccessFlagBits::eTransferWrite, vk::AccessFlagBits::eShaderRead | vk::AccessFlagBits::eShaderWrite);
        cb.pipelineBarrier(vk::PipelineStageFlagBits::eTransfer, vk::PipelineStageFlagBits::eComputeShader, {}, barrier, nullptr, nullptr);
    });
}

}  // namespace whittle::gpu
