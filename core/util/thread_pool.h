#pragma once
// A fixed pool of worker threads for data-parallel loops. parallelFor splits [0, n) into contiguous
// ranges; callers make each index's result independent of the split, so output is identical whatever the
// thread count. No allocation per call (the decode loop must not allocate).
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>
#include <vector>

namespace whittle {

// The thread count a pool made with 0 gets: the hardware's, unless the application sets a cap (the GUI leaves
// one core to its event loop: cores − 1). Process-wide; pools already made keep theirs.
int defaultThreadCount();
void setDefaultThreadCount(int threads);  // ≤ 0: back to the hardware's

// The i-th of n work items to run when item k's work falls off with k (the columns of a triangle): first, last,
// second, second-to-last, … parallelFor hands each thread a contiguous range of indices, so visiting the items
// in this order gives every thread about the same work.
inline std::size_t alternateEnds(std::size_t i, std::size_t n) { return i % 2 == 0 ? i / 2 : n - 1 - i / 2; }

class ThreadPool {
public:
    explicit ThreadPool(int threads = 0);  // 0: defaultThreadCount()
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return int(workers_.size()) + 1; }  // the calling thread works too

    template <class F>
    void parallelFor(std::size_t n, F&& f) {
        if (n == 0) return;
        auto thunk = [](void* ctx, std::size_t begin, std::size_t end) {
            for (std::size_t i = begin; i < end; ++i) (*static_cast<F*>(ctx))(i);
        };
        run(n, thunk, &f);
    }

private:
    using Thunk = void (*)(void*, std::size_t, std::size_t);
    void run(std::size_t n, Thunk thunk, void* ctx);
    void worker(int index);

    std::vector<std::thread> workers_;
    std::mutex mutex_;
    std::condition_variable start_, done_;
    Thunk thunk_ = nullptr;
    void* ctx_ = nullptr;
    std::size_t n_ = 0;
    std::size_t generation_ = 0;
    int pending_ = 0;
    bool stop_ = false;
};

}  // namespace whittle
