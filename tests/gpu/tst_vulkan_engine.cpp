// The Vulkan engine end to end on the bundled model and its slims, against the CPU reference on the same weights,
// with the validation layer on (zero messages). Per variant, one pass feeds both engines the CPU reference's own
// greedy continuation (an 8-token prompt, then 200 tokens: past 3× the 64-token sliding window, so the rings
// wrap) and checks at every step
//   logits:  max|Δ| / max|ref| ≤ 1e-3 over the vocabulary;
//   greedy:  the Vulkan argmax (computed on the device) equals the reference's token, unless the reference's
//            top-2 margin there is below 1e-3 · max|logit| (the guide's tie rule; the logits bound above is the
//            teacher-forced comparison it then asks for).
// When the argmax agrees at every step the Vulkan engine's own greedy continuation is the reference's, token
// for token. Then the same 209 tokens go in as one prompt, as generate and eval send them: in prefill chunks of
// 32 through the matrix–matrix kernels (the rings wrapping inside a chunk), once with every token's logits (eval;
// each row under the same bound) and once with the last token's only (generate; its logits and device argmax).
#include <cmath>
#include <csignal>
#include <cstring>

#include <QRegularExpression>

#include <nlohmann/json.hpp>

#include "core/engine/generator.h"
#include "core/error.h"
#include "core/model/checkpoint.h"
#include "core/reference/reference_session.h"
#include "core/tokenizer/tokenizer.h"
#include "gpu/vulkan_engine.h"
#include "gpu_test_support.h"
#include "test_support.h"

using namespace whittle;
using namespace whittle::gpu;
using namespace whittle::test;
namespace fs = std::filesystem;

class TestVulkanEngine : public QObject {
    Q_OBJECT
    ValidatedDevice vk_;
    VulkanInstance* instance_ = nullptr;
    ComputeDevice* dev_ = nullptr;
    QTemporaryDir dir_;

    // The variant's checkpoint: the bundled model, or a slim made by whittle-cli into the temporary folder.
    fs::path variantModel(const QString& variant) {
        const QString src = QString::fromStdString(bundledModelDir().string());
        if (variant.startsWith("bf16")) return bundledModelDir();
        const fs::path out = tempPath(dir_, variant.toStdString().c_str());
        if (fs::exists(out)) return out;
        QStringList args;
        if (variant == "english") args = {"prune-vocab", src, QString::fromStdString(out.string()), "--preset", "english"};
        else if (variant == "int4 rtn") args = {"quantize", src, QString::fromStdString(out.string()), "--method", "rtn"};
        else if (variant == "int4 rtn q8_0 tables")
            args = {"quantize", src, QString::fromStdString(out.string()), "--method", "rtn", "--embeddings", "q8_0"};
        else if (variant == "int4 rtn q4_0 tables ple-vram")  // the PLE table's Q4_0 rows decoded on the device
            args = {"quantize", src, QString::fromStdString(out.string()), "--method", "rtn", "--embeddings", "q4_0"};
        else if (variant == "int4 gptq")
            args = {"quantize", src, QString::fromStdString(out.string()), "--method", "gptq", "--act-order", "--calib-samples", "4", "--calib-length", "64"};
        else if (variant == "flap 0.2")
            args = {"flap", src, QString::fromStdString(out.string()), "--ratio", "0.2", "--calib-samples", "8", "--calib-length", "128"};
        else if (variant == "nvfp4") args = {"quantize", src, QString::fromStdString(out.string()), "--method", "nvfp4"};
        else if (variant == "budget 3.6 bpw")
            args = {"quantize", src, QString::fromStdString(out.string()), "--method", "budget", "--bpw", "3.6", "--calib-samples", "4", "--calib-length", "64"};
        return cliVariant(out, args);
    }

private slots:
    void initTestCase() {
        QVERIFY(dir_.isValid());
        const std::string why = vk_.open();
        WHITTLE_REQUIRE_OR_SKIP(why.empty(), why.c_str());
        instance_ = vk_.instance.get();
        dev_ = vk_.device.get();
    }

    void matchesReference_data() {
        QTest::addColumn<QString>("variant");
        for (const char* v : {"bf16", "bf16 ple-vram", "bf16 staged 1MiB", "int4 rtn", "int4 rtn q8_0 tables",
                              "int4 rtn q4_0 tables ple-vram", "int4 gptq", "nvfp4", "budget 3.6 bpw", "english", "flap 0.2"})
            QTest::newRow(v) << v;
    }
    void matchesReference() {
        QFETCH(QString, variant);
        const fs::path model = variantModel(variant);
        QVERIFY2(!model.empty(), "whittle-cli could not make the variant");
        const Checkpoint ck = Checkpoint::open(model);
        ReferenceOptions ro;
        ro.threads = 2;
        const ReferenceModel ref(ck, ro);
        EngineOptions eo;
        eo.pleInVram = variant.contains("ple-vram");
        if (variant.contains("staged")) {
            eo.stagingUploads = true;
            eo.maxBindingBytes = 1u << 20;
        }
        VulkanModel vm(*dev_, ref, eo);
        if (variant.startsWith("flap")) {  // per-layer widths and FLAP's down_proj bias reach both engines
            QVERIFY(ref.config().downProjBias);
            QVERIFY(vm.layers().front().downBias.valid());
        }
        if (variant.contains("q4_0 tables ple-vram")) {
            QCOMPARE(vm.pleTable().format, WeightFormat::GgufQ4_0);
            QVERIFY(!vm.pleTable().parts.empty());
        }
        if (variant.contains("1MiB")) QVERIFY2(vm.head().parts.size() > 1, "the 1 MiB binding range did not split the token table");
        const int context = 256;
        VulkanSession gpu(vm, context);
        ReferenceSession cpu(ref, context);

        const Tokenizer tok = Tokenizer::fromModelOrFile(model);
        std::vector<int> prompt = tok.encode("The old house on the hill");
        prompt.insert(prompt.begin(), ck.specialTokens().bos >= 0 ? ck.specialTokens().bos : 2);
        const int generated = 200;
        const std::size_t V = std::size_t(ref.vocabSize());
        double worst = 0;
        int ties = 0, steps = 0;
        std::vector<int> sequence = prompt;
        auto refLogits = cpu.forward(prompt);
        auto gpuLogits = gpu.forward(prompt);
        for (int i = 0; i <= generated; ++i) {
            double maxRef = 0, maxDelta = 0;
            for (std::size_t v = 0; v < V; ++v) {
                maxRef = std::max(maxRef, std::fabs(double(refLogits[v])));
                maxDelta = std::max(maxDelta, std::fabs(double(refLogits[v]) - double(gpuLogits[v])));
            }
            const double rel = maxDelta / maxRef;
            worst = std::max(worst, rel);
            if (!(rel <= 1e-3)) QFAIL(qPrintable(QString("step %1: logits differ by %2 of max|ref|").arg(i).arg(rel)));
            // The reference's greedy token and its top-2 margin; the device's own argmax of its logits.
            int best = 0;
            for (std::size_t v = 1; v < V; ++v)
                if (refLogits[v] > refLogits[std::size_t(best)]) best = int(v);
            double second = -1e30;
            for (std::size_t v = 0; v < V; ++v)
                if (int(v) != best) second = std::max(second, double(refLogits[v]));
            const int deviceToken = gpu.deviceArgmax();
            int hostArgmax = 0;
            for (std::size_t v = 1; v < V; ++v)
                if (gpuLogits[v] > gpuLogits[std::size_t(hostArgmax)]) hostArgmax = int(v);
            QCOMPARE(deviceToken, hostArgmax);
            if (deviceToken != best) {
                const double margin = (double(refLogits[std::size_t(best)]) - second) / maxRef;
                if (!(margin < 1e-3)) QFAIL(qPrintable(QString("step %1: greedy token %2, reference %3 (margin %4)").arg(i).arg(deviceToken).arg(best).arg(margin)));
                ++ties;
            }
            ++steps;
            if (i == generated) break;
            sequence.push_back(best);
            refLogits = cpu.forward(std::span<const int>(&best, 1));
            gpuLogits = gpu.forward(std::span<const int>(&best, 1));
        }
        QCOMPARE(gpu.position(), int(prompt.size()) + generated);
        const EngineStats st = gpu.stats();
        qInfo("%s: %d steps, worst max|Δ|/max|ref| %.3g, %d near-tie flips; %d dispatches per token; %.1f tok/s; device memory %s",
              qPrintable(variant), steps, worst, ties, st.dispatchesPerToken, double(st.tokens) / st.deviceSeconds, toJson(st).dump().c_str());
        QCOMPARE(ties, 0);
        // Every byte by kind: the weights' allocation holds the uploaded tensors (alignment slack only), the KV
        // cache holds exactly the owning layers' rings (a sliding ring: window + prefill chunk − 1 slots).
        QCOMPARE(gpu.prefillChunk(), 32);
        std::uint64_t kv = 0;
        for (const auto& l : ref.config().layers)
            if (l.ownsKv)
                kv += 2ull * std::uint64_t(l.kind == AttentionKind::Sliding ? std::min(context, ref.config().slidingWindow + 32 - 1) : context) *
                      std::uint64_t(ref.config().numKvHeads) * std::uint64_t(l.headDim) * 4;
        QVERIFY(st.allocatedBytes[std::size_t(MemoryKind::KvCache)] >= kv);
        QVERIFY(st.allocatedBytes[std::size_t(MemoryKind::KvCache)] <= kv + 64 * 1024);
        QVERIFY(st.allocatedBytes[std::size_t(MemoryKind::Weights)] >= vm.memory().plannedBytes());
        QVERIFY(st.allocatedBytes[std::size_t(MemoryKind::Weights)] <= vm.memory().plannedBytes() + 64 * 1024);

        // The whole sequence as one prompt, every token's logits (eval's call).
        const std::size_t n = sequence.size();
        std::vector<float> refAll(n * V), gpuAll(n * V);
        cpu.reset();
        gpu.reset();
        cpu.forward(sequence, refAll.data());
        gpu.forward(sequence, gpuAll.data());
        double worstPrefill = 0;
        for (std::size_t t = 0; t < n; ++t) {
            double maxRef = 0, maxDelta = 0;
            for (std::size_t v = 0; v < V; ++v) {
                maxRef = std::max(maxRef, std::fabs(double(refAll[t * V + v])));
                maxDelta = std::max(maxDelta, std::fabs(double(refAll[t * V + v]) - double(gpuAll[t * V + v])));
            }
            worstPrefill = std::max(worstPrefill, maxDelta / maxRef);
            if (!(maxDelta / maxRef <= 1e-3)) QFAIL(qPrintable(QString("prefill row %1: logits differ by %2 of max|ref|").arg(t).arg(maxDelta / maxRef)));
        }
        // The same prompt with the last token's logits only (generate's call): chunks without the head, then one with it.
        gpu.reset();
        const auto lastLogits = gpu.forward(sequence);
        double maxRef = 0, maxDelta = 0;
        int hostArgmax = 0;
        for (std::size_t v = 0; v < V; ++v) {
            maxRef = std::max(maxRef, std::fabs(double(refAll[(n - 1) * V + v])));
            maxDelta = std::max(maxDelta, std::fabs(double(refAll[(n - 1) * V + v]) - double(lastLogits[v])));
            if (lastLogits[v] > lastLogits[std::size_t(hostArgmax)]) hostArgmax = int(v);
        }
        QVERIFY2(maxDelta / maxRef <= 1e-3, qPrintable(QString("prompt's last logits differ by %1 of max|ref|").arg(maxDelta / maxRef)));
        QCOMPARE(gpu.deviceArgmax(), hostArgmax);
        QCOMPARE(gpu.position(), int(n));
        qInfo("%s: prefill of %zu tokens in chunks of %d: worst max|Δ|/max|ref| %.3g (every row), %.3g (last only)", qPrintable(variant), n,
              gpu.prefillChunk(), worstPrefill, maxDelta / maxRef);
        QCOMPARE(instance_->validationErrors(), 0);
    }

    // The device picks tokens for greedy and top-k ≤ 256 settings and declines the rest, which generate() then
    // samples on the host; both give the CPU reference's tokens for the same seed (the CLI test compares texts).
    void deviceSampling() {
        const Checkpoint ck = Checkpoint::open(bundledModelDir());
        const ReferenceModel ref(ck, {});
        VulkanModel vm(*dev_, ref);
        VulkanSession gpu(vm, 128);
        ReferenceSession cpu(ref, 128);
        const Tokenizer tok = Tokenizer::fromModelOrFile(bundledModelDir());
        std::vector<int> prompt = tok.encode("The old house on the hill");
        prompt.insert(prompt.begin(), ck.specialTokens().bos >= 0 ? ck.specialTokens().bos : 2);
        const std::vector<bool> suppressed = suppressedIds(tok, gpu.vocabSize());
        SamplingParams sp;
        QVERIFY(gpu.setSampler(sp, suppressed));  // greedy
        sp.temperature = 1.0f;
        sp.topK = 64;
        sp.topP = 0.95f;
        QVERIFY(gpu.setSampler(sp, suppressed));
        sp.topK = 0;
        QVERIFY(!gpu.setSampler(sp, suppressed));  // 8,192 candidates
        QVERIFY(!cpu.setSampler(sp, suppressed));
        for (const int topK : {64, 0}) {
            GenerateOptions o;
            o.maxTokens = 40;
            o.sampling.temperature = 1.0f;
            o.sampling.topK = topK;
            o.sampling.topP = 0.95f;
            o.sampling.repetitionPenalty = 1.2f;
            o.sampling.seed = 99;
            gpu.reset();
            cpu.reset();
            const GenerateResult g = generate(gpu, tok, prompt, o, nullptr, CancelToken());
            const GenerateResult c = generate(cpu, tok, prompt, o, nullptr, CancelToken());
            QCOMPARE(g.tokens, c.tokens);
            QCOMPARE(int(g.tokens.size()), 40);
        }
        QCOMPARE(instance_->validationErrors(), 0);
    }

    // Refusals: weights or a session that do not fit get the sizes in the message before anything is allocated;
    // bad tokens and overflowing sequences are usage errors.
    void refusals() {
        const Checkpoint ck = Checkpoint::open(bundledModelDir());
        const ReferenceModel ref(ck, {});
        EngineOptions eo;
        eo.memoryLimitBytes = 8u << 20;
        WHITTLE_EXPECT_ERROR(VulkanModel(*dev_, ref, eo), UsageError, "the model's weights needs", "of device memory", "has 8.4 MB");
        eo.memoryLimitBytes = 24u << 20;
        VulkanModel vm(*dev_, ref, eo);
        WHITTLE_EXPECT_ERROR(VulkanSession(vm, 60000), UsageError, "a session of 60000 positions", "already in use");
        VulkanSession s(vm, 16);
        const int bad = ref.vocabSize();
        WHITTLE_EXPECT_ERROR(s.forward(std::span<const int>(&bad, 1)), UsageError, "outside the vocabulary");
        std::vector<int> longer(17, 5);
        WHITTLE_EXPECT_ERROR(s.forward(longer), UsageError, "the context holds 16");
        QCOMPARE(s.position(), 0);
    }

    // A submit that does not finish in time (a hung kernel; a lost device takes the same path with its own
    // message) ends the session with an error instead of a hang, and every later call says it has ended. The
    // timeout is forced to 1 µs: no 32-token prefill finishes that fast. The session still waits for the
    // running work before freeing its buffers (validation stays silent).
    void hungSubmitEndsSession() {
        const Checkpoint ck = Checkpoint::open(bundledModelDir());
        const ReferenceModel ref(ck, {});
        EngineOptions eo;
        eo.submitTimeoutSeconds = 1e-6;
        VulkanModel vm(*dev_, ref, eo);
        {
            VulkanSession s(vm, 64);
            std::vector<int> prompt(32, 300);
            prompt[0] = 2;
            WHITTLE_EXPECT_ERROR(s.forward(prompt), Error, "did not finish its work within 1e-06 s", "the session is ended");
            s.reset();
            WHITTLE_EXPECT_ERROR(s.forward(prompt), Error, "the Vulkan session has ended");
            WHITTLE_EXPECT_ERROR(s.forwardAndPick(prompt, prompt, 0.0), Error, "the Vulkan session has ended");
        }
        QCOMPARE(instance_->validationErrors(), 0);
    }

    // generate --backend vulkan prints the CPU backend's greedy text, eval gives the same perplexity, and bench
    // reports the engine's figures.
    void cli() {
        const QString model = QString::fromStdString(bundledModelDir().string());
        const QStringList common = {"generate", model, "--prompt", "Once upon a time", "--greedy", "--max-tokens", "48"};
        const CliResult cpu = runCli(common);
        const CliResult gpu = runCli(QStringList(common) << "--backend" << "vulkan");
        QCOMPARE(cpu.exitCode, 0);
        QCOMPARE(gpu.exitCode, 0);
        QCOMPARE(gpu.out, cpu.out);
        // Sampled: the device picks the tokens (top-k 40 fits sample.comp) with the host's seeded draws, so the
        // text is the CPU backend's; top-k off over the 8,192-token vocabulary is sampled on the host instead.
        for (const char* topK : {"40", "0"}) {
            const QStringList sampled = {"generate", model, "--prompt", "Once upon a time", "--temperature", "0.9", "--top-k", topK, "--top-p", "0.95",
                                         "--repeat-penalty", "1.1", "--seed", "7", "--max-tokens", "48"};
            const CliResult sCpu = runCli(sampled), sGpu = runCli(QStringList(sampled) << "--backend" << "vulkan");
            QCOMPARE(sCpu.exitCode, 0);
            QCOMPARE(sGpu.exitCode, 0);
            QCOMPARE(sGpu.out, sCpu.out);
            QVERIFY2(sCpu.out != cpu.out, "the sampled text equals the greedy one: the settings did not sample");
        }
        const CliResult bench = runCli({"bench", model, "--backend", "vulkan", "--prompt-tokens", "8", "--decode-tokens", "8", "--json"});
        QCOMPARE(bench.exitCode, 0);
        const Json j = Json::parse(bench.out.toStdString());
        QCOMPARE(j["backend"].get<std::string>(), std::string("vulkan"));
        QVERIFY(j["engine"]["dispatches_per_token"].get<int>() > 0);
        QVERIFY(j["engine"]["allocated_bytes"]["weights"].get<std::uint64_t>() > 0);
        QCOMPARE(j["allocations_per_decoded_token"].get<double>(), 0.0);
        // eval on either backend: the same perplexity (3 windows of 128 over the held-out text).
        const QString text = QString::fromStdString((bundledModelDir() / "heldout.txt").string());
        const QStringList evalArgs = {"eval", model, "--text", text, "--max-tokens", "300", "--ctx", "128", "--json"};
        const CliResult evalCpu = runCli(evalArgs), evalGpu = runCli(QStringList(evalArgs) << "--backend" << "vulkan");
        QCOMPARE(evalCpu.exitCode, 0);
        QCOMPARE(evalGpu.exitCode, 0);
        const double pplCpu = Json::parse(evalCpu.out.toStdString())["ppl"].get<double>(),
                     pplGpu = Json::parse(evalGpu.out.toStdString())["ppl"].get<double>();
        qInfo("eval: perplexity %.6f on the CPU reference, %.6f on Vulkan", pplCpu, pplGpu);
        QVERIFY(std::fabs(pplGpu - pplCpu) <= 1e-5 * pplCpu);
        const CliResult wrong = runCli({"generate", model, "--prompt", "x", "--backend", "metal"});
        QCOMPARE(wrong.exitCode, 2);
        QVERIFY(wrong.err.contains("the backends are cpu and vulkan"));
    }

    // whittle-cli chat: the first answer equals generate --chat's; the next turn reuses the session's ids; Ctrl-C
    // stops an answer and the chat goes on; /reset starts over.
    void chatCli() {
        const QString model = QString::fromStdString(bundledModelDir().string());
        const CliResult single = runCli({"generate", model, "--chat", "--prompt", "Tell me a story.", "--greedy", "--max-tokens", "40"});
        QCOMPARE(single.exitCode, 0);
        QProcess p;
        p.start(QStringLiteral(WHITTLE_CLI_PATH), {"chat", model, "--greedy", "--max-tokens", "40", "--backend", "vulkan", "--quiet"});
        QVERIFY(p.waitForStarted());
        p.write("Tell me a story.\nAnd then?\n/reset\nTell me a story.\n");
        p.closeWriteChannel();
        QVERIFY(p.waitForFinished(120000));
        QCOMPARE(p.exitCode(), 0);
        const QString out = QString::fromUtf8(p.readAllStandardOutput()), err = QString::fromUtf8(p.readAllStandardError());
        QVERIFY2(out.startsWith(single.out), qPrintable(out));
        QVERIFY2(out.endsWith(single.out), qPrintable(out));  // after /reset: the same first answer again
        QVERIFY2(err.contains(QRegularExpression("\\(([1-9][0-9]*) reused\\)")), qPrintable(err));

        // Ctrl-C during a long answer: that answer stops ("cancelled") and the next line is still answered.
        QProcess c;
        c.start(QStringLiteral(WHITTLE_CLI_PATH), {"chat", model, "--greedy", "--max-tokens", "100000", "--ctx", "100000", "--quiet"});
        QVERIFY(c.waitForStarted());
        c.write("Tell me a story.\n");
        QVERIFY(c.waitForReadyRead(60000));
        ::kill(pid_t(c.processId()), SIGINT);
        QString errAll;
        QTRY_VERIFY_WITH_TIMEOUT((errAll += QString::fromUtf8(c.readAllStandardError())).contains("; cancelled]"), 10000);
        c.write("Hello\n/quit\n");
        c.closeWriteChannel();
        QVERIFY(c.waitForFinished(60000));
        QCOMPARE(c.exitStatus(), QProcess::NormalExit);
        QCOMPARE(c.exitCode(), 0);
        errAll += QString::fromUtf8(c.readAllStandardError());
        QCOMPARE(errAll.count(" tokens at "), 4);  // two answers, each with its prompt and decode speed
    }

    void cleanupTestCase() {
        if (!instance_) return;
        WHITTLE_EXPECT_NO_VALIDATION_MESSAGES(*instance_);
    }
};

QTEST_GUILESS_MAIN(TestVulkanEngine)
#include "tst_vulkan_engine.moc"
