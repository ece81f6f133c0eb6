#include "app/cli/progress_printer.h"

#include <unistd.h>

#include <cstdio>

namespace whittle::cli {

ProgressPrinter::ProgressPrinter() : tty_(::isatty(STDERR_FILENO) != 0) {}

ProgressPrinter::~ProgressPrinter() {
    if (open_) std::fputc('\n', stderr);
}

void ProgressPrinter::report(const ProgressReport& r) {
    char eta[32] = "";
    if (r.etaSeconds > 0) std::snprintf(eta, sizeof eta, ", ETA %.0f s", r.etaSeconds);
    if (tty_) {
        std::fprintf(stderr, "\r%s: %5.1f%%%s   ", r.stage.c_str(), 100.0 * r.fraction, eta);
        open_ = true;
        if (r.fraction >= 1.0) {
            std::fputc('\n', stderr);
            open_ = false;
        }
        return;
    }
    const int decile = int(r.fraction * 10);
    if (r.stage != lastStage_ || decile != lastDecile_) {
        std::fprintf(stderr, "%s: %3d%%%s\n", r.stage.c_str(), decile * 10, eta);
        lastStage_ = r.stage;
        lastDecile_ = decile;
    }
}

}  // namespace whittle::cli
