#include "app/gui/chat_page.h"

#include <QApplication>
#include <QClipboard>
#include <QComboBox>
#include <QDir>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QRegularExpression>
#include <QScrollBar>
#include <QSpinBox>
#include <QTextBrowser>
#include <QVBoxLayout>

#include <fstream>
#include <nlohmann/json.hpp>

#include "app/gui/chat_engine.h"
#include "app/gui/recent_models.h"
#include "app/gui/worker_outcome.h"
#include "core/io/json_file.h"

namespace whittle::gui {

namespace {

// Markdown-ish: ``` fences become preformatted blocks, `x` inline code, **x** bold; everything else is text.
QString renderText(const QString& text) {
    QString html;
    const QStringList parts = text.split("```");
    for (int i = 0; i < parts.size(); ++i) {
        if (i % 2 == 1) {
            QString code = parts[i];
            const int nl = code.indexOf('\n');
            if (nl >= 0 && !code.left(nl).contains(' ')) code = code.mid(nl + 1);  // the language tag
            html += "<pre style=\"background:#f2f2f2; padding:6px\">" + code.toHtmlEscaped() + "</pre>";
            continue;
        }
        QString t = parts[i].toHtmlEscaped();
        t.replace(QRegularExpression("`([^`\n]+)`"), "<code style=\"background:#f2f2f2\">\\1</code>");
        t.replace(QRegularExpression("\\*\\*([^*\n]+)\\*\\*"), "<b>\\1</b>");
        t.replace("\n", "<br>");
        html += t;
    }
    return html;
}

QString statsLine(const QVariantMap& s) {
    if (s.isEmpty()) return {};
    return QObject::tr("%1 tokens · prefill %2 tok/s (%3 prompt tokens, %4 reused) · decode %5 tok/s · %6 · %7")
        .arg(s.value("tokens").toInt())
        .arg(s.value("prefill_tok_s").toDouble(), 0, 'f', 1)
        .arg(s.value("prompt_tokens").toInt())
        .arg(s.value("reused_tokens").toInt())
        .arg(s.value("decode_tok_s").toDouble(), 0, 'f', 1)
        .arg(s.value("stop").toString(), s.value("device").toString());
}

}  // namespace

ChatPage::ChatPage(QWidget* parent) : QWidget(parent), engine_(new ChatEngine(this)) {
    auto* layout = new QVBoxLayout(this);
    auto* top = new QGroupBox(tr("Model and device"), this);
    auto* form = new QFormLayout(top);
    auto* modelRow = new QHBoxLayout;
    model_ = new QComboBox(top);
    model_->setEditable(true);
    model_->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
    model_->setMinimumContentsLength(40);
    for (const QString& dir : RecentModels::load()) model_->addItem(QDir::toNativeSeparators(dir), dir);
    browse_ = new QPushButton(tr("Browse…"), top);
    modelRow->addWidget(model_, 1);
    modelRow->addWidget(browse_);
    form->addRow(tr("Model"), modelRow);
    auto* deviceRow = new QHBoxLayout;
    device_ = new QComboBox(top);
    load_ = new QPushButton(tr("Load"), top);
    context_ = new QSpinBox(top);
    context_->setRange(64, 131072);
    context_->setValue(4096);
    context_->setSuffix(tr(" tokens"));
    deviceRow->addWidget(device_, 1);
    deviceRow->addWidget(new QLabel(tr("Context"), top));
    deviceRow->addWidget(context_);
    deviceRow->addWidget(load_);
    form->addRow(tr("Device"), deviceRow);
    system_ = new QLineEdit(top);
    system_->setPlaceholderText(tr("Optional system prompt"));
    form->addRow(tr("System"), system_);
    auto* samplingRow = new QHBoxLayout;
    temperature_ = new QDoubleSpinBox(top);
    temperature_->setRange(0, 5);
    temperature_->setSingleStep(0.1);
    temperature_->setToolTip(tr("0: greedy"));
    topK_ = new QSpinBox(top);
    topK_->setRange(0, 262144);
    topK_->setToolTip(tr("0: off"));
    topP_ = new QDoubleSpinBox(top);
    topP_->setRange(0.01, 1);
    topP_->setSingleStep(0.05);
    topP_->setValue(1);
    minP_ = new QDoubleSpinBox(top);
    minP_->setRange(0, 1);
    minP_->setSingleStep(0.01);
    minP_->setToolTip(tr("0: off"));
    repeat_ = new QDoubleSpinBox(top);
    repeat_->setRange(0.5, 3);
    repeat_->setSingleStep(0.05);
    repeat_->setValue(1);
    repeat_->setToolTip(tr("1: off"));
    maxTokens_ = new QSpinBox(top);
    maxTokens_->setRange(1, 65536);
    maxTokens_->setValue(512);
    seed_ = new QSpinBox(top);
    seed_->setRange(0, 1 << 30);
    for (auto [label, w] : std::initializer_list<std::pair<QString, QWidget*>>{
             {tr("Temperature"), temperature_}, {tr("Top-k"), topK_}, {tr("Top-p"), topP_}, {tr("Min-p"), minP_}, {tr("Repeat penalty"), repeat_}, {tr("Max tokens"), maxTokens_}, {tr("Seed"), seed_}}) {
        samplingRow->addWidget(new QLabel(label, top));
        samplingRow->addWidget(w);
    }
    samplingRow->addStretch();
    form->addRow(tr("Sampling"), samplingRow);
    layout->addWidget(top);

    view_ = new QTextBrowser(this);
    view_->setOpenLinks(false);
    view_->setObjectName("transcript");
    layout->addWidget(view_, 1);
    input_ = new QPlainTextEdit(this);
    input_->setPlaceholderText(tr("Message (Ctrl+Enter sends)"));
    input_->setMaximumHeight(90);
    layout->addWidget(input_);
    auto* buttons = new QHBoxLayout;
    send_ = new QPushButton(tr("Send"), this);
    send_->setShortcut(QKeySequence("Ctrl+Return"));
    stop_ = new QPushButton(tr("Stop"), this);
    regenerate_ = new QPushButton(tr("Regenerate"), this);
    edit_ = new QPushButton(tr("Edit last"), this);
    copy_ = new QPushButton(tr("Copy answer"), this);
    clear_ = new QPushButton(tr("New chat"), this);
    save_ = new QPushButton(tr("Save…"), this);
    open_ = new QPushButton(tr("Open…"), this);
    for (QPushButton* b : {send_, stop_, regenerate_, edit_, copy_}) buttons->addWidget(b);
    buttons->addStretch();
    for (QPushButton* b : {clear_, save_, open_}) buttons->addWidget(b);
    layout->addLayout(buttons);
    status_ = new QLabel(tr("Choose a model and a device."), this);
    status_->setWordWrap(true);
    layout->addWidget(status_);

    connect(browse_, &QPushButton::clicked, this, [this] {
        const QString dir = QFileDialog::getExistingDirectory(this, tr("Model folder"));
        if (!dir.isEmpty()) offerModel(dir);
    });
    connect(load_, &QPushButton::clicked, this, &ChatPage::loadSelected);
    connect(send_, &QPushButton::clicked, this, [this] { send(); });
    connect(stop_, &QPushButton::clicked, this, &ChatPage::stop);
    connect(regenerate_, &QPushButton::clicked, this, &ChatPage::regenerate);
    connect(edit_, &QPushButton::clicked, this, [this] {
        // Puts the last user message in the input box; the next Send replaces it as a new branch.
        for (int id = tree_.last(); id > 0; id = tree_.node(id).parent)
            if (tree_.node(id).role == "user") {
                input_->setPlainText(tree_.node(id).text);
                input_->setProperty("editing", id);
                break;
            }
    });
    connect(copy_, &QPushButton::clicked, this, &ChatPage::copyLastAnswer);
    connect(clear_, &QPushButton::clicked, this, &ChatPage::newConversation);
    connect(save_, &QPushButton::clicked, this, [this] {
        const QString f = QFileDialog::getSaveFileName(this, tr("Save conversation"), {}, tr("Conversations (*.json)"));
        if (!f.isEmpty()) saveConversation(f);
    });
    connect(open_, &QPushButton::clicked, this, [this] {
        const QString f = QFileDialog::getOpenFileName(this, tr("Open conversation"), {}, tr("Conversations (*.json)"));
        if (!f.isEmpty()) openConversation(f);
    });
    connect(view_, &QTextBrowser::anchorClicked, this, &ChatPage::onLinkClicked);
    connect(engine_, &ChatEngine::devicesListed, this, [this](const QStringList& labels, const QList<int>& ids, int preferred) {
        device_->clear();
        for (int i = 0; i < labels.size(); ++i) device_->addItem(labels[i], ids[i]);
        const int at = device_->findData(preferred);
        device_->setCurrentIndex(at >= 0 ? at : 0);
        emit devicesReady();
    });
    connect(engine_, &ChatEngine::modelLoaded, this, [this](bool ok, const QString& message, const QVariantMap& d) {
        loading_ = false;
        ready_ = ok;
        if (ok) {
            temperature_->setValue(d.value("temperature").toDouble());
            topK_->setValue(d.value("top_k").toInt());
            topP_->setValue(d.value("top_p").toDouble());
            minP_->setValue(d.value("min_p").toDouble());
            repeat_->setValue(d.value("repetition_penalty").toDouble());
            status_->setText(tr("Loaded %1.").arg(message));
        } else {
            loadedKey_.clear();
            status_->setText(tr("Cannot load the model: %1").arg(message));
            showErrorDialog(this, tr("Cannot load the model"), message);
            pendingSend_.clear();
        }
        updateButtons();
        emit modelReadyChanged(ok, message);
        if (ok && !pendingSend_.isEmpty()) {
            const QString text = pendingSend_;
            pendingSend_.clear();
            send(text);
        }
    });
    connect(engine_, &ChatEngine::piece, this, [this](const QString& p) {
        pendingText_ += p;
        render();
    });
    connect(engine_, &ChatEngine::answered, this, &ChatPage::onAnswered);
    connect(engine_, &ChatEngine::failed, this, [this](const QString& message) {
        generating_ = false;
        pendingUser_ = -1;
        status_->setText(message);
        showErrorDialog(this, tr("The answer failed"), message);
        render();
        updateButtons();
    });
    engine_->listDevices();
    updateButtons();
}

ChatPage::~ChatPage() = default;

void ChatPage::offerModel(const QString& dir, std::shared_ptr<const Checkpoint> opened) {
    if (opened) {
        openedDir_ = dir;
        opened_ = std::move(opened);
    }
    int at = model_->findData(dir);
    if (at < 0) {
        model_->insertItem(0, QDir::toNativeSeparators(dir), dir);
        at = 0;
    }
    model_->setCurrentIndex(at);
}

void ChatPage::loadSelected() {
    QString dir = model_->currentData().toString();
    if (dir.isEmpty() || model_->currentText() != QDir::toNativeSeparators(dir)) dir = model_->currentText();
    if (dir.isEmpty() || generating_ || loading_) return;
    const QString key = dir + "|" + device_->currentData().toString() + "|" + QString::number(context_->value());
    if (ready_ && key == loadedKey_) return;
    loading_ = true;
    ready_ = false;
    loadedKey_ = key;
    status_->setText(tr("Loading %1 on %2 …").arg(QFileInfo(dir).fileName(), device_->currentText()));
    engine_->loadModel(dir, device_->currentData().isValid() ? device_->currentData().toInt() : -1, context_->value(),
                       dir == openedDir_ ? opened_ : nullptr);
    updateButtons();
}

SamplingParams ChatPage::sampling() const {
    SamplingParams s;
    s.temperature = float(temperature_->value());
    s.topK = topK_->value();
    s.topP = float(topP_->value());
    s.minP = float(minP_->value());
    s.repetitionPenalty = float(repeat_->value());
    s.seed = std::uint64_t(seed_->value());
    return s;
}

void ChatPage::send(const QString& given) {
    const QString text = given.isEmpty() ? input_->toPlainText().trimmed() : given;
    if (text.isEmpty() || generating_) return;
    if (!ready_) {
        pendingSend_ = text;
        input_->clear();
        loadSelected();
        return;
    }
    int parent = tree_.last();
    const QVariant editing = input_->property("editing");
    if (given.isEmpty() && editing.isValid()) parent = tree_.node(editing.toInt()).parent;  // a new branch of that message
    input_->setProperty("editing", QVariant());
    input_->clear();
    generateFor(tree_.add(parent, "user", text));
}

void ChatPage::editLastAndResend(const QString& text) {
    for (int id = tree_.last(); id > 0; id = tree_.node(id).parent)
        if (tree_.node(id).role == "user") {
            generateFor(tree_.add(tree_.node(id).parent, "user", text));
            return;
        }
}

void ChatPage::regenerate() {
    if (generating_ || !ready_) return;
    int id = tree_.last();
    if (id > 0 && tree_.node(id).role == "assistant") id = tree_.node(id).parent;
    if (id > 0 && tree_.node(id).role == "user") generateFor(id);
}

void ChatPage::generateFor(int userNode) {
    generating_ = true;
    pendingUser_ = userNode;
    pendingText_.clear();
    status_->setText(tr("Answering…"));
    engine_->respond(tree_.messagesTo(userNode), system_->text(), sampling(), maxTokens_->value());
    render();
    updateButtons();
}

void ChatPage::stop() { engine_->stop(); }

void ChatPage::onAnswered(const QString& text, const QVariantMap& stats) {
    if (pendingUser_ > 0) tree_.add(pendingUser_, "assistant", text, stats);
    generating_ = false;
    pendingUser_ = -1;
    pendingText_.clear();
    status_->setText(statsLine(stats));
    render();
    updateButtons();
    emit answerFinished(text, stats);
}

void ChatPage::copyLastAnswer() const {
    for (int id = tree_.last(); id > 0; id = tree_.node(id).parent)
        if (tree_.node(id).role == "assistant") {
            QApplication::clipboard()->setText(tree_.node(id).text);
            return;
        }
}

void ChatPage::newConversation() {
    if (generating_) return;
    tree_.clear();
    render();
    updateButtons();
}

bool ChatPage::saveConversation(const QString& file) {
    try {
        writeJsonFile(file.toStdString(), tree_.toJson(system_->text()));
        status_->setText(tr("Saved %1.").arg(QDir::toNativeSeparators(file)));
        return true;
    } catch (const std::exception& e) {
        showErrorDialog(this, tr("Cannot save the conversation"), QString::fromUtf8(e.what()));
        return false;
    }
}

bool ChatPage::openConversation(const QString& file) {
    if (generating_) return false;
    try {
        QString system;
        tree_ = ChatTree::fromJson(readJsonFile(file.toStdString()), file.toStdString(), &system);
        system_->setText(system);
        render();
        updateButtons();
        return true;
    } catch (const std::exception& e) {
        showErrorDialog(this, tr("Cannot open the conversation"), QString::fromUtf8(e.what()));
        return false;
    }
}

QString ChatPage::transcriptHtml() const {
    QString html;
    for (int id : tree_.activePath()) {
        const ChatNode& n = tree_.node(id);
        const bool user = n.role == "user";
        html += QString("<p><b>%1</b>").arg(user ? tr("You") : tr("Model"));
        if (tree_.siblingCount(id) > 1)
            html += QString(" &nbsp;<a href=\"branch:%1:-1\">‹</a> %2/%3 <a href=\"branch:%1:1\">›</a>")
                        .arg(id)
                        .arg(tree_.siblingIndex(id) + 1)
                        .arg(tree_.siblingCount(id));
        html += "</p><div>" + renderText(n.text) + "</div>";
        if (!user && !n.stats.isEmpty()) html += "<p style=\"color:#777; font-size:small\">" + statsLine(n.stats).toHtmlEscaped() + "</p>";
        if (id == pendingUser_) break;
    }
    if (generating_) html += "<p><b>" + tr("Model") + "</b></p><div>" + renderText(pendingText_) + "▍</div>";
    return html;
}

void ChatPage::render() {
    view_->setHtml(transcriptHtml());
    view_->verticalScrollBar()->setValue(view_->verticalScrollBar()->maximum());
}

void ChatPage::onLinkClicked(const QUrl& url) {
    const QStringList parts = url.toString().split(':');
    if (parts.size() != 3 || parts[0] != "branch" || generating_) return;
    tree_.switchSibling(parts[1].toInt(), parts[2].toInt());
    render();
}

void ChatPage::updateButtons() {
    const bool idle = !generating_ && !loading_;
    send_->setEnabled(idle);
    stop_->setEnabled(generating_);
    regenerate_->setEnabled(idle && ready_ && tree_.last() > 0);
    edit_->setEnabled(idle && tree_.last() > 0);
    copy_->setEnabled(tree_.last() > 0);
    load_->setEnabled(idle);
    clear_->setEnabled(idle);
    open_->setEnabled(idle);
    device_->setEnabled(idle);
    model_->setEnabled(idle);
}

}  // namespace whittle::gui
