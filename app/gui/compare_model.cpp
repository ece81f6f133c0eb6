#include "app/gui/compare_model.h"

#include "core/model/inventory.h"

namespace whittle::gui {

namespace {
QString orDash(const std::optional<double>& v, int decimals, double scale = 1, const QString& suffix = {}) {
    return v ? QString::number(*v * scale, 'f', decimals) + suffix : QStringLiteral("—");
}
}  // namespace

CompareModel::CompareModel(QObject* parent) : QAbstractTableModel(parent) {}

int CompareModel::rowCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : int(rows_.size()); }
int CompareModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QVariant CompareModel::headerData(int section, Qt::Orientation o, int role) const {
    if (o != Qt::Horizontal || role != Qt::DisplayRole) return {};
    switch (section) {
        case Name: return tr("Variant");
        case Recipe: return tr("Recipe");
        case Size: return tr("Size");
        case Params: return tr("Parameters");
        case Bpw: return tr("Bits/weight");
        case Ppl: return tr("Perplexity");
        case KldMean: return tr("KLD mean");
        case KldP99: return tr("KLD p99");
        case Top1: return tr("Top-1");
        case CpuTokS: return tr("CPU tok/s");
        case VulkanTokS: return tr("Vulkan tok/s");
    }
    return {};
}

QVariant CompareModel::data(const QModelIndex& index, int role) const {
    if (!index.isValid() || index.row() < 0 || index.row() >= int(rows_.size()) || index.column() < 0 || index.column() >= ColumnCount)
        return {};
    const CompareRow& r = rows_[std::size_t(index.row())];
    const VariantSummary& s = r.summary;
    const auto& q = s.quality;
    // The original against itself: KLD 0 and top-1 100 % by definition; its perplexity is its own.
    const std::optional<double> ppl = r.original ? r.ownPpl : q ? std::optional<double>(q->ppl) : std::nullopt;
    const std::optional<double> kld = r.original ? std::optional<double>(0.0) : q ? q->kldMean : std::nullopt;
    const std::optional<double> p99 = r.original ? std::optional<double>(0.0) : q ? q->kldP99 : std::nullopt;
    const std::optional<double> top1 = r.original ? std::optional<double>(1.0) : q ? q->top1 : std::nullopt;
    if (role == kSortRole) {
        auto num = [](const std::optional<double>& v) { return QVariant(v ? *v : -1.0); };
        switch (index.column()) {
            case Size: return QVariant(double(s.diskBytes));
            case Params: return QVariant(double(s.params));
            case Bpw: return num(s.bitsPerWeight);
            case Ppl: return num(ppl);
            case KldMean: return num(kld);
            case KldP99: return num(p99);
            case Top1: return num(top1);
            case CpuTokS: return num(r.cpuTokS);
            case VulkanTokS: return num(r.vulkanTokS);
            default: return QString::fromStdString(s.name);
        }
    }
    if (role == Qt::TextAlignmentRole)
        return index.column() <= Recipe ? QVariant(Qt::AlignLeft | Qt::AlignVCenter) : QVariant(Qt::AlignRight | Qt::AlignVCenter);
    if (role == Qt::ToolTipRole) {
        if (index.column() == Name) return QString::fromStdString(s.dir.string());
        if (index.column() == Ppl && q && q->refPpl)
            return tr("%1 scored tokens of the variant's tokenization; the original's perplexity on the same tokens is %2")
                .arg(q->tokens)
                .arg(*q->refPpl, 0, 'f', 3);
        return {};
    }
    if (role != Qt::DisplayRole) return {};
    switch (index.column()) {
        case Name: return QString::fromStdString(s.name) + (r.original ? tr(" (original)") : QString());
        case Recipe: return r.original ? tr("—") : QString::fromStdString(s.recipe);
        case Size: return QString::fromStdString(formatBytes(s.diskBytes));
        case Params: return QString::fromStdString(formatParams(s.params));
        case Bpw: return orDash(s.bitsPerWeight, 2);
        case Ppl:
            // Perplexities over different tokenizations do not compare; the original's on the variant's tokens does.
            if (!r.original && q && q->refPpl) return tr("%1 (original %2)").arg(q->ppl, 0, 'f', 2).arg(*q->refPpl, 0, 'f', 2);
            return orDash(ppl, 2);
        case KldMean: return orDash(kld, 5);
        case KldP99: return orDash(p99, 5);
        case Top1: return orDash(top1, 1, 100, QStringLiteral(" %"));
        case CpuTokS: return orDash(r.cpuTokS, 1);
        case VulkanTokS: return orDash(r.vulkanTokS, 1);
    }
    return {};
}

void CompareModel::setOriginal(const VariantSummary& original) {
    beginResetModel();
    rows_.clear();
    rows_.push_back(CompareRow{original, true, {}, {}, {}});
    endResetModel();
}

int CompareModel::rowOf(const std::filesystem::path& dir) const {
    for (std::size_t i = 0; i < rows_.size(); ++i)
        if (rows_[i].summary.dir == dir) return int(i);
    return -1;
}

int CompareModel::addVariant(const VariantSummary& v) {
    if (const int row = rowOf(v.dir); row >= 0) {
        CompareRow& r = rows_[std::size_t(row)];
        r.summary = v;
        if (v.cpuTokS) r.cpuTokS = v.cpuTokS;
        if (v.vulkanTokS) r.vulkanTokS = v.vulkanTokS;
        emit dataChanged(index(row, 0), index(row, ColumnCount - 1));
        return row;
    }
    const int row = int(rows_.size());
    beginInsertRows({}, row, row);
    rows_.push_back(CompareRow{v, false, {}, v.cpuTokS, v.vulkanTokS});  // speeds recorded by an earlier measurement
    endInsertRows();
    return row;
}

void CompareModel::removeRow(int row) {
    if (row <= 0 || row >= int(rows_.size())) return;
    beginRemoveRows({}, row, row);
    rows_.erase(rows_.begin() + row);
    endRemoveRows();
}

void CompareModel::setQuality(int row, const EvalReport& q) {
    if (row < 0 || row >= int(rows_.size())) return;
    rows_[std::size_t(row)].summary.quality = q;
    emit dataChanged(index(row, Ppl), index(row, Top1));
}

void CompareModel::setOwnPpl(int row, double ppl) {
    if (row < 0 || row >= int(rows_.size())) return;
    rows_[std::size_t(row)].ownPpl = ppl;
    emit dataChanged(index(row, Ppl), index(row, Ppl));
}

void CompareModel::setDecode(int row, bool vulkan, double tokS) {
    if (row < 0 || row >= int(rows_.size())) return;
    (vulkan ? rows_[std::size_t(row)].vulkanTokS : rows_[std::size_t(row)].cpuTokS) = tokS;
    const int c = vulkan ? VulkanTokS : CpuTokS;
    emit dataChanged(index(row, c), index(row, c));
}

}  // namespace whittle::gui
