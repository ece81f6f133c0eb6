// Benchmark (not a test): Whittle's Vulkan engine beside llama.cpp on the same weights and device. Prints JSON.
//   bench_vulkan [MODEL_DIR (default: the bundled model)] [--prompt N] [--decode N] [--no-llama-vulkan] [--work DIR]
// Measured in one run:
//   - the model quantized to INT4 RTN g32 symmetric (Whittle runs its GPTQ-layout checkpoint) and the same codes
//     exported to a Q4_0 GGUF (exactly the same weights) for llama.cpp;
//   - whittle-cli bench on --backend vulkan and cpu: prefill and decode tok/s, dispatches per token, device
//     bytes by kind, per-op device time;
//   - llama.cpp (npm node-llama-cpp, tests/peers/llama_bench.mjs) on its CPU build and its Vulkan build on the
//     same device (GGML_VK_VISIBLE_DEVICES=0 admits lavapipe), with the same synthetic prompt;
//   - the INT4 mat-vec's effective bandwidth (packed bytes read per second, timestamp queries over 20
//     dispatches of a 4096 × 4096 g128 weight) against a plain copy shader over as many bytes on the device.
// Ratios are Whittle ÷ peer from this one run.
#include <QCoreApplication>
#include <QDir>
#include <QProcess>
#include <QTemporaryDir>

#include <cstdio>
#include <random>

#include <nlohmann/json.hpp>

#include "core/io/gptq_layout.h"
#include "core/quant/int_quant.h"
#include "gpu/kernels.h"
#include "gpu/vulkan_instance.h"

using namespace whittle;
using namespace whittle::gpu;

namespace {

Json runJson(const QString& program, const QStringList& args, const QProcessEnvironment& env = QProcessEnvironment::systemEnvironment()) {
    QProcess p;
    p.setProcessEnvironment(env);
    p.start(program, args);
    if (!p.waitForFinished(3600 * 1000) || p.exitCode() != 0) {
        std::fprintf(stderr, "bench_vulkan: %s %s failed: %s\n", qPrintable(program), qPrintable(args.join(' ')), p.readAllStandardError().constData());
        return Json();
    }
    const QByteArray out = p.readAllStandardOutput();
    try {
        return Json::parse(out.toStdString());
    } catch (const std::exception&) {
        return Json{{"output", out.toStdString()}};
    }
}

bool run(const QString& program, const QStringList& args) {
    QProcess p;
    p.start(program, args);
    return p.waitForFinished(3600 * 1000) && p.exitCode() == 0;
}

// GB/s of the INT4 mat-vec (packed codes, scales and zeros) and of a copy of as many bytes, on the picked device.
Json bandwidth() {
    VulkanInstance instance;
    const auto caps = queryAllCaps(instance.physicalDevices());
    const int idx = pickDevice(caps);
    if (idx < 0) return Json();
    ComputeDevice dev(instance, std::uint32_t(idx));
    Kernels kernels(dev);
    const std::int64_t N = 4096, K = 4096;
    std::mt19937 rng(1);
    std::normal_distribution<float> d(0, 0.05f);
    std::vector<float> w(std::size_t(N * K));
    for (auto& v : w) v = d(rng);
    IntOptions o;
    o.groupSize = 128;
    GptqTensors g = packGptqV1(quantizeIntRtn(w, N, K, o, "bench"), "bench");
    WeightView view;
    view.format = WeightFormat::GptqInt;
    view.rows = N;
    view.cols = K;
    view.name = "bench";
    view.data = reinterpret_cast<const std::byte*>(g.qweight.data());
    view.gptq.qzeros = reinterpret_cast<const std::byte*>(g.qzeros.data());
    view.gptq.scales = reinterpret_cast<const std::byte*>(g.scales.data());
    view.gptq.gIdx = reinterpret_cast<const std::byte*>(g.gIdx.data());
    view.gptq.groups = g.groups();
    view.gptq.bits = 4;
    MemoryArena arena(dev);
    const DeviceWeight dw = declareWeight(arena, view, dev.caps().maxStorageBufferRange);
    const BufferId x = arena.add(MemoryKind::Scratch, std::uint64_t(K) * 4, "x"), y = arena.add(MemoryKind::Scratch, std::uint64_t(N) * 4, "y");
    const BufferId src = arena.add(MemoryKind::Scratch, dw.bytes, "copy source"), dst = arena.add(MemoryKind::Scratch, dw.bytes, "copy target");
    const BufferId unused = arena.add(MemoryKind::Scratch, 16, "unused");
    arena.allocate("the bandwidth benchmark");
    uploadWeight(arena, dw, view);
    for (BufferId b : {x, src, unused}) arena.fill(b, 0x3c003c00u);
    vk::raii::Fence fence(dev.device(), vk::FenceCreateInfo());
    const int reps = 20;
    auto timed = [&](bool matvec) {
        Recorder rec(dev, true);
        rec.begin();
        const KernelContext k{kernels, rec, arena, arena.buffer(unused)};
        for (int i = 0; i < reps; ++i) {
            if (matvec) recordMatvec(k, dw, arena.buffer(x), 0, arena.buffer(y), 0);
            else recordCopy(k, arena.buffer(src), arena.buffer(dst), std::uint32_t(dw.bytes / 4));
        }
        rec.end();
        dev.submitAndWait(rec.handle(), fence);  // warm-up
        dev.submitAndWait(rec.handle(), fence);
        rec.collectTimes();
        double ns = 0;
        for (const auto& [op, t] : rec.opTimes()) ns += t;
        return ns * 1e-9;
    };
    const double tm = timed(true), tc = timed(false);
    const double bytes = double(dw.bytes) * reps;
    return Json{{"device", dev.caps().name},
                {"weight", "4096x4096 INT4 g128 (GPTQ layout)"},
                {"bytes_per_matvec", dw.bytes},
                {"int4_matvec_gb_per_s", bytes / tm * 1e-9},
                {"copy_gb_per_s", 2 * bytes / tc * 1e-9},  // a copy reads and writes every byte
                {"matvec_vs_copy", (bytes / tm) / (2 * bytes / tc)}};
}

double ratio(const Json& a, const Json& b, const char* key) {
    if (!a.is_object() || !b.is_object() || !a.contains(key) || !b.contains(key)) return 0;
    return a[key].get<double>() / std::max(1e-12, b[key].get<double>());
}

}  // namespace

int main(int argc, char** argv) {
    QCoreApplication app(argc, argv);
    QStringList args = app.arguments().mid(1);
    auto option = [&](const QString& name, const QString& fallback) {
        const int i = args.indexOf("--" + name);
        if (i < 0 || i + 1 >= args.size()) return fallback;
        const QString v = args[i + 1];
        args.remove(i, 2);
        return v;
    };
    const QString prompt = option("prompt", "64"), decode = option("decode", "64");
    QTemporaryDir tmp;
    const QString work = option("work", tmp.path());
    const bool llamaVulkan = !args.removeAll("--no-llama-vulkan");
    const QString model = args.isEmpty() ? QStringLiteral(WHITTLE_SOURCE_DIR "/resources/models/whittle-gemma4-tiny") : args.first();
    const QString cli = QStringLiteral(WHITTLE_CLI_PATH), peer = QStringLiteral(WHITTLE_SOURCE_DIR "/tests/peers/llama_bench.mjs");
    const QString int4 = QDir(work).filePath("int4"), gguf = QDir(work).filePath("int4.q4_0.gguf");
    if (!QDir(int4).exists() && !run(cli, {"quantize", model, int4, "--method", "rtn", "--group", "32", "--embeddings", "keep"})) return 1;
    if (!QFile::exists(gguf) && !run(cli, {"export", int4, gguf, "--format", "gguf-q4_0"})) return 1;

    Json out;
    out["model"] = model.toStdString();
    out["weights"] = "INT4 RTN g32 symmetric; llama.cpp runs the same codes as Q4_0";
    out["whittle_vulkan"] = runJson(cli, {"bench", int4, "--backend", "vulkan", "--prompt-tokens", prompt, "--decode-tokens", decode, "--json"});
    out["whittle_cpu"] = runJson(cli, {"bench", int4, "--backend", "cpu", "--prompt-tokens", prompt, "--decode-tokens", decode, "--json"});
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.insert("GGML_VK_VISIBLE_DEVICES", "0");
    out["llama_cpu"] = runJson("node", {peer, gguf, "--gpu", "none", "--prompt", prompt, "--decode", decode});
    if (llamaVulkan) out["llama_vulkan"] = runJson("node", {peer, gguf, "--gpu", "vulkan", "--prompt", prompt, "--decode", decode}, env);
    out["bandwidth"] = bandwidth();
    const Json& wv = out["whittle_vulkan"];
    out["ratios"] = Json{{"decode_whittle_vulkan_vs_llama_vulkan", ratio(wv, out.value("llama_vulkan", Json()), "decode_tok_per_s")},
                         {"prefill_whittle_vulkan_vs_llama_vulkan", ratio(wv, out.value("llama_vulkan", Json()), "prefill_tok_per_s")},
                         {"decode_whittle_vulkan_vs_llama_cpu", ratio(wv, out["llama_cpu"], "decode_tok_per_s")},
                         {"decode_whittle_vulkan_vs_whittle_cpu", ratio(wv, out["whittle_cpu"], "decode_tok_per_s")}};
    out["bytes_per_token"] = Json{{"whittle_device_weights", wv.is_object() ? wv["engine"]["allocated_bytes"]["weights"] : Json()},
                                  {"llama_gguf_file", QFileInfo(gguf).size()}};
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
}
