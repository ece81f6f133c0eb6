#include "core/progress.h"

namespace whittle {

StageMeter::StageMeter(Progress& sink, std::string stage, std::uint64_t bytesTotal)
    : sink_(sink), stage_(std::move(stage)), total_(bytesTotal),
      start_(std::chrono::steady_clock::now()), lastEmit_(start_) {
    publish(true);
}

void StageMeter::advance(std::uint64_t bytes) {
    done_ += bytes;
    publish(false);
}

void StageMeter::finish() {
    done_ = total_;
    publish(true);
}

void StageMeter::publish(bool force) {
    const auto now = std::chrono::steady_clock::now();
    const double fraction = total_ ? double(done_) / double(total_) : 1.0;
    // Report at most every 50 ms, but never skip a whole percent (short jobs still show movement).
    if (!force && now - lastEmit_ < std::chrono::milliseconds(50) && fraction - lastFraction_ < 0.01) return;
    lastEmit_ = now;
    lastFraction_ = fraction;
    ProgressReport r;
    r.stage = stage_;
    r.bytesDone = done_;
    r.bytesTotal = total_;
    r.fraction = fraction;
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    if (done_ > 0 && done_ < total_ && elapsed > 0.2)
        r.etaSeconds = elapsed * double(total_ - done_) / double(done_);
    else if (done_ >= total_)
        r.etaSeconds = 0;
    sink_.report(r);
}

}  // namespace whittle
