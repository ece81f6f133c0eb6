#pragma once
// Prints Progress reports on stderr: one rewritten line on a terminal, a line per 10 % otherwise.
#include <string>

#include "core/progress.h"

namespace whittle::cli {

class ProgressPrinter final : public Progress {
public:
    ProgressPrinter();
    ~ProgressPrinter() override;
    void report(const ProgressReport& r) override;

private:
    bool tty_;
    std::string lastStage_;
    int lastDecile_ = -1;
    bool open_ = false;
};

}  // namespace whittle::cli
