#pragma once
// The engine thread: one QThread that owns the model, the Vulkan device and its queue (or the CPU reference),
// and the conversation's session. The GUI posts work to it and hears back through signals, so the event loop
// never waits on a token; stop() only sets a flag the generation loop checks between tokens. Later pages
// (Compare) share this thread rather than opening the device twice.
#include <QObject>
#include <QStringList>
#include <QThread>
#include <QVariantMap>
#include <atomic>
#include <memory>
#include <vector>

#include "core/engine/sampler.h"
#include "core/progress.h"
#include "core/tokenizer/chat_format.h"
#include "gpu/device_caps.h"

namespace whittle {
class Checkpoint;
}

namespace whittle::gui {

struct EngineState;  // lives on the engine thread

class ChatEngine : public QObject {
    Q_OBJECT
public:
    explicit ChatEngine(QObject* parent = nullptr);
    ~ChatEngine() override;

    // Each posts its work to the engine thread and returns at once.
    void listDevices();
    // What each Vulkan device offers (room for a model, limits), from the engine's own instance: deviceCapsListed
    // (empty without a Vulkan loader or driver). Pages size models against it without opening a second instance.
    void listDeviceCaps();
    // device: a Vulkan device index, or -1 for the CPU reference. `opened`: the main window's checkpoint of
    // `dir` when it has one (read-only, shared across threads), so the folder is not opened twice.
    void loadModel(const QString& dir, int device, int context, std::shared_ptr<const Checkpoint> opened = {});
    void respond(const std::vector<ChatMessage>& messages, const QString& system, const SamplingParams& sampling, int maxTokens);
    // Decode speed of a model folder on a device (-1: the CPU reference), for the Compare page: its own model
    // and session, the conversation's untouched; greedy, `tokens` tokens after a short prompt. Emits decodeMeasured.
    void measureDecode(int request, const QString& dir, int device, int tokens);
    // Stops the answer being generated (it ends after the current token); safe from any thread.
    void stop();

    bool busy() const { return busy_.load(); }
    // Validation-layer errors seen by the engine's Vulkan instance (WHITTLE_VK_VALIDATION=1), for tests.
    int validationErrors() const { return validationErrors_.load(); }

signals:
    // labels[i] describes devices[i] ("CPU reference" for -1); `preferred` is the default pick.
    void devicesListed(const QStringList& labels, const QList<int>& devices, int preferred);
    void deviceCapsListed(const std::vector<whittle::gpu::DeviceCaps>& caps);
    // ok, the message (the error, or a summary), and the model's generation_config.json sampling defaults.
    void modelLoaded(bool ok, const QString& message, const QVariantMap& defaults);
    void piece(const QString& text);
    // The whole answer and its figures (prompt_tokens, reused_tokens, tokens, prefill_tok_s, decode_tok_s, stop, device).
    void answered(const QString& text, const QVariantMap& stats);
    void failed(const QString& message);
    void decodeMeasured(int request, bool ok, double tokensPerSecond, const QString& message);

private:
    void post(std::function<void()> work);
    QThread thread_;
    QObject* context_;  // lives on thread_; work runs in its event loop
    std::unique_ptr<EngineState> state_;
    std::shared_ptr<CancelToken> cancel_;
    std::atomic<bool> busy_{false};
    std::atomic<int> validationErrors_{0};
};

}  // namespace whittle::gui

Q_DECLARE_METATYPE(std::vector<whittle::gpu::DeviceCaps>)
