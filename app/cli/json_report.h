#pragma once
// --json output of the commands that write a checkpoint: their report plus the process's peak RSS.
#include "core/io/json_file.h"

namespace whittle::cli {

void printJsonReport(Json report);

}  // namespace whittle::cli
