#pragma once
// What Whittle's Vulkan engine allocates to run a checkpoint, computed from the config and the stored tensors
// alone — never from the engine, whose own count (VulkanSession::stats(), sized from Vulkan's memory
// requirements) the tests compare it with. Device memory by part:
//   - weights: every tensor the decoder reads, at its stored bytes (dense rows, GPTQ's four or six tensors,
//     NVFP4 codes and block scales, Q8_0/Q4_0 token-table rows), norms and biases as f32; the output head is
//     the embedding when tied; the main embedding itself is gathered on the host (one row a token);
//   - the PLE table, when placed on the device (by default it stays in host memory, gathered row by row);
//   - the KV cache: only the layers that own one (KV-shared layers read another's); full layers hold the
//     context, sliding layers a ring of window + prefill chunk − 1 positions; each layer's own head dim;
//   - scratch between kernels, and the host-visible buffers (per-token inputs, logits read back).
// Host memory: the tables the engine gathers rows from (the main embedding, and the PLE table when on host).
#include <cstdint>

#include "core/model/checkpoint.h"
#include "core/model/gemma4_config.h"

namespace whittle {

enum class KvCacheType { F32, F16 };  // Whittle's engine keeps f32; f16 is llama.cpp's default
const char* kvCacheTypeName(KvCacheType t);  // "f32", "f16"

// How a runtime sizes its sliding-window rings: Whittle's engine holds window + chunk − 1 positions (a chunk's
// own keys are written before its queries attend); llama.cpp holds window + ubatch, its context padded to 256.
enum class KvCells { Whittle, LlamaCpp };

struct KvCacheSize {
    int slidingLayers = 0, fullLayers = 0;  // layers that own a cache, by kind
    std::int64_t slidingCells = 0, fullCells = 0;
    std::uint64_t slidingBytes = 0, fullBytes = 0;  // keys and values
    std::uint64_t total() const { return slidingBytes + fullBytes; }
};

// The KV cache of a context of `context` positions with prompts fed `prefillChunk` tokens at a time.
KvCacheSize kvCacheSize(const Gemma4Config& config, int context, int prefillChunk, KvCacheType type = KvCacheType::F32,
                        KvCells cells = KvCells::Whittle);

struct RuntimeOptions {
    int context = 4096;
    int prefillChunk = 32;  // the engine's default (gpu::EngineOptions)
    bool pleInVram = false;
    // Bytes one binding may hold (a device's maxStorageBufferRange); the logits come back in chunks of at most
    // min(16 MiB, this). 0: no limit below 16 MiB.
    std::uint64_t maxBindingBytes = 0;
};

struct EngineMemory {
    std::uint64_t weights = 0;   // device: the read weights, PLE table excluded
    std::uint64_t pleTable = 0;  // device: the PLE table when pleInVram, else 0
    KvCacheSize kv;
    std::uint64_t scratch = 0;      // device: activations between kernels, sampling
    std::uint64_t hostVisible = 0;  // device memory the host maps: token inputs, logits, sampling state
    std::uint64_t hostTables = 0;   // host RAM the engine gathers from: the main embedding, the PLE table on host
    int buffers = 0;                // device buffers the engine declares (each may be padded to the device's alignment)
    std::uint64_t deviceTotal() const { return weights + pleTable + kv.total() + scratch + hostVisible; }
};

// Throws UsageError naming the field for a context or chunk below 1.
EngineMemory estimateEngineMemory(const Checkpoint& checkpoint, const RuntimeOptions& options);

}  // namespace whittle
