#pragma once
// The Compare page's table: the original checkpoint first, then each variant made from it, one row each —
// size on disk, parameters, bits per weight of the quantized tensors, perplexity, KL divergence (mean, p99)
// and top-1 agreement against the original, decode tokens/s on the CPU reference and on the Vulkan device.
// Missing figures show "—" until measured (CompareModel::setQuality/setDecode fill them in).
#include <QAbstractTableModel>
#include <optional>
#include <vector>

#include "core/pipeline/variant_summary.h"

namespace whittle::gui {

struct CompareRow {
    VariantSummary summary;
    bool original = false;
    std::optional<double> ownPpl;  // the original's perplexity on its own tokens (its row only)
    std::optional<double> cpuTokS, vulkanTokS;
};

class CompareModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column { Name, Recipe, Size, Params, Bpw, Ppl, KldMean, KldP99, Top1, CpuTokS, VulkanTokS, ColumnCount };
    static constexpr int kSortRole = Qt::UserRole + 1;  // the raw number behind a cell (-1 when missing)

    explicit CompareModel(QObject* parent = nullptr);

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role) const override;
    QVariant headerData(int section, Qt::Orientation o, int role) const override;

    // Replaces everything with `original` (row 0) and no variants.
    void setOriginal(const VariantSummary& original);
    // Adds a variant, or refreshes the row of the same folder; returns its row.
    int addVariant(const VariantSummary& v);
    void removeRow(int row);  // not the original's
    void setQuality(int row, const EvalReport& q);
    void setOwnPpl(int row, double ppl);
    void setDecode(int row, bool vulkan, double tokS);
    const std::vector<CompareRow>& rows() const { return rows_; }
    int rowOf(const std::filesystem::path& dir) const;  // -1 when absent

private:
    std::vector<CompareRow> rows_;
};

}  // namespace whittle::gui
