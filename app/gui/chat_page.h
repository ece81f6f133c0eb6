#pragma once
// The Chat page: talk to the original model or any slimmed output through Whittle's engines. A device picker
// (every Vulkan device with its memory, lavapipe marked software, and the CPU reference), a model picker (the
// open checkpoint, recent folders, Browse…), system prompt, sampling settings seeded from the model's
// generation_config.json, streaming answers with code blocks rendered, Stop, Regenerate, Edit-and-resend
// (branches kept, a ‹ i/n › switcher on each message that has siblings), Copy; prefill and decode tok/s under
// every answer, stored with the conversation, which is saved and reopened as JSON. All engine work happens on
// the ChatEngine's thread.
#include <QWidget>
#include <memory>

#include "app/gui/chat_tree.h"
#include "core/engine/sampler.h"

class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QPushButton;
class QSpinBox;
class QTextBrowser;

namespace whittle {
class Checkpoint;
}

namespace whittle::gui {

class ChatEngine;

class ChatPage : public QWidget {
    Q_OBJECT
public:
    explicit ChatPage(QWidget* parent = nullptr);
    ~ChatPage() override;

    // Offers `dir` in the model picker (the main window's open checkpoint) and selects it; `opened` is that
    // checkpoint, which loading `dir` then uses instead of opening the folder again.
    void offerModel(const QString& dir, std::shared_ptr<const Checkpoint> opened = {});
    // Loads the selected model on the selected device (also done by Send when nothing is loaded).
    void loadSelected();
    // Sends the input box's text (or `text`) as the next user message.
    void send(const QString& text = {});
    void stop();
    void regenerate();
    // Replaces the last user message with `text` as a new branch and answers it.
    void editLastAndResend(const QString& text);
    void copyLastAnswer() const;
    bool saveConversation(const QString& file);
    bool openConversation(const QString& file);
    void newConversation();

    SamplingParams sampling() const;
    bool generating() const { return generating_; }
    const QString& pendingAnswer() const { return pendingText_; }  // the answer streaming in
    bool modelReady() const { return ready_; }
    const ChatTree& tree() const { return tree_; }
    QString transcriptHtml() const;
    ChatEngine* engine() const { return engine_; }

    QComboBox* deviceBox() const { return device_; }
    QComboBox* modelBox() const { return model_; }
    QLineEdit* systemEdit() const { return system_; }
    QDoubleSpinBox* temperatureBox() const { return temperature_; }
    QSpinBox* topKBox() const { return topK_; }
    QDoubleSpinBox* topPBox() const { return topP_; }
    QDoubleSpinBox* minPBox() const { return minP_; }
    QDoubleSpinBox* repeatPenaltyBox() const { return repeat_; }
    QSpinBox* maxTokensBox() const { return maxTokens_; }
    QSpinBox* contextBox() const { return context_; }
    QPlainTextEdit* input() const { return input_; }
    QTextBrowser* transcript() const { return view_; }
    QPushButton* sendButton() const { return send_; }
    QPushButton* stopButton() const { return stop_; }
    QPushButton* regenerateButton() const { return regenerate_; }
    QLabel* statusLabel() const { return status_; }

signals:
    void devicesReady();
    void modelReadyChanged(bool ok, const QString& message);
    void answerFinished(const QString& text, const QVariantMap& stats);

private:
    void generateFor(int userNode);
    void render();
    void updateButtons();
    void onAnswered(const QString& text, const QVariantMap& stats);
    void onLinkClicked(const QUrl& url);

    ChatEngine* engine_;
    ChatTree tree_;
    int pendingUser_ = -1;  // the user node being answered
    QString pendingText_;
    bool generating_ = false, ready_ = false, loading_ = false;
    QString pendingSend_;  // a message waiting for the model to load
    QString loadedKey_;    // model|device|context the engine holds
    QString openedDir_;    // the main window's checkpoint folder, and the checkpoint
    std::shared_ptr<const Checkpoint> opened_;

    QComboBox *device_, *model_;
    QLineEdit* system_;
    QDoubleSpinBox *temperature_, *topP_, *minP_, *repeat_;
    QSpinBox *topK_, *maxTokens_, *context_, *seed_;
    QTextBrowser* view_;
    QPlainTextEdit* input_;
    QPushButton *load_, *send_, *stop_, *regenerate_, *edit_, *copy_, *save_, *open_, *clear_, *browse_;
    QLabel* status_;
};

}  // namespace whittle::gui
