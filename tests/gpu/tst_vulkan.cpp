// Vulkan end to end on a real device (lavapipe in CI): enumerate devices, run the scale and subgroup
// reduction shaders, compare with the CPU, with the validation layer on and zero messages from it.
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/io/json_file.h"
#include "gpu/compute_device.h"
#include "shader_params.h"
#include "gpu_test_support.h"
#include "test_support.h"

using namespace whittle;
using namespace whittle::gpu;
using namespace whittle::test;

class TestVulkan : public QObject {
    Q_OBJECT
    std::unique_ptr<VulkanInstance> instance_;
    std::vector<DeviceCaps> caps_;

private slots:
    void initTestCase() {
        try {
            InstanceOptions o;
            o.validation = true;
            instance_ = std::make_unique<VulkanInstance>(o);
            caps_ = queryAllCaps(instance_->physicalDevices());
        } catch (const Error& e) {
            WHITTLE_REQUIRE_OR_SKIP(false, e.what());
        }
        WHITTLE_REQUIRE_OR_SKIP(!caps_.empty(), "no Vulkan device");
        QVERIFY(instance_->validationEnabled());
    }

    void capabilities() {
        for (const auto& c : caps_) {
            qInfo("device %u: %s (%s, %s), subgroup %u", c.index, c.name.c_str(), c.vendor.c_str(), c.type.c_str(), c.subgroupSize);
            QVERIFY(!c.name.empty());
            QVERIFY(c.subgroupSize >= 1);
            QVERIFY(c.maxStorageBufferRange >= (1u << 27));
            QVERIFY(c.maxComputeWorkGroupCount[0] >= 65535);
            QVERIFY(!c.heaps.empty());
            QVERIFY(c.deviceLocalBytes() > 0);
            QCOMPARE(c.software, c.type == "cpu");
            const Json j = toJson(c);
            QCOMPARE(j["name"].get<std::string>(), c.name);
        }
        // lavapipe, when present, is labelled software and only picked when nothing else exists.
        bool onlyCpu = true;
        for (const auto& c : caps_) onlyCpu = onlyCpu && c.software;
        const int picked = pickDevice(caps_);
        QVERIFY(picked >= 0);
        QCOMPARE(caps_[std::size_t(picked)].software, onlyCpu);
        WHITTLE_EXPECT_ERROR(pickDevice(caps_, "no-such-device-name"), UsageError, "no Vulkan device matches");
        QCOMPARE(pickDevice(caps_, std::to_string(caps_.back().index)), int(caps_.back().index));
    }

    void scale() {
        ComputeDevice dev(*instance_, std::uint32_t(pickDevice(caps_)));
        const std::uint32_t n = 10007;  // not a multiple of the workgroup size
        Buffer x = dev.createBuffer(n * 4), y = dev.createBuffer(n * 4);
        std::mt19937 rng(1);
        std::normal_distribution<float> d;
        for (auto& v : x.as<float>()) v = d(rng);
        std::fill(y.as<float>().begin(), y.as<float>().end(), -1.0f);
        const Pipeline p = dev.createPipeline(ShaderId::Scale, 2, sizeof(shader::ScaleParams));
        const shader::ScaleParams params{n - 7, 2.5f};
        const Buffer* bufs[] = {&x, &y};
        dev.dispatch(p, bufs, &params, (n + 255) / 256);
        for (std::uint32_t i = 0; i < n; ++i) {
            const float want = i < n - 7 ? 2.5f * x.as<float>()[i] : -1.0f;  // untouched past p.n
            if (y.as<float>()[i] != want) QFAIL(qPrintable(QString("y[%1] = %2, want %3").arg(i).arg(y.as<float>()[i]).arg(want)));
        }
        QCOMPARE(instance_->validationErrors(), 0);
    }

    void subgroupReduction_data() {
        QTest::addColumn<int>("n");
        QTest::newRow("one") << 1;
        QTest::newRow("odd") << 1000003;
        QTest::newRow("exact") << 65536;
    }
    // Each workgroup's partial is checked against that group's exact sum, with a bound derived from the
    // data, so a dropped, misplaced or doubled group fails — a total-only check cannot promise that: for
    // the million-element row the worst-case bound on the total (≈ 15) exceeds the 67-element tail's sum.
    void subgroupReduction() {
        QFETCH(int, n);
        ComputeDevice dev(*instance_, std::uint32_t(pickDevice(caps_)));
        WHITTLE_REQUIRE_OR_SKIP(dev.caps().subgroupArithmetic, "device lacks subgroup arithmetic");
        const std::uint32_t groups = (std::uint32_t(n) + 255) / 256;
        Buffer x = dev.createBuffer(std::uint64_t(n) * 4), partial = dev.createBuffer(groups * 4);
        std::mt19937 rng(2);
        std::uniform_real_distribution<float> d(-1, 1);
        for (auto& v : x.as<float>()) v = d(rng);
        // A partial the shader never writes stays NaN and fails every comparison below.
        std::fill(partial.as<float>().begin(), partial.as<float>().end(), std::numeric_limits<float>::quiet_NaN());
        const Pipeline p = dev.createPipeline(ShaderId::ReduceSum, 2, sizeof(shader::ReduceParams));
        const shader::ReduceParams params{std::uint32_t(n)};
        const Buffer* bufs[] = {&x, &partial};
        dev.dispatch(p, bufs, &params, groups);

        // The bound. A group adds k ≤ 256 floats in f32 (subgroupAdd, then the subgroup sums in a loop): in
        // any order, k − 1 correctly rounded additions err by at most γ(k−1)·Σ|x|, with γ(m) = m·u / (1 − m·u)
        // and u = 2^-24 (Higham, Accuracy and Stability of Numerical Algorithms, §4.2). Times 2 for safety
        // (a driver flushing denormals, an extra rounding of the shared-memory spill). The reference sums
        // are in double: their own error (≤ 255·2^-53·Σ|x|) is 2^-29 of the bound and ignored.
        constexpr double u = 0x1p-24;
        const double gamma = 255 * u / (1 - 255 * u);
        constexpr double kSafety = 2;
        const auto xs = x.as<float>();
        const auto ps = partial.as<float>();
        double want = 0, got = 0, totalTol = 0, worstRatio = 0;
        int failures = 0;
        std::vector<double> groupSum(groups), groupTol(groups);
        for (std::uint32_t g = 0; g < groups; ++g) {
            double s = 0, a = 0;
            for (std::uint32_t i = g * 256; i < std::min<std::uint32_t>(std::uint32_t(n), (g + 1) * 256); ++i) {
                s += xs[i];
                a += std::fabs(xs[i]);
            }
            groupSum[g] = s;
            groupTol[g] = kSafety * gamma * a;
            const double err = std::fabs(double(ps[g]) - s);
            if (!(err <= groupTol[g]) && ++failures <= 5)
                qWarning("group %u: partial %.9g, want %.9g (tolerance %.3g)", g, double(ps[g]), s, groupTol[g]);
            if (err <= groupTol[g]) worstRatio = std::max(worstRatio, err / groupTol[g]);
            want += s;
            got += double(ps[g]);
            totalTol += groupTol[g];
        }
        // The check can fail: the tail group's own sum (what a dropped or mis-sized tail would lose) is far
        // outside its tolerance. Likewise the first group's (a dispatch that is off by one group).
        const std::uint32_t last = groups - 1;
        qInfo("n %d, %u groups: worst |error| = %.3g of the tolerance; tail group sum %.6g vs tolerance %.3g; total %.9g, want %.9g",
              n, groups, worstRatio, groupSum[last], groupTol[last], got, want);
        QVERIFY2(std::fabs(groupSum[last]) > 10 * groupTol[last], "the tail group's sum is within its tolerance: the check is blind to it");
        QVERIFY2(std::fabs(groupSum[0]) > 10 * groupTol[0], "the first group's sum is within its tolerance");
        QCOMPARE(failures, 0);
        QVERIFY2(std::fabs(got - want) <= totalTol, qPrintable(QString("sum %1, want %2, tolerance %3").arg(got).arg(want).arg(totalTol)));
        QCOMPARE(instance_->validationErrors(), 0);
    }

    void limitsEnforced() {
        ComputeDevice dev(*instance_, std::uint32_t(pickDevice(caps_)));
        WHITTLE_EXPECT_ERROR(dev.createBuffer(dev.caps().maxStorageBufferRange + 1), UsageError, "storage-buffer range");
        Buffer a = dev.createBuffer(16);
        const Pipeline p = dev.createPipeline(ShaderId::Scale, 2, sizeof(shader::ScaleParams));
        const Buffer* one[] = {&a};
        WHITTLE_EXPECT_ERROR(dev.dispatch(p, one, nullptr, 1), UsageError, "needs 2 buffers");
    }

    // The validation counter is live: a pipeline whose push-constant range is smaller than the shader's
    // block is reported (on a separate instance, so the suite's own count stays clean).
    void validationCatchesMistakes() {
        InstanceOptions o;
        o.validation = true;
        VulkanInstance second(o);
        ComputeDevice dev(second, std::uint32_t(pickDevice(caps_)));
        const Pipeline p = dev.createPipeline(ShaderId::Scale, 2, 4);  // ScaleParams is 8 bytes
        Q_UNUSED(p);
        QVERIFY(second.validationErrors() > 0);
    }

    void cliDevices() {
        CliResult r = runCli({"devices"});
        QCOMPARE(r.exitCode, 0);
        QVERIFY(r.out.contains(QString::fromStdString(caps_[0].name)));
        r = runCli({"devices", "--json"});
        QCOMPARE(r.exitCode, 0);
        const Json j = Json::parse(r.out.toStdString());
        QCOMPARE(j["devices"].size(), caps_.size());
        for (const auto& d : j["devices"]) QCOMPARE(d["software"].get<bool>(), d["type"] == "cpu");
        // No driver at all: a clear message, not a crash.
        QProcess p;
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        env.insert("VK_DRIVER_FILES", "/nonexistent/icd.json");
        env.insert("VK_ICD_FILENAMES", "/nonexistent/icd.json");
        p.setProcessEnvironment(env);
        p.start(QStringLiteral(WHITTLE_CLI_PATH), {"devices"});
        QVERIFY(p.waitForFinished(60000));
        QCOMPARE(p.exitStatus(), QProcess::NormalExit);
        QCOMPARE(p.exitCode(), 1);
        const QString err = QString::fromUtf8(p.readAllStandardError());
        QVERIFY2(err.contains("no Vulkan driver found"), qPrintable(err));
    }

    void cleanupTestCase() {
        if (!instance_) return;
        WHITTLE_EXPECT_NO_VALIDATION_MESSAGES(*instance_);
    }
};

QTEST_GUILESS_MAIN(TestVulkan)
#include "tst_vulkan.moc"
