#include "app/gui/model_page.h"

#include <QFrame>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QSortFilterProxyModel>
#include <QSplitter>
#include <QStackedLayout>
#include <QTableView>
#include <QVBoxLayout>

#include <filesystem>
#include <set>

#include "app/gui/part_chart.h"

namespace whittle::gui {

namespace {
QTableView* makeTable(QAbstractItemModel* model, QWidget* parent) {
    auto* v = new QTableView(parent);
    v->setModel(model);
    v->setSelectionBehavior(QAbstractItemView::SelectRows);
    v->setAlternatingRowColors(true);
    v->verticalHeader()->hide();
    v->verticalHeader()->setDefaultSectionSize(v->fontMetrics().height() + 6);
    v->horizontalHeader()->setStretchLastSection(true);
    return v;
}

QString summaryHtml(const Inventory& inv) {
    const Gemma4Config& c = inv.config;
    int full = 0, shared = 0;
    for (const auto& l : c.layers) {
        full += l.kind == AttentionKind::Full;
        shared += !l.ownsKv;
    }
    QStringList dtypes;
    for (const auto& [d, t] : inv.byDType) dtypes << QString::fromUtf8(std::string(dtypeName(d)).c_str());
    const QString name = QString::fromStdString(std::filesystem::path(inv.path).filename().string());
    const auto row = [](const QString& k, const QString& v) {
        return QStringLiteral("<tr><td style='color:palette(mid); padding-right:14px'>%1</td><td>%2</td></tr>").arg(k, v);
    };
    QString html = QStringLiteral("<div style='font-size:15pt; font-weight:600'>%1</div><table>").arg(name.toHtmlEscaped());
    html += row(QObject::tr("Architecture"),
                QString::fromStdString(c.architecture.empty() ? c.modelType : c.architecture + " (" + c.modelType + ")"));
    html += row(QObject::tr("Layers"), QObject::tr("%1: %2 sliding (head dim %3), %4 full (head dim %5); the last %6 share KV")
                                           .arg(c.numLayers)
                                           .arg(c.numLayers - full)
                                           .arg(c.headDim)
                                           .arg(full)
                                           .arg(c.globalHeadDim)
                                           .arg(shared));
    html += row(QObject::tr("Width"), QObject::tr("hidden %1, %2 query / %3 KV heads, FFN %4%5, PLE %6 per layer")
                                          .arg(c.hiddenSize)
                                          .arg(c.numHeads)
                                          .arg(c.numKvHeads)
                                          .arg(c.intermediateSize)
                                          .arg(c.doubleWideMlp ? QObject::tr(" (double on shared layers)") : QString())
                                          .arg(c.pleDim));
    html += row(QObject::tr("Vocabulary"), QObject::tr("%1 tokens, sliding window %2").arg(c.vocabSize).arg(c.slidingWindow));
    html += row(QObject::tr("Parameters"), QString::fromStdString(formatParams(inv.total.params)) + " · " + dtypes.join(", "));
    html += row(QObject::tr("On disk"), QObject::tr("%1 in %2 file(s)")
                                            .arg(QString::fromStdString(formatBytes(inv.fileBytes)))
                                            .arg(inv.files.size()));
    return html + "</table>";
}
}  // namespace

ModelPage::ModelPage(QWidget* parent) : QWidget(parent) {
    stack_ = new QStackedLayout(this);
    auto* empty = new QLabel(tr("<div style='font-size:14pt'>Open a Gemma 4 checkpoint folder</div>"
                                "<div>File ▸ Open, or drop the folder onto this window.</div>"),
                             this);
    empty->setAlignment(Qt::AlignCenter);
    stack_->addWidget(empty);

    auto* content = new QWidget(this);
    auto* layout = new QVBoxLayout(content);
    auto* card = new QFrame(content);
    card->setFrameShape(QFrame::StyledPanel);
    auto* cardLayout = new QVBoxLayout(card);
    summary_ = new QLabel(card);
    summary_->setTextFormat(Qt::RichText);
    summary_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    cardLayout->addWidget(summary_);
    layout->addWidget(card);

    auto* split = new QSplitter(Qt::Vertical, content);
    auto* top = new QSplitter(Qt::Horizontal, split);
    chart_ = new PartChart(top);
    partView_ = makeTable(&parts_, top);
    top->addWidget(chart_);
    top->addWidget(partView_);
    top->setStretchFactor(0, 3);
    top->setStretchFactor(1, 2);
    top->setSizes({560, 440});

    auto* lower = new QWidget(split);
    auto* lowerLayout = new QVBoxLayout(lower);
    lowerLayout->setContentsMargins(0, 0, 0, 0);
    filter_ = new QLineEdit(lower);
    filter_->setPlaceholderText(tr("Filter tensors by name, part, dtype or file"));
    filter_->setClearButtonEnabled(true);
    tensorProxy_ = new QSortFilterProxyModel(this);
    tensorProxy_->setSourceModel(&tensors_);
    tensorProxy_->setFilterKeyColumn(-1);
    tensorProxy_->setFilterCaseSensitivity(Qt::CaseInsensitive);
    tensorProxy_->setSortRole(Qt::UserRole);
    tensorView_ = makeTable(tensorProxy_, lower);
    tensorView_->setSortingEnabled(true);
    tensorView_->sortByColumn(-1, Qt::AscendingOrder);
    lowerLayout->addWidget(filter_);
    lowerLayout->addWidget(tensorView_);
    split->addWidget(top);
    split->addWidget(lower);
    split->setStretchFactor(0, 2);
    split->setStretchFactor(1, 3);
    layout->addWidget(split, 1);
    stack_->addWidget(content);
    connect(filter_, &QLineEdit::textChanged, tensorProxy_, &QSortFilterProxyModel::setFilterFixedString);
}

void ModelPage::setInventory(const Inventory* inv) {
    parts_.setInventory(inv);
    tensors_.setInventory(inv);
    chart_->setInventory(inv);
    stack_->setCurrentIndex(inv ? 1 : 0);
    if (!inv) return;
    summary_->setText(summaryHtml(*inv));
    partView_->resizeColumnsToContents();
    auto* header = tensorView_->horizontalHeader();
    for (int c = 0; c < TensorTableModel::ColumnCount; ++c)
        if (c != TensorTableModel::Name) tensorView_->resizeColumnToContents(c);
    tensorView_->resizeColumnToContents(TensorTableModel::Name);
    header->resizeSection(TensorTableModel::Name,
                          std::min(header->sectionSize(TensorTableModel::Name), std::max(240, tensorView_->width() / 2)));
}

}  // namespace whittle::gui
