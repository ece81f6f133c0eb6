#include "core/util/thread_pool.h"

#include <algorithm>
#include <atomic>

namespace whittle {

namespace {
std::atomic<int> g_defaultThreads{0};
}

int defaultThreadCount() {
    const int set = g_defaultThreads.load(std::memory_order_relaxed);
    return set > 0 ? set : int(std::max(1u, std::thread::hardware_concurrency()));
}

void setDefaultThreadCount(int threads) { g_defaultThreads.store(std::max(0, threads), std::memory_order_relaxed); }

ThreadPool::ThreadPool(int threads) {
    if (threads <= 0) threads = defaultThreadCount();
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    start_.notify_all();
    for (auto& t : workers_) t.join();
}

namespace {
std::pair<std::size_t, std::size_t> slice(std::size_t n, int parts, int index) {
    const std::size_t base = n / std::size_t(parts), extra = n % std::size_t(parts);
    const std::size_t begin = std::size_t(index) * base + std::min<std::size_t>(std::size_t(index), extra);
    return {begin, begin + base + (std::size_t(index) < extra ? 1 : 0)};
}
}  // namespace

void ThreadPool::run(std::size_t n, Thunk thunk, void* ctx) {
    if (workers_.empty() || n == 1) {
        thunk(ctx, 0, n);
        return;
    }
    {
        std::lock_guard lock(mutex_);
        thunk_ = thunk;
        ctx_ = ctx;
        n_ = n;
        pending_ = int(workers_.size());
        ++generation_;
    }
    start_.notify_all();
    const auto [b, e] = slice(n, size(), 0);
    thunk(ctx, b, e);
    std::unique_lock lock(mutex_);
    done_.wait(lock, [this] { return pending_ == 0; });
}

void ThreadPool::worker(int index) {
    std::size_t seen = 0;
    for (;;) {
        std::unique_lock lock(mutex_);
        start_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
        const Thunk thunk = thunk_;
        void* ctx = ctx_;
        const auto [b, e] = slice(n_, size(), index);
        lock.unlock();
        if (b < e) thunk(ctx, b, e);
        lock.lock();
        if (--pending_ == 0) done_.notify_one();
    }
}

}  // namespace whittle
