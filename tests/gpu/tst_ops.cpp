// The Vulkan op harness, in the style of llama.cpp's test-backend-ops: every kernel of gpu/kernels.h, in every
// variant the device selects, against the public reference op of core/reference/ops.h on seeded random inputs,
// with a readable case id. Each case checks that every output is finite, then the normalised MSE
//   NMSE = Σ(gpu − ref)² / Σ ref²
// under the op's bound, and that guard words around the output are untouched.
//
// Bounds. Every kernel decodes weights exactly as the reference does and works in f32; only summation order
// and the device's exp/tanh/inversesqrt differ, so the errors are a few f32 roundings per output:
//   element-wise and norm ops: 1e-10 (measured ≈ 1e-14 … 1e-12)
//   mat-vec and the prefill's matrix–matrix kernels, every format:
//                              1e-9  (the 5e-4 is for kernels that quantize activations; these do not)
//   attention (decode and prefill chunks, one online-softmax kernel): 1e-9
// A deliberately broken variant (a GPTQ mat-vec that drops the tail group) must exceed its bound.
//
// The same suite runs under CTest with LP_NATIVE_VECTOR_WIDTH=128 (lavapipe's subgroup size 4), with every
// optional feature switched off (WHITTLE_VK_DISABLE), and with a forced 1 MiB binding range
// (WHITTLE_VK_MAX_BINDING), which splits the 70,000-row mat-vec and the gather tables into parts.
#include <cmath>
#include <cstring>
#include <deque>
#include <functional>
#include <limits>
#include <random>
#include <set>

#include "core/error.h"
#include "core/io/dtype.h"
#include "core/io/gptq_layout.h"
#include "core/model/gemma4_config.h"
#include "core/quant/ggml_blocks.h"
#include "core/quant/int_quant.h"
#include "core/quant/nvfp4.h"
#include "core/reference/ops.h"
#include "core/engine/sampler.h"
#include "gpu/device_sampling.h"
#include "gpu/kernels.h"
#include "gpu_test_support.h"
#include "test_support.h"

using namespace whittle;
using namespace whittle::gpu;
using namespace whittle::test;
using namespace whittle::gpu::shader;

namespace {

constexpr std::uint32_t kGuard = 16;  // guard words each side of an output
constexpr float kSentinel = 1234.5f;

double nmse(const std::vector<float>& got, const std::vector<float>& want) {
    double e = 0, r = 0;
    for (std::size_t i = 0; i < want.size(); ++i) {
        const double d = double(got[i]) - double(want[i]);
        e += d * d;
        r += double(want[i]) * double(want[i]);
    }
    return e / std::max(r, 1e-30);
}

std::vector<float> randomVector(std::size_t n, std::mt19937& rng, float scale = 1.0f) {
    std::normal_distribution<float> d(0.0f, scale);
    std::vector<float> v(n);
    for (auto& x : v) x = d(rng);
    return v;
}

// One op on the device: inputs and outputs in host-visible buffers (outputs with guard words), weights through
// declareWeight/uploadWeight as the engine holds them.
class OpRun {
public:
    OpRun(ComputeDevice& dev, Kernels& k, std::uint64_t maxBinding) : dev_(dev), kernels_(k), arena_(dev), rec_(dev), maxBinding_(maxBinding) {
        unused_ = arena_.add(MemoryKind::Scratch, 16, "unused");
    }
    BufferId input(const void* data, std::size_t bytes) {
        const BufferId id = arena_.add(MemoryKind::Host, bytes, "input");
        pending_.push_back({id, data, bytes});
        return id;
    }
    BufferId input(const std::vector<float>& v) { return input(v.data(), v.size() * 4); }
    BufferId output(std::size_t floats) {
        const BufferId id = arena_.add(MemoryKind::Host, (floats + 2 * kGuard) * 4, "output");
        outputs_.push_back({id, floats});
        return id;
    }
    const DeviceWeight& weight(const WeightView& v) {
        weights_.push_back({declareWeight(arena_, v, maxBinding_), v});
        return weights_.back().first;
    }
    void run(const std::function<void(const KernelContext&)>& fill) {
        arena_.allocate("the op harness");
        for (const auto& p : pending_) arena_.upload(p.id, 0, p.data, p.bytes);
        for (const auto& [d, v] : weights_) uploadWeight(arena_, d, v);
        for (const auto& [id, n] : outputs_) {
            float* m = reinterpret_cast<float*>(arena_.mapped(id));
            std::fill(m, m + n + 2 * kGuard, kSentinel);
        }
        rec_.begin();
        fill(KernelContext{kernels_, rec_, arena_, arena_.buffer(unused_)});
        rec_.end();
        again();
    }
    // Submits the recorded work once more (after the test changed its inputs in place).
    void again() {
        vk::raii::Fence fence(dev_.device(), vk::FenceCreateInfo());
        dev_.submitAndWait(rec_.handle(), fence);
    }
    vk::Buffer buf(BufferId id) const { return arena_.buffer(id); }
    float* mapped(BufferId id) const { return reinterpret_cast<float*>(arena_.mapped(id)); }
    // The output's values (after the leading guard) and whether both guards are intact.
    std::vector<float> read(BufferId id, std::size_t n, bool* guardsOk) const {
        const float* m = mapped(id);
        bool ok = true;
        for (std::uint32_t i = 0; i < kGuard; ++i) ok = ok && m[i] == kSentinel && m[kGuard + n + i] == kSentinel;
        if (guardsOk) *guardsOk = ok;
        return std::vector<float>(m + kGuard, m + kGuard + n);
    }
    int dispatches() const { return rec_.dispatches(); }

private:
    struct Pending {
        BufferId id;
        const void* data;
        std::size_t bytes;
    };
    ComputeDevice& dev_;
    Kernels& kernels_;
    MemoryArena arena_;
    Recorder rec_;
    std::uint64_t maxBinding_;
    BufferId unused_;
    std::vector<Pending> pending_;
    std::vector<std::pair<BufferId, std::size_t>> outputs_;
    std::deque<std::pair<DeviceWeight, WeightView>> weights_;
};

// A weight of one format with its bytes, built from random values.
struct TestWeight {
    WeightView view;
    std::vector<std::uint8_t> bytes, scales;
    std::vector<std::int32_t> qweight, qzeros, gIdx, qresidual;
    std::vector<std::uint16_t> f16scales, rscales;
};

void makeWeight(TestWeight& t, const std::string& fmt, std::int64_t rows, std::int64_t cols, std::mt19937& rng) {
    const std::vector<float> w = randomVector(std::size_t(rows * cols), rng, 0.05f);
    WeightView& v = t.view;
    v.rows = rows;
    v.cols = cols;
    v.name = "test." + fmt;
    if (fmt == "f32" || fmt == "f16" || fmt == "bf16") {
        v.dtype = fmt == "f32" ? DType::F32 : fmt == "f16" ? DType::F16 : DType::BF16;
        t.bytes.resize(w.size() * dtypeSize(v.dtype));
        for (std::size_t i = 0; i < w.size(); ++i) storeFloat(v.dtype, reinterpret_cast<std::byte*>(t.bytes.data()), i, w[i]);
        v.data = reinterpret_cast<const std::byte*>(t.bytes.data());
    } else if (fmt == "q8_0" || fmt == "q4_0") {
        v.format = fmt == "q8_0" ? WeightFormat::GgufQ8_0 : WeightFormat::GgufQ4_0;
        const std::size_t rb = weightRowBytes(v.format, cols);
        t.bytes.resize(rb * std::size_t(rows));
        for (std::int64_t r = 0; r < rows; ++r) {
            const std::span<const float> row(&w[std::size_t(r * cols)], std::size_t(cols));
            if (fmt == "q8_0") quantizeRowQ8_0(row, t.bytes.data() + std::size_t(r) * rb, v.name);
            else quantizeRowQ4_0(row, t.bytes.data() + std::size_t(r) * rb, v.name);
        }
        v.data = reinterpret_cast<const std::byte*>(t.bytes.data());
    } else if (fmt == "nvfp4") {
        const Nvfp4Tensor q = quantizeNvfp4(w, rows, cols, v.name);
        t.bytes = packNvfp4(q);
        t.scales = q.blockScales;
        v.format = WeightFormat::Nvfp4;
        v.data = reinterpret_cast<const std::byte*>(t.bytes.data());
        v.nvfp4BlockScales = reinterpret_cast<const std::byte*>(t.scales.data());
        v.nvfp4Scale = q.globalScale;
    } else {  // gptq<bits>[r][a]: r = binary residual, a = asymmetric, s = shuffled g_idx (act-order without static groups)
        IntOptions o;
        o.bits = fmt[4] - '0';
        o.groupSize = 32;
        o.residual = fmt.find('r', 5) != std::string::npos;
        o.symmetric = fmt.find('a', 5) == std::string::npos;
        GptqTensors g = packGptqV1(quantizeIntRtn(w, rows, cols, o, v.name), v.name);
        if (fmt.find('s', 5) != std::string::npos) std::shuffle(g.gIdx.begin(), g.gIdx.end(), rng);
        t.qweight = g.qweight;
        t.qzeros = g.qzeros;
        t.f16scales = g.scales;
        t.gIdx = g.gIdx;
        t.qresidual = g.qresidual;
        t.rscales = g.residualScales;
        v.format = WeightFormat::GptqInt;
        v.data = reinterpret_cast<const std::byte*>(t.qweight.data());
        v.gptq.qzeros = reinterpret_cast<const std::byte*>(t.qzeros.data());
        v.gptq.scales = reinterpret_cast<const std::byte*>(t.f16scales.data());
        v.gptq.gIdx = reinterpret_cast<const std::byte*>(t.gIdx.data());
        v.gptq.groups = g.groups();
        v.gptq.bits = o.bits;
        if (o.residual) {
            v.gptq.qresidual = reinterpret_cast<const std::byte*>(t.qresidual.data());
            v.gptq.residualScales = reinterpret_cast<const std::byte*>(t.rscales.data());
        }
    }
}

}  // namespace

class TestOps : public QObject {
    Q_OBJECT
    ValidatedDevice vk_;
    VulkanInstance* instance_ = nullptr;
    ComputeDevice* dev_ = nullptr;
    std::unique_ptr<Kernels> kernels_;
    std::uint64_t maxBinding_ = 0;

    void report(const char* op, double e, double bound, bool guardsOk, const std::vector<float>& got) {
        for (float v : got)
            if (!std::isfinite(v)) QFAIL(qPrintable(QString("%1: non-finite output").arg(op)));
        QVERIFY2(guardsOk, "a guard word around the output was overwritten");
        qInfo("%s: NMSE %.3g (bound %.0e)", op, e, bound);
        QVERIFY2(e <= bound, qPrintable(QString("%1: NMSE %2 above %3").arg(op).arg(e).arg(bound)));
    }

private slots:
    void initTestCase() {
        const std::string why = vk_.open();
        WHITTLE_REQUIRE_OR_SKIP(why.empty(), why.c_str());
        instance_ = vk_.instance.get();
        dev_ = vk_.device.get();
        kernels_ = std::make_unique<Kernels>(*dev_);
        maxBinding_ = dev_->caps().maxStorageBufferRange;
        if (const QByteArray env = qgetenv("WHITTLE_VK_MAX_BINDING"); !env.isEmpty()) maxBinding_ = env.toULongLong();
        qInfo("device %s, subgroup size %u, subgroup arithmetic %s, binding range %llu", dev_->caps().name.c_str(), dev_->caps().subgroupSize,
              kernels_->subgroups() ? "on" : "off", static_cast<unsigned long long>(maxBinding_));
    }

    void matvec_data() {
        QTest::addColumn<QString>("format");
        QTest::addColumn<int>("rows");
        QTest::addColumn<int>("cols");
        for (const char* f : {"f32", "f16", "bf16"}) {
            QTest::addRow("%s 37x256", f) << f << 37 << 256;
            QTest::addRow("%s 33x75 odd", f) << f << 33 << 75;
        }
        QTest::addRow("bf16 70000x64 (grid and binding split)") << "bf16" << 70000 << 64;
        for (const char* f : {"q8_0", "q4_0"}) {
            QTest::addRow("%s 37x256", f) << f << 37 << 256;
            QTest::addRow("%s 5x96 (3 blocks)", f) << f << 5 << 96;
        }
        QTest::addRow("q8_0 70000x32") << "q8_0" << 70000 << 32;
        QTest::addRow("nvfp4 37x256") << "nvfp4" << 37 << 256;
        QTest::addRow("nvfp4 9x48") << "nvfp4" << 9 << 48;
        for (const char* f : {"gptq4", "gptq8", "gptq2", "gptq3", "gptq4a", "gptq3a", "gptq2r", "gptq4r", "gptq4s"})
            QTest::addRow("%s 96x160", f) << f << 96 << 160;
        QTest::addRow("gptq4 104x64 (partial workgroup)") << "gptq4" << 104 << 64;
    }
    void matvec() {
        QFETCH(QString, format);
        QFETCH(int, rows);
        QFETCH(int, cols);
        std::mt19937 rng(std::uint32_t(qHash(QString(QTest::currentDataTag()))));
        TestWeight w;
        makeWeight(w, format.toStdString(), rows, cols, rng);
        const std::vector<float> x = randomVector(std::size_t(cols) + 3, rng);  // read from offset 3
        std::vector<float> want(static_cast<std::size_t>(rows));
        ops::matvec(w.view, x.data() + 3, want.data());
        OpRun run(*dev_, *kernels_, maxBinding_);
        const DeviceWeight& dw = run.weight(w.view);
        const BufferId xb = run.input(x), yb = run.output(std::size_t(rows));
        run.run([&](const KernelContext& k) { recordMatvec(k, dw, run.buf(xb), 3, run.buf(yb), kGuard); });
        bool guards = false;
        const auto got = run.read(yb, std::size_t(rows), &guards);
        if (rows > 65535) QVERIFY(dw.format != WeightFormat::Dense || run.dispatches() >= 1);
        if (maxBinding_ < (1u << 20) + 1 && rows == 70000) QVERIFY2(dw.parts.size() > 1, "the 1 MiB binding range did not split the weight");
        report(QTest::currentDataTag(), nmse(got, want), 1e-9, guards, got);
    }

    // The harness can fail: a GPTQ mat-vec told that K is one group shorter (it then skips the tail group) is caught.
    void brokenVariantFails() {
        std::mt19937 rng(7);
        TestWeight w;
        makeWeight(w, "gptq4", 64, 160, rng);
        const std::vector<float> x = randomVector(160, rng);
        std::vector<float> want(64);
        ops::matvec(w.view, x.data(), want.data());
        OpRun run(*dev_, *kernels_, maxBinding_);
        DeviceWeight dw = run.weight(w.view);
        dw.cols -= 32;  // the dropped tail group
        const BufferId xb = run.input(x), yb = run.output(64);
        run.run([&](const KernelContext& k) { recordMatvec(k, dw, run.buf(xb), 0, run.buf(yb), kGuard); });
        const double e = nmse(run.read(yb, 64, nullptr), want);
        qInfo("broken variant: NMSE %.3g", e);
        QVERIFY2(e > 1e-3, "a mat-vec without its tail group passed the bound");
    }

    // The prefill's matrix–matrix kernels: `tokens` inputs at a stride, each output row against ops::matvec of its
    // token. Tile tails (tokens not a multiple of kMatmulTile), the row split past the grid and binding limits, and
    // the shapes that fall back to mat-vecs (odd cols, unaligned stride) are all cases.
    void matmul_data() {
        QTest::addColumn<QString>("format");
        QTest::addColumn<int>("rows");
        QTest::addColumn<int>("cols");
        QTest::addColumn<int>("tokens");
        QTest::addColumn<int>("xStride");  // 0: cols + 4
        for (const char* f : {"f32", "f16", "bf16", "q8_0", "q4_0", "nvfp4"}) {
            QTest::addRow("%s 37x256 x3", f) << f << 37 << 256 << 3 << 0;
            QTest::addRow("%s 70x96 x17 (tile tail)", f) << f << 70 << 96 << 17 << 0;
        }
        QTest::addRow("bf16 37x256 x8 unaligned stride (mat-vec fallback)") << "bf16" << 37 << 256 << 8 << 259;
        QTest::addRow("f32 33x75 x5 odd (mat-vec fallback)") << "f32" << 33 << 75 << 5 << 0;
        QTest::addRow("bf16 70000x64 x9 (grid and binding split)") << "bf16" << 70000 << 64 << 9 << 0;
        for (const char* f : {"gptq4", "gptq8", "gptq2", "gptq3", "gptq4a", "gptq2r", "gptq4r", "gptq4s"})
            QTest::addRow("%s 96x160 x11", f) << f << 96 << 160 << 11 << 0;
        QTest::addRow("gptq4 104x64 x4 unaligned stride") << "gptq4" << 104 << 64 << 4 << 67;
    }
    void matmul() {
        QFETCH(QString, format);
        QFETCH(int, rows);
        QFETCH(int, cols);
        QFETCH(int, tokens);
        QFETCH(int, xStride);
        if (xStride == 0) xStride = cols + 4;
        std::mt19937 rng(std::uint32_t(qHash(QString(QTest::currentDataTag()))));
        TestWeight w;
        makeWeight(w, format.toStdString(), rows, cols, rng);
        const std::uint32_t xOff = 4, yStride = std::uint32_t(rows) + 5;
        const std::vector<float> x = randomVector(std::size_t(xOff) + std::size_t(xStride) * std::size_t(tokens), rng);
        std::vector<float> want(std::size_t(rows) * std::size_t(tokens));
        for (int t = 0; t < tokens; ++t)
            ops::matvec(w.view, x.data() + xOff + std::size_t(t) * std::size_t(xStride), want.data() + std::size_t(t) * std::size_t(rows));
        OpRun run(*dev_, *kernels_, maxBinding_);
        const DeviceWeight& dw = run.weight(w.view);
        const std::size_t outN = std::size_t(yStride) * std::size_t(tokens);
        const BufferId xb = run.input(x), yb = run.output(outN);
        run.run([&](const KernelContext& k) {
            std::fill(run.mapped(yb) + kGuard, run.mapped(yb) + kGuard + outN, kSentinel);
            recordMatmul(k, dw, run.buf(xb), xOff, std::uint32_t(xStride), run.buf(yb), kGuard, yStride, std::uint32_t(tokens));
        });
        bool guards = false;
        const auto all = run.read(yb, outN, &guards);
        std::vector<float> got;
        for (int t = 0; t < tokens; ++t) {
            const auto row = all.begin() + std::ptrdiff_t(std::size_t(t) * yStride);
            got.insert(got.end(), row, row + rows);
            // The gap between a token's outputs and the next token's stays untouched.
            for (auto it = row + rows; it != row + std::ptrdiff_t(yStride); ++it)
                if (*it != kSentinel) QFAIL("matmul wrote between two tokens' outputs");
        }
        report(QTest::currentDataTag(), nmse(got, want), 1e-9, guards, got);
    }

    void rmsNorm_data() {
        QTest::addColumn<int>("n");
        QTest::addColumn<int>("mode");
        QTest::addColumn<bool>("weight");
        QTest::addColumn<bool>("bias");
        QTest::addRow("norm 256 weighted") << 256 << 0 << true << false;
        QTest::addRow("norm 1000 odd, no weight") << 1000 << 0 << false << false;
        QTest::addRow("residual add 256, scalar") << 256 << 1 << true << false;
        QTest::addRow("residual add 77") << 77 << 1 << true << false;
        QTest::addRow("residual add 256 with FLAP's down_proj bias") << 256 << 1 << true << true;
    }
    void rmsNorm() {
        QFETCH(int, n);
        QFETCH(int, mode);
        QFETCH(bool, weight);
        QFETCH(bool, bias);
        std::mt19937 rng(11 + std::uint32_t(n) + std::uint32_t(mode) + (bias ? 5u : 0u));
        const int rows = 3;
        const std::vector<float> in = randomVector(std::size_t(n * rows), rng, 3.0f), w = randomVector(std::size_t(n), rng);
        const std::vector<float> b = randomVector(std::size_t(n), rng, 2.0f);
        std::vector<float> base = randomVector(std::size_t(n * rows), rng);
        const float eps = 1e-6f, inScale = mode == 0 ? 0.37f : 1.0f, scalar = mode == 1 ? 0.8f : 1.0f;
        std::vector<float> want(std::size_t(n * rows));
        for (int r = 0; r < rows; ++r) {
            std::vector<float> row(in.begin() + r * n, in.begin() + (r + 1) * n);
            for (int i = 0; i < n; ++i) row[std::size_t(i)] = (row[std::size_t(i)] + (bias ? b[std::size_t(i)] : 0.0f)) * inScale;
            ops::rmsNorm(row, weight ? w.data() : nullptr, eps);
            for (int i = 0; i < n; ++i)
                want[std::size_t(r * n + i)] = mode == 0 ? row[std::size_t(i)] : (base[std::size_t(r * n + i)] + row[std::size_t(i)]) * scalar;
        }
        OpRun run(*dev_, *kernels_, maxBinding_);
        const BufferId ib = run.input(in), wb = run.input(w), bb = run.input(b), ob = run.output(want.size());
        run.run([&](const KernelContext& k) {
            if (mode == 1) std::memcpy(run.mapped(ob) + kGuard, base.data(), base.size() * 4);
            recordRmsNorm(k, run.buf(ib), weight ? run.buf(wb) : vk::Buffer{}, run.buf(ob),
                          NormParams{std::uint32_t(n), 0, kGuard, std::uint32_t(n), weight ? 1u : 0u, std::uint32_t(mode), eps, inScale, scalar,
                                     bias ? 1u : 0u},
                          std::uint32_t(rows), bias ? run.buf(bb) : vk::Buffer{});
        });
        bool guards = false;
        const auto got = run.read(ob, want.size(), &guards);
        report(QTest::currentDataTag(), nmse(got, want), 1e-10, guards, got);
    }

    void headNormRope_data() {
        QTest::addColumn<int>("headDim");
        QTest::addColumn<int>("heads");
        QTest::addColumn<bool>("full");
        QTest::addColumn<int>("position");
        QTest::addColumn<bool>("toCache");
        QTest::addColumn<int>("tokens");  // consecutive positions from `position`
        QTest::addRow("sliding hd256 2 heads pos 0") << 256 << 2 << false << 0 << false << 1;
        QTest::addRow("sliding hd256 4 heads pos 300 → ring slot") << 256 << 4 << false << 300 << true << 1;
        QTest::addRow("full hd512 proportional pos 77") << 512 << 2 << true << 77 << false << 1;
        QTest::addRow("full hd512 1 head pos 5000 → cache") << 512 << 1 << true << 5000 << true << 1;
        QTest::addRow("no rope (values) hd256") << 256 << 2 << false << -1 << true << 1;
        QTest::addRow("sliding hd256 2 heads 5 tokens from 61 → ring wraps") << 256 << 2 << false << 61 << true << 5;
        QTest::addRow("full hd512 2 heads 3 tokens in place") << 512 << 2 << true << 40 << false << 3;
    }
    void headNormRope() {
        QFETCH(int, headDim);
        QFETCH(int, heads);
        QFETCH(bool, full);
        QFETCH(int, position);
        QFETCH(bool, toCache);
        QFETCH(int, tokens);
        std::mt19937 rng(std::uint32_t(headDim * 7 + heads + position + tokens));
        const bool rope = position >= 0;
        const int pos = std::max(position, 0);
        RopeParams rp;
        rp.type = "default";
        rp.theta = full ? 1e6 : 1e4;
        if (full) {
            rp.type = "proportional";
            rp.partialRotaryFactor = 0.25;
        }
        const std::vector<float> invFreq = ropeInverseFrequencies(rp, headDim);
        const std::size_t hd = std::size_t(headDim);
        const std::uint32_t capacity = 64, rowWidth = std::uint32_t(hd * std::size_t(heads));
        const std::vector<float> in = randomVector(std::size_t(rowWidth) * std::size_t(tokens), rng, 2.0f), w = randomVector(hd, rng);
        const std::size_t outN = toCache ? std::size_t(capacity) * rowWidth : in.size();
        std::vector<float> want(outN, kSentinel);
        std::vector<bool> written(capacity, false);
        const std::uint32_t recordWords = tokenRecordWords(invFreq.size() * 2);
        std::vector<std::byte> state(tokenStateBytes(std::uint32_t(tokens), recordWords));
        writeTokenStateHeader(state.data(), std::uint32_t(tokens), recordWords);
        for (int t = 0; t < tokens; ++t) {
            const int tp = pos + t;
            const std::uint32_t slot = std::uint32_t(tp) % capacity;
            written[slot] = true;
            for (int h = 0; h < heads; ++h) {
                const std::size_t at = std::size_t(t) * rowWidth + std::size_t(h) * hd;
                std::vector<float> head(in.begin() + std::ptrdiff_t(at), in.begin() + std::ptrdiff_t(at + hd));
                ops::rmsNorm(head, rope ? w.data() : nullptr, 1e-6f);
                if (rope) ops::rope(head, invFreq, tp);
                std::copy(head.begin(), head.end(), want.begin() + std::ptrdiff_t(toCache ? slot * rowWidth + std::size_t(h) * hd : at));
            }
            fillRopeTable(invFreq, tp, writeTokenRecord(state.data(), std::uint32_t(t), recordWords, std::uint32_t(tp), 0));
        }
        OpRun run(*dev_, *kernels_, maxBinding_);
        const BufferId ib = run.input(in), wb = run.input(w), sb = run.input(state.data(), state.size()), ob = run.output(outN);
        run.run([&](const KernelContext& k) {
            if (!toCache) std::fill(run.mapped(ob) + kGuard, run.mapped(ob) + kGuard + outN, 0.0f);
            recordHeadNormRope(k, run.buf(ib), rope ? run.buf(wb) : vk::Buffer{}, run.buf(sb), run.buf(ob),
                               HeadParams{std::uint32_t(headDim), rope ? 1u : 0u, rope ? 0u : WHITTLE_NO_ROPE, toCache ? 1u : 0u, capacity, rowWidth,
                                          0, kGuard, 1e-6f, rowWidth},
                               std::uint32_t(heads), std::uint32_t(tokens));
        });
        bool guards = false;
        auto got = run.read(ob, outN, &guards);
        if (toCache) {
            // Only the tokens' slots may change; every other slot keeps the sentinel.
            std::vector<float> gotSlots, wantSlots;
            for (std::size_t i = 0; i < outN; ++i) {
                if (!written[i / rowWidth]) {
                    if (got[i] != kSentinel) QFAIL("head_norm_rope wrote outside the tokens' cache slots");
                    continue;
                }
                gotSlots.push_back(got[i]);
                wantSlots.push_back(want[i]);
            }
            got = gotSlots;
            want = wantSlots;
        }
        report(QTest::currentDataTag(), nmse(got, want), 1e-10, guards, got);
    }

    void attention_data() {
        QTest::addColumn<int>("headDim");
        QTest::addColumn<int>("kvHeads");
        QTest::addColumn<int>("group");
        QTest::addColumn<int>("capacity");
        QTest::addColumn<int>("window");
        QTest::addColumn<int>("position");  // of the last query token
        QTest::addColumn<int>("tokens");    // query tokens at consecutive positions ending at `position`
        QTest::addRow("sliding hd256 MQA ring wrapped") << 256 << 1 << 2 << 16 << 16 << 40 << 1;
        QTest::addRow("sliding hd256 GQA before the window fills") << 256 << 2 << 2 << 16 << 16 << 9 << 1;
        QTest::addRow("full hd512 MQA 4 heads") << 512 << 1 << 4 << 128 << 0 << 100 << 1;
        QTest::addRow("full hd512 first token") << 512 << 1 << 2 << 128 << 0 << 0 << 1;
        QTest::addRow("full hd256 300 positions (5 tiles)") << 256 << 1 << 2 << 512 << 0 << 299 << 1;
        QTest::addRow("prefill chunk: sliding hd256 GQA 9 tokens, ring of window + 8") << 256 << 2 << 2 << 24 << 16 << 44 << 9;
        QTest::addRow("prefill chunk: full hd512 from the first token, 7 tokens") << 512 << 1 << 2 << 128 << 0 << 6 << 7;
        QTest::addRow("prefill chunk: full hd256 70 tokens (tile edges)") << 256 << 1 << 3 << 256 << 0 << 140 << 70;
    }
    void attention() {
        QFETCH(int, headDim);
        QFETCH(int, kvHeads);
        QFETCH(int, group);
        QFETCH(int, capacity);
        QFETCH(int, window);
        QFETCH(int, position);
        QFETCH(int, tokens);
        std::mt19937 rng(std::uint32_t(headDim + kvHeads * 3 + position + tokens));
        const int heads = kvHeads * group;
        const std::size_t hd = std::size_t(headDim), cacheN = std::size_t(capacity) * std::size_t(kvHeads) * hd, qw = hd * std::size_t(heads);
        const std::vector<float> q = randomVector(qw * std::size_t(tokens), rng, 0.2f), kc = randomVector(cacheN, rng, 0.2f),
                                 vc = randomVector(cacheN, rng);
        std::vector<float> want(q.size()), scores(std::size_t(capacity) + 1);
        const ops::KvCacheView view{kc.data(), vc.data(), capacity, kvHeads, headDim};
        const std::uint32_t recordWords = tokenRecordWords(0);
        std::vector<std::byte> state(tokenStateBytes(std::uint32_t(tokens), recordWords));
        writeTokenStateHeader(state.data(), std::uint32_t(tokens), recordWords);
        for (int t = 0; t < tokens; ++t) {
            const int tp = position - tokens + 1 + t;
            const int first = ops::firstAttendedPosition(tp, window > 0, window);
            for (int h = 0; h < heads; ++h) {
                const std::size_t at = std::size_t(t) * qw + std::size_t(h) * hd;
                ops::attendHead(&q[at], view, h / group, first, tp, scores.data(), &want[at]);
            }
            writeTokenRecord(state.data(), std::uint32_t(t), recordWords, std::uint32_t(tp), 0);
        }
        OpRun run(*dev_, *kernels_, maxBinding_);
        const BufferId qb = run.input(q), kb = run.input(kc), vb = run.input(vc), sb = run.input(state.data(), state.size());
        const BufferId ob = run.output(want.size());
        run.run([&](const KernelContext& k) {
            // The kernel writes from the start of its output buffer; the harness's leading guard is skipped by
            // binding offset 0, so the output is compared there and only the trailing guard is checked.
            recordAttention(k, run.buf(qb), run.buf(kb), run.buf(vb), run.buf(ob), run.buf(sb),
                            AttentionParams{std::uint32_t(headDim), std::uint32_t(kvHeads), std::uint32_t(group), std::uint32_t(capacity),
                                            std::uint32_t(window), std::uint32_t(qw)},
                            std::uint32_t(heads), std::uint32_t(tokens));
        });
        // Attention writes at offset 0 of its output: compare those values; the trailing words must be untouched.
        const float* m = run.mapped(ob);
        const std::vector<float> got(m, m + want.size());
        bool guards = true;
        for (std::size_t i = want.size(); i < want.size() + 2 * kGuard; ++i) guards = guards && m[i] == kSentinel;
        report(QTest::currentDataTag(), nmse(got, want), 1e-9, guards, got);
    }

    void elementwise_data() {
        QTest::addColumn<QString>("op");
        for (const char* op : {"gelu_mul", "gelu_mul strided", "softcap", "scale", "ple_combine"}) QTest::newRow(op) << op;
    }
    void elementwise() {
        QFETCH(QString, op);
        std::mt19937 rng(std::uint32_t(qHash(op)));
        OpRun run(*dev_, *kernels_, maxBinding_);
        bool guards = false;
        if (op == "gelu_mul") {
            // Large magnitudes too: tanh must stay finite where exp overflows.
            std::vector<float> gate = randomVector(1003, rng, 3.0f);
            gate[0] = 200.0f;
            gate[1] = -200.0f;
            const std::vector<float> up = randomVector(1010, rng);
            std::vector<float> want(gate);
            ops::gatedGelu(want, std::span<const float>(up.data() + 7, want.size()));
            const BufferId gb = run.output(gate.size()), ub = run.input(up);
            run.run([&](const KernelContext& k) {
                std::memcpy(run.mapped(gb) + kGuard, gate.data(), gate.size() * 4);
                recordGeluMul(k, run.buf(gb), run.buf(ub), GeluParams{std::uint32_t(gate.size()), kGuard, 7, std::uint32_t(gate.size()), 0});
            });
            const auto got = run.read(gb, gate.size(), &guards);
            report("gelu_mul", nmse(got, want), 1e-10, guards, got);
        } else if (op == "gelu_mul strided") {
            // A chunk's PLE gates (3 tokens × 40) against slice 2 of each token's per-layer inputs (rows of 5 × 40).
            const std::uint32_t rows = 3, len = 40, upStride = 200, upOff = 80;
            const std::vector<float> gate = randomVector(rows * len, rng, 3.0f), up = randomVector(rows * upStride, rng);
            std::vector<float> want(gate);
            for (std::uint32_t r = 0; r < rows; ++r)
                ops::gatedGelu(std::span<float>(want.data() + r * len, len), std::span<const float>(up.data() + upOff + r * upStride, len));
            const BufferId gb = run.output(gate.size()), ub = run.input(up);
            run.run([&](const KernelContext& k) {
                std::memcpy(run.mapped(gb) + kGuard, gate.data(), gate.size() * 4);
                recordGeluMul(k, run.buf(gb), run.buf(ub), GeluParams{rows * len, kGuard, upOff, len, upStride});
            });
            const auto got = run.read(gb, gate.size(), &guards);
            report("gelu_mul strided", nmse(got, want), 1e-10, guards, got);
        } else if (op == "softcap") {
            std::vector<float> logits = randomVector(70001, rng, 40.0f);
            logits[5] = 1e30f;
            std::vector<float> want(logits);
            ops::softcap(want, 30.0f);
            const BufferId lb = run.output(logits.size() + kGuard);
            run.run([&](const KernelContext& k) {
                std::memcpy(run.mapped(lb), logits.data(), logits.size() * 4);  // softcap works from offset 0
                std::fill(run.mapped(lb) + logits.size(), run.mapped(lb) + logits.size() + 3 * kGuard, kSentinel);
                recordSoftcap(k, run.buf(lb), std::uint32_t(logits.size()), 30.0f);
            });
            const float* m = run.mapped(lb);
            const std::vector<float> got(m, m + logits.size());
            guards = true;
            for (std::size_t i = 0; i < kGuard; ++i) guards = guards && m[logits.size() + i] == kSentinel;
            report("softcap", nmse(got, want), 1e-10, guards, got);
        } else if (op == "scale") {
            const std::vector<float> x = randomVector(300, rng);
            std::vector<float> want(x);
            for (float& v : want) v *= 16.0f;
            const BufferId xb = run.input(x), yb = run.output(x.size() + kGuard);
            run.run([&](const KernelContext& k) { recordScale(k, run.buf(xb), run.buf(yb), std::uint32_t(x.size()), 16.0f); });
            const float* m = run.mapped(yb);
            const std::vector<float> got(m, m + x.size());
            guards = true;
            for (std::size_t i = 0; i < kGuard; ++i) guards = guards && m[x.size() + i] == kSentinel;
            report("scale", nmse(got, want), 1e-12, guards, got);
        } else {
            const int L = 5, P = 48, H = 256;
            const std::vector<float> proj = randomVector(std::size_t(L * P), rng, 10.0f), tok = randomVector(std::size_t(L * P), rng),
                                     norm = randomVector(std::size_t(P), rng);
            std::vector<float> want(proj);
            ops::combinePle(want, tok, L, P, H, norm.data(), 1e-6f);
            const BufferId pb = run.output(proj.size()), nb = run.input(norm), tb = run.input(tok);
            run.run([&](const KernelContext& k) {
                float* m = run.mapped(pb);
                std::memcpy(m, proj.data(), proj.size() * 4);  // ple_combine works from offset 0
                recordPleCombine(k, run.buf(pb), run.buf(nb), run.buf(tb), PleParams{P, 1.0f / std::sqrt(float(H)), std::sqrt(float(P)), 1e-6f},
                                 std::uint32_t(L));
            });
            const float* m = run.mapped(pb);
            const std::vector<float> got(m, m + proj.size());
            guards = true;
            for (std::size_t i = proj.size(); i < proj.size() + kGuard; ++i) guards = guards && m[i] == kSentinel;
            report("ple_combine", nmse(got, want), 1e-10, guards, got);
        }
    }

    // Greedy sampling on the device: the first index of the maximum, also for ties and across 262,144 logits.
    void argmax_data() {
        QTest::addColumn<int>("n");
        QTest::addColumn<int>("tieAt");
        QTest::newRow("262144, unique max") << 262144 << -1;
        QTest::newRow("1000, tie resolves to the lower id") << 1000 << 3;
        QTest::newRow("7") << 7 << -1;
        QTest::newRow("1000 at offset 3000 (a chunk's last row)") << 1000 << -2;
    }
    void argmax() {
        QFETCH(int, n);
        QFETCH(int, tieAt);
        std::mt19937 rng{std::uint32_t(n)};
        std::vector<float> logits = randomVector(std::size_t(n), rng);
        int want = int(std::max_element(logits.begin(), logits.end()) - logits.begin());
        if (tieAt >= 0) {
            logits[std::size_t(tieAt)] = 100.0f;
            logits[std::size_t(n - 1)] = 100.0f;
            want = tieAt;
        }
        // tieAt −2: the logits are the fourth row of four, and the earlier rows hold larger values to ignore.
        const std::uint32_t offset = tieAt == -2 ? 3u * std::uint32_t(n) : 0u;
        std::vector<float> rows(offset, 1e9f);
        rows.insert(rows.end(), logits.begin(), logits.end());
        OpRun run(*dev_, *kernels_, maxBinding_);
        const BufferId lb = run.input(rows), rb = run.output(4);
        run.run([&](const KernelContext& k) { recordArgmax(k, run.buf(lb), std::uint32_t(n), run.buf(rb), offset); });
        std::uint32_t got;
        std::memcpy(&got, run.mapped(rb), 4);
        QCOMPARE(int(got), want);
    }

    // Sampling on the device against core's Sampler on the same logits, history and suppressed ids, with the same
    // seeded draws: every draw must pick the host's token (f32 against f64 probabilities could differ only for a
    // draw within ~1e-6 of a cumulative boundary; none of these does). Ties in the logits (few distinct values)
    // check the lowest-id order of the top-k.
    void sample_data() {
        QTest::addColumn<int>("vocab");
        QTest::addColumn<float>("temperature");
        QTest::addColumn<int>("topK");
        QTest::addColumn<float>("topP");
        QTest::addColumn<float>("minP");
        QTest::addColumn<float>("penalty");
        QTest::addColumn<bool>("ties");
        QTest::addColumn<int>("draws");
        QTest::newRow("greedy, penalty, suppressed ids") << 5000 << 0.0f << 0 << 1.0f << 0.0f << 1.3f << false << 5;
        QTest::newRow("greedy over ties") << 3000 << 0.0f << 0 << 1.0f << 0.0f << 1.0f << true << 3;
        QTest::newRow("gemma defaults: T 1, top-k 64, top-p 0.95") << 8192 << 1.0f << 64 << 0.95f << 0.0f << 1.0f << false << 60;
        QTest::newRow("T 0.7, top-k 40, min-p 0.05, penalty 1.2") << 5000 << 0.7f << 40 << 1.0f << 0.05f << 1.2f << false << 60;
        QTest::newRow("top-k 256 over ties") << 4000 << 1.5f << 256 << 1.0f << 0.0f << 1.0f << true << 60;
        QTest::newRow("whole vocabulary of 200, top-p 0.9") << 200 << 0.8f << 0 << 0.9f << 0.0f << 1.0f << false << 60;
        QTest::newRow("262144 logits, top-k 64") << 262144 << 1.0f << 64 << 0.95f << 0.0f << 1.1f << false << 8;
    }
    void sample() {
        QFETCH(int, vocab);
        QFETCH(float, temperature);
        QFETCH(int, topK);
        QFETCH(float, topP);
        QFETCH(float, minP);
        QFETCH(float, penalty);
        QFETCH(bool, ties);
        QFETCH(int, draws);
        std::mt19937 rng(std::uint32_t(qHash(QString(QTest::currentDataTag()))));
        std::vector<float> logits = randomVector(std::size_t(vocab), rng, 3.0f);
        if (ties)
            for (float& l : logits) l = std::round(l);  // a handful of distinct values
        std::vector<bool> suppressed(std::size_t(vocab), false);
        for (int i = 0; i < vocab; i += 97) suppressed[std::size_t(i)] = true;
        const int top = int(std::max_element(logits.begin(), logits.end()) - logits.begin());
        suppressed[std::size_t(top)] = true;  // the largest logit is suppressed: the pick must skip it
        std::vector<int> history;
        for (int i = 0; i < 80; ++i) history.push_back(int(rng() % std::uint32_t(vocab)));
        SamplingParams sp;
        sp.temperature = temperature;
        sp.topK = topK;
        sp.topP = topP;
        sp.minP = minP;
        sp.repetitionPenalty = penalty;
        sp.seed = 1234;
        QVERIFY(deviceCanSample(sp, vocab));
        Sampler host(vocab, sp);
        host.setSuppressed(suppressed);
        std::mt19937_64 draws64(sp.seed);
        const std::vector<std::uint32_t> bits = suppressedBits(suppressed, vocab);
        std::vector<std::byte> state(sampleStateBytes());
        OpRun run(*dev_, *kernels_, maxBinding_);
        const BufferId lb = run.input(logits), bb = run.input(bits.data(), bits.size() * 4), sb = run.input(state.data(), state.size());
        const BufferId work = run.output(std::size_t(vocab)), rb = run.output(4);
        int agree = 0;
        std::set<int> distinct;
        for (int d = 0; d < draws; ++d) {
            const double u = sp.greedy() ? 0.0 : samplingDraw(draws64);
            const auto writeState = [&] { writeSampleState(reinterpret_cast<std::byte*>(run.mapped(sb)), sp, history, u); };
            if (d == 0) {
                run.run([&](const KernelContext& k) {
                    writeState();  // after run() uploaded the inputs
                    recordSample(k, run.buf(lb), std::uint32_t(vocab), 0, run.buf(bb), run.buf(sb), run.buf(work), run.buf(rb));
                });
            } else {
                writeState();
                run.again();
            }
            std::uint32_t got;
            std::memcpy(&got, run.mapped(rb), 4);
            std::vector<float> hostLogits(logits);
            const int want = host.sample(hostLogits, history);
            if (int(got) != want) QFAIL(qPrintable(QString("draw %1: device picked %2, host %3").arg(d).arg(got).arg(want)));
            QVERIFY(!suppressed[got]);
            ++agree;
            distinct.insert(want);
            history.push_back(want);
        }
        qInfo("%s: %d of %d draws identical, %zu distinct tokens", QTest::currentDataTag(), agree, draws, distinct.size());
        if (!sp.greedy() && draws >= 60) QVERIFY2(distinct.size() > 3, "the draws did not sample");
    }

    // The PLE table on the device: the token's row, from whichever part holds it.
    void gatherRow_data() {
        QTest::addColumn<QString>("format");
        QTest::addColumn<int>("token");
        QTest::newRow("bf16 token 0") << "bf16" << 0;
        QTest::newRow("bf16 last token") << "bf16" << 4999;
        QTest::newRow("f32 middle") << "f32" << 2500;
        QTest::newRow("q8_0 last") << "q8_0" << 4999;
    }
    void gatherRow() {
        QFETCH(QString, format);
        QFETCH(int, token);
        std::mt19937 rng{std::uint32_t(token) + 5u};
        TestWeight w;
        makeWeight(w, format.toStdString(), 5000, 256, rng);
        // Two tokens, as a prefill chunk gathers them: the case's token and one from another part of the table.
        const int tokens[2] = {token, (token + 2600) % 5000};
        std::vector<float> want(512);
        for (int t = 0; t < 2; ++t) w.view.row(tokens[t], want.data() + 256 * t);
        const std::uint32_t recordWords = tokenRecordWords(0);
        std::vector<std::byte> state(tokenStateBytes(2, recordWords));
        writeTokenStateHeader(state.data(), 2, recordWords);
        for (int t = 0; t < 2; ++t) writeTokenRecord(state.data(), std::uint32_t(t), recordWords, std::uint32_t(t), std::uint32_t(tokens[t]));
        OpRun run(*dev_, *kernels_, maxBinding_);
        const DeviceWeight& dw = run.weight(w.view);
        const BufferId sb = run.input(state.data(), state.size()), ob = run.output(want.size());
        run.run([&](const KernelContext& k) { recordGatherRow(k, dw, run.buf(sb), run.buf(ob), kGuard, 2); });
        bool guards = false;
        const auto got = run.read(ob, want.size(), &guards);
        if (maxBinding_ <= (1u << 20)) QVERIFY(dw.parts.size() > 1);
        report(QTest::currentDataTag(), nmse(got, want), 0.0, guards, got);
    }

    void cleanupTestCase() {
        if (!instance_) return;
        WHITTLE_EXPECT_NO_VALIDATION_MESSAGES(*instance_);
    }
};

QTEST_GUILESS_MAIN(TestOps)
#include "tst_ops.moc"
