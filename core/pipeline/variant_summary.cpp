#include "core/pipeline/variant_summary.h"

#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/io/json_file.h"
#include "core/model/checkpoint.h"
#include "core/model/checkpoint_files.h"
#include "core/model/inventory.h"

namespace fs = std::filesystem;

namespace whittle {

namespace {
std::optional<double> number(const Json& j, const char* key) {
    return j.contains(key) && j[key].is_number() ? std::optional<double>(j[key].get<double>()) : std::nullopt;
}

EvalReport qualityFrom(const Json& q) {
    EvalReport r;
    r.ppl = number(q, "ppl").value_or(0);
    r.nll = number(q, "nll").value_or(0);
    r.tokens = int(number(q, "tokens").value_or(0));
    r.windows = int(number(q, "windows").value_or(0));
    r.seconds = number(q, "seconds").value_or(0);
    r.kldMean = number(q, "kld_mean");
    r.kldP99 = number(q, "kld_p99");
    r.top1 = number(q, "top1");
    r.refPpl = number(q, "reference_ppl");
    return r;
}

// "text_only + vocabulary english + flap 0.2 + gptq g128" from a recipe's JSON.
std::string recipeLine(const Json& r) {
    std::vector<std::string> parts;
    if (r.value("text_only", false)) parts.push_back("text only");
    if (r.contains("vocabulary")) {
        const Json& v = r["vocabulary"];
        parts.push_back("vocabulary " + (v.contains("preset") && v["preset"].is_string() && !v["preset"].get<std::string>().empty()
                                             ? v["preset"].get<std::string>()
                                             : std::string("buckets")));
    }
    if (r.contains("flap")) {
        std::ostringstream s;
        s << "FLAP " << r["flap"].value("ratio", 0.0);
        if (!r["flap"].value("bias_compensation", true)) s << " (no compensation)";
        parts.push_back(s.str());
    }
    if (r.contains("quantization")) {
        const Json& q = r["quantization"];
        std::string m = q.value("method", std::string("rtn"));
        if (m == "rtn" || m == "gptq") m = "INT4 " + m + " g" + std::to_string(q.value("group_size", 128));
        parts.push_back(m);
    }
    std::string line;
    for (const auto& p : parts) line += (line.empty() ? "" : " + ") + p;
    return line;
}
}  // namespace

VariantSummary summarizeVariant(const fs::path& dir) {
    VariantSummary v;
    v.dir = dir;
    v.name = dir.filename().string();
    const Checkpoint ck = Checkpoint::open(dir);
    v.params = makeInventory(ck).total.params;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.is_regular_file() && e.path().filename() != files::kWhittleReport) v.diskBytes += e.file_size();
    const fs::path report = dir / files::kWhittleReport;
    if (!fs::exists(report)) return v;
    const Json w = readJsonFile(report);
    if (w.contains("source") && w["source"].is_string()) v.source = fs::path(w["source"].get<std::string>());
    if (w.contains("recipe")) v.recipe = recipeLine(w["recipe"]);
    // A slim run keeps each stage's report; a single-recipe command (quantize, prune-vocab) its own.
    const Json* quant = nullptr;
    if (w.contains("slim")) {
        for (const auto& st : w["slim"]["stages"])
            if (st.value("stage", std::string()) == "quantization") quant = &st["report"];
        if (w["slim"].contains("quality")) v.quality = qualityFrom(w["slim"]["quality"]);
    } else if (w.contains("quantization")) {
        quant = &w["quantization"];
    }
    if (quant && !quant->value("dequantized", false)) v.bitsPerWeight = number(*quant, "bits_per_weight");
    v.madeByWhittle = true;
    // Measured later (the Compare page): a quality against the variant's own source only.
    if (const auto m = w.find("measured"); m != w.end() && m->is_object()) {
        if (const auto q = m->find("quality"); !v.quality && q != m->end() && q->is_object() &&
                                               (!v.source || q->value("reference", std::string()) == v.source->string()))
            v.quality = qualityFrom(*q);
        if (const auto d = m->find("decode_cpu"); d != m->end() && d->is_object()) v.cpuTokS = number(*d, "tok_s");
        if (const auto d = m->find("decode_vulkan"); d != m->end() && d->is_object()) {
            v.vulkanTokS = number(*d, "tok_s");
            v.vulkanDevice = d->value("device", std::string());
        }
    }
    return v;
}

namespace {
// Sets "measured".<key> in dir's whittle.json: a new file renamed over the old one.
void recordMeasured(const fs::path& dir, const std::string& key, const Json& value) {
    const fs::path report = dir / files::kWhittleReport;
    if (!fs::exists(report))
        throw UsageError(dir.string(), {}, "has no whittle.json: Whittle records measurements only in the variants it made");
    Json w = readJsonFile(report);
    if (!w.is_object()) throw FormatError(report.string(), {}, "not a JSON object");
    if (!w.contains("measured") || !w["measured"].is_object()) w["measured"] = Json::object();
    w["measured"][key] = value;
    const fs::path next = dir / (std::string(files::kWhittleReport) + ".new");
    fs::remove(next);  // a leftover of an interrupted record
    writeJsonFile(next, w);
    fs::rename(next, report);
}
}  // namespace

void recordQuality(const fs::path& dir, const EvalReport& quality, const fs::path& reference) {
    Json q = toJson(quality);
    q["reference"] = reference.string();
    recordMeasured(dir, "quality", q);
}

void recordDecode(const fs::path& dir, bool vulkan, double tokS, int tokens, const std::string& device) {
    recordMeasured(dir, vulkan ? "decode_vulkan" : "decode_cpu", Json{{"tok_s", tokS}, {"tokens", tokens}, {"device", device}});
}

}  // namespace whittle
