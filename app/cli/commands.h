#pragma once
#include <string>
#include <vector>

namespace whittle::cli {

struct Command {
    const char* name;
    const char* synopsis;
    int (*run)(const std::vector<std::string>& args);
};

int runInspect(const std::vector<std::string>& args);
int runMakeTiny(const std::vector<std::string>& args);
int runTokenize(const std::vector<std::string>& args);
int runDevices(const std::vector<std::string>& args);
int runGenerate(const std::vector<std::string>& args);
int runChat(const std::vector<std::string>& args);
int runEval(const std::vector<std::string>& args);
int runBench(const std::vector<std::string>& args);
int runBuckets(const std::vector<std::string>& args);
int runPruneVocab(const std::vector<std::string>& args);
int runFlap(const std::vector<std::string>& args);
int runTextOnly(const std::vector<std::string>& args);
int runSlim(const std::vector<std::string>& args);
int runEstimate(const std::vector<std::string>& args);
int runPlan(const std::vector<std::string>& args);
int runQuantize(const std::vector<std::string>& args);
int runExport(const std::vector<std::string>& args);

}  // namespace whittle::cli
