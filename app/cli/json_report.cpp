#include "app/cli/json_report.h"

#include <sys/resource.h>

#include <iostream>

#include <nlohmann/json.hpp>

namespace whittle::cli {

void printJsonReport(Json j) {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    j["peak_rss_bytes"] = std::uint64_t(ru.ru_maxrss) * 1024;  // ru_maxrss is in KiB on Linux
    std::cout << j.dump(2) << "\n";
}

}  // namespace whittle::cli
