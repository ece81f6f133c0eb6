#include "core/error.h"

#include <cstring>

namespace whittle {

namespace {
std::string compose(const std::string& file, const std::string& tensor, const std::string& reason) {
    std::string s;
    if (!file.empty()) s += file + ": ";
    if (!tensor.empty()) s += "tensor '" + tensor + "': ";
    s += reason;
    return s;
}
}  // namespace

Error::Error(std::string file, std::string tensor, std::string reason)
    : std::runtime_error(compose(file, tensor, reason)),
      file_(std::move(file)),
      tensor_(std::move(tensor)),
      reason_(std::move(reason)) {}

std::string errnoText(int err) {
    char buf[256];
    // GNU strerror_r returns a pointer that may or may not be buf.
    return std::string(strerror_r(err, buf, sizeof buf));
}

}  // namespace whittle
