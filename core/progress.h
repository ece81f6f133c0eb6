#pragma once
// Long operations report through Progress and stop through CancelToken; they never print.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.h"

namespace whittle {

class CancelToken {
public:
    void cancel() noexcept { flag_.store(true, std::memory_order_relaxed); }
    bool cancelled() const noexcept { return flag_.load(std::memory_order_relaxed); }
    void throwIfCancelled() const {
        if (cancelled()) throw CancelledError();
    }

private:
    std::atomic<bool> flag_{false};
};

struct ProgressReport {
    std::string stage;
    double fraction = 0;          // of the current stage, 0..1
    std::uint64_t bytesDone = 0;
    std::uint64_t bytesTotal = 0;
    double etaSeconds = -1;       // < 0: unknown
};

class Progress {
public:
    virtual ~Progress() = default;
    virtual void report(const ProgressReport& r) = 0;
};

class NullProgress final : public Progress {
public:
    void report(const ProgressReport&) override {}
};

// Passes reports on with the stage prefixed ("2/5 flap: " + stage): a step of a longer run.
class PrefixedProgress final : public Progress {
public:
    PrefixedProgress(Progress& inner, std::string prefix) : inner_(inner), prefix_(std::move(prefix)) {}
    void report(const ProgressReport& r) override {
        ProgressReport p = r;
        p.stage = prefix_ + r.stage;
        inner_.report(p);
    }

private:
    Progress& inner_;
    std::string prefix_;
};

// Turns byte counts into fraction and ETA for one stage, and rate-limits reports to ~20 per second.
class StageMeter {
public:
    StageMeter(Progress& sink, std::string stage, std::uint64_t bytesTotal);
    void advance(std::uint64_t bytes);
    void finish();

private:
    void publish(bool force);
    Progress& sink_;
    std::string stage_;
    std::uint64_t total_;
    std::uint64_t done_ = 0;
    std::chrono::steady_clock::time_point start_;
    std::chrono::steady_clock::time_point lastEmit_;
    double lastFraction_ = 0;
};

}  // namespace whittle
