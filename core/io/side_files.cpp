#include "core/io/side_files.h"

namespace fs = std::filesystem;

namespace whittle {

bool isTensorOrReportFile(const std::string& name) {
    return fs::path(name).extension() == ".safetensors" || name == "model.safetensors.index.json" || name == "whittle.json";
}

void copySideFiles(const fs::path& src, const fs::path& dst, const std::function<bool(const std::string&, const fs::path&)>& rewrite) {
    for (const auto& e : fs::directory_iterator(src)) {
        const std::string name = e.path().filename().string();
        if (!e.is_regular_file() || isTensorOrReportFile(name)) continue;
        if (rewrite && rewrite(name, e.path())) continue;
        fs::copy_file(e.path(), dst / name);
    }
}

}  // namespace whittle
