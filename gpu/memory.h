#pragma once
// Device memory the way the engine uses it: a few large VkDeviceMemory blocks per kind of data, sub-allocated
// by us (Debian has no VMA package). Buffers are declared first (add), then allocate() checks the total against
// the device's memory and only then allocates, so a model that does not fit is refused with the sizes before
// anything is taken. Every allocated byte is counted by kind (stats()).
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <vulkan/vulkan_raii.hpp>

namespace whittle::gpu {

class ComputeDevice;

enum class MemoryKind {
    Weights,  // the model's tensors (device-local)
    KvCache,  // keys and values (device-local)
    Scratch,  // activations between kernels (device-local)
    Host,     // host-visible: per-token inputs written by the CPU, logits and the sampled id read back
};
inline constexpr int kMemoryKinds = 4;
const char* memoryKindName(MemoryKind k);

struct BufferId {
    int index = -1;
    bool valid() const { return index >= 0; }
};

struct MemoryStats {
    std::array<std::uint64_t, kMemoryKinds> allocated{};  // VkDeviceMemory bytes, by kind
    std::array<std::uint64_t, kMemoryKinds> used{};       // bytes of the buffers placed in them, by kind
    std::uint64_t totalAllocated() const;
};

class MemoryArena {
public:
    explicit MemoryArena(ComputeDevice& device);
    ~MemoryArena();
    MemoryArena(const MemoryArena&) = delete;
    MemoryArena& operator=(const MemoryArena&) = delete;

    // Declares a storage buffer of `bytes` (rounded up to 4; at least 4). `name` is for messages.
    BufferId add(MemoryKind kind, std::uint64_t bytes, std::string name);
    // Creates every declared buffer and the memory behind it. Throws UsageError naming the needed and available
    // sizes when they exceed the device's memory (what `description` — e.g. the model — needs), before allocating.
    // limit (when non-zero) is what a heap is taken to hold instead of its reported size or budget.
    void allocate(const std::string& description, std::uint64_t alreadyUsedElsewhere = 0, std::uint64_t limit = 0);

    vk::Buffer buffer(BufferId id) const;
    std::uint64_t size(BufferId id) const;
    // The host mapping, or null when the buffer's memory is not host-visible.
    std::byte* mapped(BufferId id) const;
    // Copies bytes into a buffer at `offset`: straight into the mapping when there is one, else through a
    // host-visible staging buffer and a transfer on the queue. forceStaging takes the second path everywhere.
    void upload(BufferId id, std::uint64_t offset, const void* data, std::uint64_t bytes);
    void setForceStaging(bool on) { forceStaging_ = on; }
    void fill(BufferId id, std::uint32_t value);  // vkCmdFillBuffer over the whole buffer

    const MemoryStats& stats() const { return stats_; }
    // What allocate() will take, by kind (after add()s; before allocate() too).
    std::uint64_t plannedBytes() const;

private:
    struct Entry {
        MemoryKind kind;
        std::uint64_t bytes;
        std::string name;
        vk::raii::Buffer buffer{nullptr};
        int block = -1;
        std::uint64_t offset = 0;
    };
    struct Block {
        vk::raii::DeviceMemory memory{nullptr};
        std::byte* mapped = nullptr;
        std::uint64_t size = 0;
    };
    std::uint32_t memoryTypeFor(MemoryKind kind, std::uint32_t typeBits) const;

    ComputeDevice& device_;
    std::vector<Entry> entries_;
    std::vector<Block> blocks_;
    MemoryStats stats_;
    bool allocated_ = false;
    bool forceStaging_ = false;
};

}  // namespace whittle::gpu
