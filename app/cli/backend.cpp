#include "app/cli/backend.h"

#include "core/error.h"
#include "core/reference/reference_session.h"

namespace whittle::cli {

Backend::Backend(const std::filesystem::path& model, const Args& a, bool checkFinite) : name_(a.value("backend").value_or("cpu")) {
    if (name_ != "cpu") throw UsageError("--backend " + name_ + ": only the cpu backend exists so far");
    checkpoint_ = std::make_unique<Checkpoint>(Checkpoint::open(model));
    ReferenceOptions ro;
    ro.threads = int(a.uintValue("threads", 0));
    ro.checkFinite = checkFinite;
    reference_ = std::make_unique<ReferenceModel>(*checkpoint_, ro);
}

Backend::~Backend() = default;

int Backend::threads() const { return reference_->pool().size(); }

std::unique_ptr<Session> Backend::newSession(int context) const { return std::make_unique<ReferenceSession>(*reference_, context); }

}  // namespace whittle::cli
