#pragma once
// The model a command runs, on the backend it names (--backend, --threads): generate, eval and bench
// open it here and then only talk to Session, so the Vulkan engine plugs in at this one place.
#include <filesystem>
#include <memory>
#include <string>

#include "app/cli/args.h"
#include "core/engine/session.h"
#include "core/model/checkpoint.h"
#include "core/reference/reference_model.h"

namespace whittle::cli {

class Backend {
public:
    // Reads --backend (cpu) and --threads; checkFinite scans the weights for NaN/Inf at load.
    Backend(const std::filesystem::path& model, const Args& args, bool checkFinite = true);
    ~Backend();

    const Checkpoint& checkpoint() const { return *checkpoint_; }
    const std::string& name() const { return name_; }
    int threads() const;
    std::unique_ptr<Session> newSession(int context) const;

    static constexpr const char* kUsage = "[--backend cpu] [--threads N]";

private:
    std::string name_;
    std::unique_ptr<Checkpoint> checkpoint_;
    std::unique_ptr<ReferenceModel> reference_;
};

}  // namespace whittle::cli
