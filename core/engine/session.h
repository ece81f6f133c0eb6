#pragma once
// The engine seam: one sequence being decoded on some backend. generate, eval, the benchmark and the GUI
// talk to this interface only; the CPU reference (core/reference) is one implementation and the Vulkan
// engine (gpu/) the second, compared op by op through core/reference/ops.h.
//
// Positions are implicit: forward() appends at position() onwards, and reset() starts a new sequence.
// There is no rewind to an earlier position, because a sliding layer's ring has overwritten what it held.
#include <span>
#include <stdexcept>
#include <vector>

#include "core/engine/sampler.h"

namespace whittle {

class Session {
public:
    virtual ~Session() = default;

    virtual int vocabSize() const = 0;  // logits per row
    virtual int capacity() const = 0;   // positions the KV cache holds: the context length
    virtual int position() const = 0;   // tokens appended since the last reset

    virtual void reset() = 0;

    // Appends tokens at positions position() … position() + n − 1 and returns the logits after the last
    // one (valid until the next call). With allLogits, also writes every appended token's logits there
    // ([n, vocabSize()] row-major). Throws UsageError for an empty list, an id outside the vocabulary
    // or a sequence longer than capacity().
    virtual std::span<const float> forward(std::span<const int> tokens, float* allLogits = nullptr) = 0;

    // Token selection by the backend, optional. A backend that can pick the next token itself (the Vulkan
    // engine does it on the device, so only the id comes back) accepts the settings here and returns true;
    // then forwardAndPick() appends tokens like forward() and returns the id picked from the last token's
    // logits, as Sampler would with `history` (the whole sequence so far, for the repetition penalty) and
    // `uniform`, the caller's draw for that pick (samplingDraw; ignored when greedy).
    virtual bool setSampler(const SamplingParams& params, const std::vector<bool>& suppressed) {
        (void)params;
        (void)suppressed;
        return false;
    }
    virtual int forwardAndPick(std::span<const int> tokens, std::span<const int> history, double uniform) {
        (void)tokens;
        (void)history;
        (void)uniform;
        throw std::logic_error("this backend does not pick tokens; sample the logits of forward()");
    }
};

}  // namespace whittle
