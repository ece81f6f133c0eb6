#include "app/gui/chat_engine.h"

#include <QFileInfo>

#include "core/engine/conversation.h"
#include "core/engine/generator.h"
#include "core/error.h"
#include "core/model/checkpoint.h"
#include "core/model/inventory.h"
#include "core/reference/reference_session.h"
#include "gpu/vulkan_engine.h"
#include "gpu/vulkan_instance.h"

namespace whittle::gui {

// Everything here is touched on the engine thread only (after construction).
struct EngineState {
    std::unique_ptr<gpu::VulkanInstance> instance;
    std::vector<gpu::DeviceCaps> caps;
    QString instanceError;
    std::shared_ptr<const Checkpoint> checkpoint;
    std::unique_ptr<Tokenizer> tokenizer;
    std::unique_ptr<ReferenceModel> reference;
    std::unique_ptr<gpu::ComputeDevice> device;
    std::unique_ptr<gpu::VulkanModel> vulkan;
    std::unique_ptr<Session> session;
    std::unique_ptr<Conversation> conversation;
    QString deviceName;

    void unload() {
        conversation.reset();
        session.reset();
        vulkan.reset();
        if (device) device->savePipelineCache();
        device.reset();
        reference.reset();
        tokenizer.reset();
        checkpoint.reset();
    }
    bool ensureInstance() {
        if (instance || !instanceError.isEmpty()) return instance != nullptr;
        try {
            instance = std::make_unique<gpu::VulkanInstance>();
            caps = gpu::queryAllCaps(instance->physicalDevices());
        } catch (const std::exception& e) {
            instanceError = QString::fromUtf8(e.what());
        }
        return instance != nullptr;
    }
};

ChatEngine::ChatEngine(QObject* parent) : QObject(parent), context_(new QObject), state_(std::make_unique<EngineState>()) {
    qRegisterMetaType<std::vector<gpu::DeviceCaps>>();  // deviceCapsListed crosses from the engine thread
    thread_.setObjectName("whittle-engine");
    context_->moveToThread(&thread_);
    connect(&thread_, &QThread::finished, context_, &QObject::deleteLater);
    thread_.start();
}

ChatEngine::~ChatEngine() {
    stop();
    // Release the device on the thread that used it, then end the thread.
    QMetaObject::invokeMethod(context_, [s = state_.get()] { s->unload(); s->instance.reset(); }, Qt::BlockingQueuedConnection);
    thread_.quit();
    thread_.wait();
}

void ChatEngine::post(std::function<void()> work) { QMetaObject::invokeMethod(context_, std::move(work), Qt::QueuedConnection); }

void ChatEngine::stop() {
    if (auto c = std::atomic_load(&cancel_)) c->cancel();
}

void ChatEngine::listDevices() {
    post([this] {
        EngineState& s = *state_;
        QStringList labels{tr("CPU reference (%1 threads)").arg(QThread::idealThreadCount())};
        QList<int> ids{-1};
        int preferred = -1;
        if (s.ensureInstance()) {
            for (const auto& c : s.caps) {
                labels << tr("%1 — %2%3").arg(QString::fromStdString(c.name), QString::fromStdString(formatBytes(c.deviceLocalBytes())),
                                              c.software ? tr(" (software)") : QString());
                ids << int(c.index);
            }
            preferred = gpu::pickDevice(s.caps);
        }
        emit devicesListed(labels, ids, preferred);
    });
}

void ChatEngine::listDeviceCaps() {
    post([this] {
        EngineState& s = *state_;
        emit deviceCapsListed(s.ensureInstance() ? s.caps : std::vector<gpu::DeviceCaps>{});
    });
}

void ChatEngine::loadModel(const QString& dir, int device, int context, std::shared_ptr<const Checkpoint> opened) {
    busy_ = true;
    post([this, dir, device, context, opened] {
        EngineState& s = *state_;
        s.unload();
        QVariantMap defaults;
        try {
            s.checkpoint = opened ? opened : std::make_shared<const Checkpoint>(Checkpoint::open(dir.toStdString()));
            s.tokenizer = std::make_unique<Tokenizer>(checkpointTokenizer(*s.checkpoint));
            s.reference = std::make_unique<ReferenceModel>(*s.checkpoint);
            if (device >= 0) {
                if (!s.ensureInstance()) throw Error(s.instanceError.toStdString());
                s.device = std::make_unique<gpu::ComputeDevice>(*s.instance, std::uint32_t(device));
                s.device->loadPipelineCache(gpu::defaultPipelineCacheFile(s.device->caps()));
                s.vulkan = std::make_unique<gpu::VulkanModel>(*s.device, *s.reference);
                s.session = std::make_unique<gpu::VulkanSession>(*s.vulkan, context);
                s.device->savePipelineCache();  // the decode pipelines, now; the rest when the model is unloaded
                s.deviceName = QString::fromStdString(s.device->caps().name);
            } else {
                s.session = std::make_unique<ReferenceSession>(*s.reference, context);
                s.deviceName = tr("CPU reference");
            }
            s.conversation = std::make_unique<Conversation>(*s.session, *s.tokenizer, s.checkpoint->specialTokens().eos);
            const SamplingParams d = generationConfigDefaults(*s.checkpoint);
            defaults = {{"temperature", d.temperature}, {"top_k", d.topK}, {"top_p", d.topP}, {"min_p", d.minP},
                        {"repetition_penalty", d.repetitionPenalty}};
            if (s.instance) validationErrors_ = s.instance->validationErrors();
            busy_ = false;
            emit modelLoaded(true, tr("%1 on %2, %3 positions of context").arg(QFileInfo(dir).fileName(), s.deviceName).arg(context), defaults);
        } catch (const std::exception& e) {
            s.unload();
            busy_ = false;
            emit modelLoaded(false, QString::fromUtf8(e.what()), defaults);
        }
    });
}

void ChatEngine::measureDecode(int request, const QString& dir, int device, int tokens) {
    post([this, request, dir, device, tokens] {
        EngineState& s = *state_;
        try {
            const Checkpoint ck = Checkpoint::open(dir.toStdString());
            const Tokenizer tok = Tokenizer::fromModelOrFile(ck.dir());
            const ReferenceModel reference(ck);
            std::unique_ptr<gpu::ComputeDevice> dev;
            std::unique_ptr<gpu::VulkanModel> vulkan;
            std::unique_ptr<Session> session;
            const int context = 64 + tokens;
            if (device >= 0) {
                if (!s.ensureInstance()) throw Error(s.instanceError.toStdString());
                dev = std::make_unique<gpu::ComputeDevice>(*s.instance, std::uint32_t(device));
                dev->loadPipelineCache(gpu::defaultPipelineCacheFile(dev->caps()));
                vulkan = std::make_unique<gpu::VulkanModel>(*dev, reference);
                session = std::make_unique<gpu::VulkanSession>(*vulkan, context);
            } else {
                session = std::make_unique<ReferenceSession>(reference, context);
            }
            EncodeOptions eo;
            const std::vector<int> prompt = tok.encode("The history of the lighthouse begins", eo);
            GenerateOptions o;
            o.maxTokens = tokens;
            o.sampling.temperature = 0;  // greedy, and no stop id: every run decodes `tokens` tokens
            const GenerateResult r = generate(*session, tok, prompt, o, {}, CancelToken{});
            const int decoded = std::max<int>(0, int(r.tokens.size()) - 1);
            session.reset();
            vulkan.reset();
            if (dev) dev->savePipelineCache();
            emit decodeMeasured(request, true, decoded / std::max(r.decodeSeconds, 1e-9),
                                tr("%1 tokens on %2").arg(decoded).arg(dev ? QString::fromStdString(dev->caps().name) : tr("CPU reference")));
        } catch (const std::exception& e) {
            emit decodeMeasured(request, false, 0, QString::fromUtf8(e.what()));
        }
    });
}

void ChatEngine::respond(const std::vector<ChatMessage>& messages, const QString& system, const SamplingParams& sampling, int maxTokens) {
    busy_ = true;
    auto cancel = std::make_shared<CancelToken>();
    std::atomic_store(&cancel_, cancel);
    post([this, messages, system, sampling, maxTokens, cancel] {
        EngineState& s = *state_;
        try {
            if (!s.conversation) throw UsageError("no model is loaded");
            s.conversation->setSystemPrompt(system.toStdString());
            s.conversation->setMessages(messages);
            GenerateOptions o;
            o.sampling = sampling;
            o.maxTokens = maxTokens;
            const GenerateResult r = s.conversation->respond(o, [this](std::string_view p) { emit piece(QString::fromUtf8(p.data(), qsizetype(p.size()))); },
                                                             *cancel);
            const int decoded = std::max<int>(0, int(r.tokens.size()) - 1);
            const QVariantMap stats{{"prompt_tokens", r.promptTokens},
                                    {"reused_tokens", s.conversation->reusedTokens()},
                                    {"tokens", int(r.tokens.size())},
                                    {"prefill_tok_s", r.promptTokens / std::max(r.prefillSeconds, 1e-9)},
                                    {"decode_tok_s", decoded / std::max(r.decodeSeconds, 1e-9)},
                                    {"stop", QString::fromStdString(r.stopReason)},
                                    {"device", s.deviceName}};
            if (s.instance) validationErrors_ = s.instance->validationErrors();
            busy_ = false;
            emit answered(QString::fromStdString(r.text), stats);
        } catch (const std::exception& e) {
            busy_ = false;
            emit failed(QString::fromUtf8(e.what()));
        }
    });
}

}  // namespace whittle::gui
